package analyze

import (
	"fmt"
	"math"
	"os"
	"path/filepath"
	"time"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"

	"github.com/icptrack/icptrack/internal/human"
)

// The charts: 10 × 5 inches, 960 × 480 pixels at gonum/plot's 96 dpi.
const (
	chartWidth  = 10 * vg.Inch
	chartHeight = 5 * vg.Inch
	// chartLines bounds the channels drawn on one chart, and the
	// latency histograms written: beyond it colours stop telling lines
	// apart.
	chartLines = 6
	// binsPerDecade is the latency histograms' resolution: bins from
	// 1µs to 10µs are 1, 1.26, 1.58, 2, … µs wide.
	binsPerDecade = 10
)

// WritePlots writes PNG charts of the report into dir, creating it, and
// returns their paths: rates.png and bytes.png, the busiest channels'
// operations and bytes per second over time, and latency-N-MECHANISM.png,
// a histogram of the latencies of the Nth busiest channel.
func (r *Report) WritePlots(dir string) ([]string, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	if r.Intervals.Count == 0 {
		return nil, nil
	}
	var files []string
	save := func(p *plot.Plot, name string) error {
		path := filepath.Join(dir, name)
		if err := p.Save(chartWidth, chartHeight, path); err != nil {
			return fmt.Errorf("write %s: %w", path, err)
		}
		files = append(files, path)
		return nil
	}
	busiest := r.Top.BusiestByOperations[:min(chartLines, len(r.Top.BusiestByOperations))]
	p, err := r.rateChart("Operations per second", "operations/s", busiest, func(s *Series, i int) int64 { return s.Operations[i] })
	if err == nil {
		err = save(p, "rates.png")
	}
	if err != nil {
		return files, err
	}
	if byBytes := r.Top.BusiestByBytes[:min(chartLines, len(r.Top.BusiestByBytes))]; len(byBytes) > 0 {
		p, err := r.rateChart("Bytes moved per second", "bytes/s", byBytes, func(s *Series, i int) int64 {
			return max(s.SentBytes[i], s.ReceivedBytes[i])
		})
		if err == nil {
			err = save(p, "bytes.png")
		}
		if err != nil {
			return files, err
		}
	}
	n := 0
	for _, id := range busiest {
		c := r.Channel(id)
		if c.Latency.Count == 0 || c.raw == nil {
			continue // a report read back from JSON has no sketches to draw
		}
		n++
		p, err := latencyChart(c)
		if err == nil {
			err = save(p, fmt.Sprintf("latency-%d-%s.png", n, c.Mechanism))
		}
		if err != nil {
			return files, err
		}
	}
	return files, nil
}

// rateChart draws one line per channel: value(i) per second, against
// seconds since the first interval's start.
func (r *Report) rateChart(title, unit string, ids []string, value func(*Series, int) int64) (*plot.Plot, error) {
	p := plot.New()
	p.Title.Text = title
	p.X.Label.Text = "seconds from " + r.Intervals.Start.Format("2006-01-02 15:04:05.000 MST")
	p.Y.Label.Text = unit + " (per " + r.Intervals.Width().String() + " interval)"
	p.Legend.Top = true
	w := r.Intervals.Width().Seconds()
	for n, id := range ids {
		c := r.Channel(id)
		// A step per interval, and one more point to close the last.
		pts := make(plotter.XYs, r.Intervals.Count+1)
		for i := range r.Intervals.Count {
			pts[i] = plotter.XY{X: float64(i) * w, Y: float64(value(&c.PerInterval, i)) / w}
		}
		pts[r.Intervals.Count] = plotter.XY{X: float64(r.Intervals.Count) * w, Y: pts[r.Intervals.Count-1].Y}
		l, err := plotter.NewLine(pts)
		if err != nil {
			return nil, err
		}
		l.StepStyle = plotter.PostStep
		l.Color = plotutil.Color(n)
		l.Width = vg.Points(1.5)
		p.Add(l)
		p.Legend.Add(legend(c), l)
	}
	p.Add(plotter.NewGrid())
	// Room above the lines for the legend.
	p.Y.Max *= 1.1 + 0.07*float64(len(ids))
	return p, nil
}

func legend(c *ChannelStats) string {
	s := c.Mechanism + " " + c.Endpoint
	if r := []rune(s); len(r) > 60 {
		s = string(r[:28]) + "…" + string(r[len(r)-31:])
	}
	return s
}

// latencyChart is a histogram of a channel's latencies, on a log scale,
// read from its sketch.
func latencyChart(c *ChannelStats) (*plot.Plot, error) {
	counts := map[int]float64{}
	lo, hi := math.MaxInt, math.MinInt
	c.raw.latency.ForEach(func(v, n float64) bool {
		if v <= 0 {
			return false
		}
		b := int(math.Floor(math.Log10(v) * binsPerDecade))
		counts[b] += n
		lo, hi = min(lo, b), max(hi, b)
		return false
	})
	h := &plotter.Histogram{FillColor: plotutil.Color(0), LineStyle: plotter.DefaultLineStyle}
	for b := lo; b <= hi; b++ {
		h.Bins = append(h.Bins, plotter.HistogramBin{
			Min:    math.Pow(10, float64(b)/binsPerDecade),
			Max:    math.Pow(10, float64(b+1)/binsPerDecade),
			Weight: counts[b],
		})
	}
	p := plot.New()
	p.Title.Text = fmt.Sprintf("Latency: %s (p50 %s, p99 %s, %s operations)", legend(c),
		human.Duration(time.Duration(c.Latency.P50NS)), human.Duration(time.Duration(c.Latency.P99NS)), count(c.Latency.Count))
	p.X.Label.Text = "time in the call"
	p.Y.Label.Text = "operations"
	p.X.Scale = plot.LogScale{}
	p.X.Tick.Marker = plot.TickerFunc(func(min, max float64) []plot.Tick {
		ticks := plot.LogTicks{}.Ticks(min, max)
		for i := range ticks {
			if ticks[i].Label != "" {
				ticks[i].Label = time.Duration(ticks[i].Value).String()
			}
		}
		return ticks
	})
	p.Add(h, plotter.NewGrid())
	return p, nil
}
