package analyze

import (
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/icptrack/icptrack/internal/human"
)

// noValue stands where a statistic has nothing to show (no operation was
// timed, none moved data): a made-up 0 would look like a fact.
const noValue = "—"

// sparkWidth bounds a sparkline: more intervals are summed in pairs,
// threes, … to fit.
const sparkWidth = 50

// WriteText writes the report for people: aligned tables in human units.
func (r *Report) WriteText(w io.Writer) error {
	tw := tabwriter.NewWriter(&trimmed{w: w}, 0, 0, 2, ' ', 0)
	p := func(format string, args ...any) { fmt.Fprintf(tw, format, args...) }
	if r.Operations == 0 {
		p("icptrack analyze: no operations\n")
		return tw.Flush()
	}
	p("icptrack analyze: %s operations (%s records) by %d processes on %d channels over %s\n",
		count(r.Operations), count(r.Records), len(r.Processes), len(r.Channels), human.Duration(time.Duration(r.DurationNS)))
	p("from %s to %s, rates in %s intervals\n", r.Start.Format("2006-01-02 15:04:05.000000"), r.End.Format("15:04:05.000000 MST"), r.Intervals.Width())

	p("\nMap: who talks to whom\n")
	for _, l := range r.Map {
		p("  %s\t%s\t%s\t%s\t%s\t%s\n", linkText(l), l.Mechanism, l.Endpoint, opsText(l.Operations), bytesOf(l.Bytes), channelsText(l.Channels))
	}
	if err := tw.Flush(); err != nil {
		return err
	}

	p("\nTop talkers\n")
	p("  PROCESS\tOPS\tSENT\tRECEIVED\tBLOCKED\tRANK BY BYTES\tRANK BY OPS\n")
	talkers := slices.Clone(r.Top.TalkersByBytes)
	for _, q := range r.Top.TalkersByOperations {
		if !slices.Contains(talkers, q) {
			talkers = append(talkers, q)
		}
	}
	for _, q := range talkers {
		s := r.Process(q)
		p("  %s\t%s\t%s\t%s\t%s\t%s\t%s\n", q, count(s.Operations), bytesOf(s.SentBytes), bytesOf(s.ReceivedBytes),
			blockedText(s.Blocked), rank(r.Top.TalkersByBytes, q), rank(r.Top.TalkersByOperations, q))
	}

	if err := tw.Flush(); err != nil {
		return err
	}

	p("\nBusiest channels\n")
	p("  MECHANISM\tENDPOINT\tOPS/S\tPEAK OPS/S\tBYTES/S\tPEAK BYTES/S\tRANK BY OPS\tRANK BY BYTES\n")
	busiest := slices.Clone(r.Top.BusiestByOperations)
	for _, id := range r.Top.BusiestByBytes {
		if !slices.Contains(busiest, id) {
			busiest = append(busiest, id)
		}
	}
	for _, id := range busiest {
		c := r.Channel(id)
		p("  %s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", c.Mechanism, c.Endpoint, perSecond(c.OperationsPerSecond), perSecond(c.PeakOperationsPerSecond),
			bytesPerSecond(c.BytesPerSecond), bytesPerSecond(c.PeakBytesPerSecond), rank(r.Top.BusiestByOperations, id), rank(r.Top.BusiestByBytes, id))
	}

	if err := tw.Flush(); err != nil {
		return err
	}

	if len(r.Top.Slowest) > 0 {
		p("\nSlowest channels (by p99 latency)\n")
		p("  MECHANISM\tENDPOINT\tTIMED OPS\tP50\tP99\tMAX\n")
		for _, id := range r.Top.Slowest {
			c := r.Channel(id)
			p("  %s\t%s\t%s\t%s\t%s\t%s\n", c.Mechanism, c.Endpoint, count(c.Latency.Count),
				human.Duration(time.Duration(c.Latency.P50NS)), human.Duration(time.Duration(c.Latency.P99NS)), human.Duration(time.Duration(c.Latency.MaxNS)))
		}
	}
	if err := tw.Flush(); err != nil {
		return err
	}

	p("\nChannels\n")
	p("  MECHANISM\tENDPOINT\tPROCESSES\tOPS\tSENT\tRECEIVED\tSIZE MEAN/P50/P99\tLATENCY P50/P99\tBLOCKED\tERRORS\n")
	for _, c := range r.Channels {
		names := make([]string, len(c.Processes))
		for i, q := range c.Processes {
			names[i] = q.String()
		}
		p("  %s\t%s\t%s\t%s\n", c.Mechanism, c.Endpoint, strings.Join(names, " "), statsColumns(&c.Stats))
	}
	if err := tw.Flush(); err != nil {
		return err
	}

	p("\nPairs (sender → receiver)\n")
	p("  FROM\tTO\tOVER\tOPS\tSENT\tRECEIVED\tSIZE MEAN/P50/P99\tLATENCY P50/P99\tBLOCKED\tERRORS\n")
	for _, q := range r.Pairs {
		p("  %s\t%s\t%s\t%s\n", q.From, q.To, strings.Join(q.Mechanisms, ","), statsColumns(&q.Stats))
	}
	if err := tw.Flush(); err != nil {
		return err
	}

	r.writeSparklines(tw)
	return tw.Flush()
}

func linkText(l Link) string {
	names := make([]string, len(l.Processes))
	for i, q := range l.Processes {
		names[i] = q.String()
	}
	switch l.Direction {
	case BothWays:
		return strings.Join(names, " ⇄ ")
	case OneWay:
		return strings.Join(names, " → ")
	}
	return strings.Join(names, ", ") + " share"
}

// opsText is a number of operations with its noun: 1 op, 38 ops, 1.20k ops.
func opsText(n int64) string {
	if n == 1 {
		return "1 op"
	}
	return count(n) + " ops"
}

func channelsText(n int) string {
	if n == 1 {
		return ""
	}
	return fmt.Sprintf("%d channels", n)
}

func rank[T comparable](list []T, x T) string {
	if i := slices.Index(list, x); i >= 0 {
		return fmt.Sprint(i + 1)
	}
	return ""
}

// statsColumns are the tab-separated columns from OPS to ERRORS.
func statsColumns(s *Stats) string {
	size := noValue
	if s.MessageSize.Count > 0 {
		size = fmt.Sprintf("%s/%s/%s", bytesOf(int64(s.MessageSize.Mean+0.5)), bytesOf(int64(s.MessageSize.P50)), bytesOf(int64(s.MessageSize.P99)))
	}
	latency := noValue
	if s.Latency.Count > 0 {
		latency = human.Duration(time.Duration(s.Latency.P50NS)) + "/" + human.Duration(time.Duration(s.Latency.P99NS))
	}
	return fmt.Sprintf("%s\t%s\t%s\t%s\t%s\t%s\t%s\t", count(s.Operations), bytesOf(s.SentBytes), bytesOf(s.ReceivedBytes),
		size, latency, blockedText(s.Blocked), errorsText(s.Errors))
}

// blockedText is how long the blocked operations took, and how many
// there were: 1.88ms in 14.
func blockedText(b Blocked) string {
	if b.Operations == 0 {
		return noValue
	}
	return fmt.Sprintf("%s in %s", human.Duration(time.Duration(b.TimeNS)), count(b.Operations))
}

// errorsText lists errnos by count, most first: EAGAIN×20 EPIPE×1.
func errorsText(errs map[string]int64) string {
	if len(errs) == 0 {
		return noValue
	}
	names := make([]string, 0, len(errs))
	for k := range errs {
		names = append(names, k)
	}
	slices.SortFunc(names, func(a, b string) int {
		if errs[a] != errs[b] {
			return int(errs[b] - errs[a])
		}
		return strings.Compare(a, b)
	})
	for i, n := range names {
		names[i] = n + "×" + count(errs[n])
	}
	return strings.Join(names, " ")
}

// writeSparklines draws the busiest channels' operations over time.
func (r *Report) writeSparklines(w io.Writer) {
	if len(r.Top.BusiestByOperations) == 0 || r.Intervals.Count == 0 {
		return
	}
	k := (r.Intervals.Count + sparkWidth - 1) / sparkWidth
	fmt.Fprintf(w, "\nOperations over time (a mark is %s, from %s)\n", r.Intervals.Width()*time.Duration(k),
		r.Intervals.Start.Format("15:04:05.000000"))
	for _, id := range r.Top.BusiestByOperations {
		c := r.Channel(id)
		fmt.Fprintf(w, "  %s\t%s\t%s\tpeak %s\n", c.Mechanism, c.Endpoint, sparkline(c.PerInterval.Operations, k), perSecond(c.PeakOperationsPerSecond))
	}
}

// sparkline draws counts, summed k at a time, as bars of eight heights;
// an empty interval is a space, so that silence shows.
func sparkline(counts []int64, k int) string {
	bars := []rune("▁▂▃▄▅▆▇█")
	var sums []int64
	var top int64
	for i := 0; i < len(counts); i += k {
		var s int64
		for _, n := range counts[i:min(i+k, len(counts))] {
			s += n
		}
		sums = append(sums, s)
		top = max(top, s)
	}
	var b strings.Builder
	for _, s := range sums {
		if s == 0 {
			b.WriteRune(' ')
			continue
		}
		b.WriteRune(bars[int((s*int64(len(bars))-1)/max(top, 1))])
	}
	return b.String()
}
