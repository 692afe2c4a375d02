// Package promtest scrapes a Prometheus /metrics endpoint for tests, as
// Prometheus itself parses it (the text exposition format).
package promtest

import (
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// Scrape is one scrape: each sample's value by its series, written as
// name{label="value",...} with the labels sorted (histograms as their
// _count and _sum); nil with the error when the scrape failed.
type Scrape map[string]float64

// Get scrapes url once.
func Get(url string) (Scrape, error) {
	c := http.Client{Timeout: 5 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("%s: %s", url, resp.Status)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	families, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", url, err)
	}
	out := Scrape{}
	for name, f := range families {
		for _, m := range f.GetMetric() {
			labels := series(m)
			switch {
			case m.Counter != nil:
				out[name+labels] = m.Counter.GetValue()
			case m.Gauge != nil:
				out[name+labels] = m.Gauge.GetValue()
			case m.Histogram != nil:
				out[name+"_count"+labels] = float64(m.Histogram.GetSampleCount())
				out[name+"_sum"+labels] = m.Histogram.GetSampleSum()
			case m.Untyped != nil:
				out[name+labels] = m.Untyped.GetValue()
			}
		}
	}
	return out, nil
}

func series(m *dto.Metric) string {
	var ls []string
	for _, l := range m.GetLabel() {
		ls = append(ls, fmt.Sprintf("%s=%q", l.GetName(), l.GetValue()))
	}
	slices.Sort(ls)
	return "{" + strings.Join(ls, ",") + "}"
}

// Sum adds the values of the series of metric name whose labels include
// every one of match (written label="value").
func (s Scrape) Sum(name string, match ...string) float64 {
	var sum float64
	for k, v := range s {
		i := strings.IndexByte(k, '{')
		if k[:i] != name {
			continue
		}
		ok := true
		for _, m := range match {
			ok = ok && strings.Contains(k[i:], m)
		}
		if ok {
			sum += v
		}
	}
	return sum
}

// Decreased names the counters (_total) and histogram counts and sums
// that are lower in later than in s: what Prometheus reads as a restart.
func (s Scrape) Decreased(later Scrape) []string {
	var out []string
	for k, v := range s {
		name := k[:strings.IndexByte(k, '{')]
		if !strings.HasSuffix(name, "_total") && !strings.HasSuffix(name, "_count") && !strings.HasSuffix(name, "_sum") {
			continue
		}
		if w, ok := later[k]; ok && w < v {
			out = append(out, fmt.Sprintf("%s: %v then %v", k, v, w))
		}
	}
	slices.Sort(out)
	return out
}
