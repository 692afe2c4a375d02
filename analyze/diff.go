package analyze

import (
	"cmp"
	"maps"
	"slices"
	"time"
)

// The measures a Change is about.
const (
	OperationsPerSecond = "operations_per_second"
	BytesPerSecond      = "bytes_per_second"
	LatencyP50          = "latency_p50_ns"
	LatencyP99          = "latency_p99_ns"
)

// Diff is what changed from capture A to capture B. Its JSON form is the
// output of icptrack diff --json.
type Diff struct {
	FormatVersion int  `json:"format_version"`
	A             Side `json:"a"`
	B             Side `json:"b"`
	// IntervalNS is the interval both captures' rates were counted in.
	IntervalNS   int64          `json:"interval_ns"`
	Rule         Rule           `json:"rule"`
	NewChannels  []ChannelGroup `json:"new_channels"`
	GoneChannels []ChannelGroup `json:"gone_channels"`
	NewPairs     []PairGroup    `json:"new_pairs"`
	GonePairs    []PairGroup    `json:"gone_pairs"`
	Changes      []Change       `json:"changes"`
	// MatchedChannels and MatchedPairs count the keys in both captures.
	MatchedChannels int `json:"matched_channels"`
	MatchedPairs    int `json:"matched_pairs"`
}

// Side is one capture of a Diff.
type Side struct {
	Start      time.Time `json:"start"`
	End        time.Time `json:"end"`
	DurationNS int64     `json:"duration_ns"`
	Operations int64     `json:"operations"`
}

// ChannelGroup is the channels of one capture with one Key.
type ChannelGroup struct {
	Key       string `json:"key"`
	Mechanism string `json:"mechanism"`
	// Endpoint is masked as in the key (MaskEndpoint).
	Endpoint   string   `json:"endpoint"`
	Comms      []string `json:"comms"`
	Channels   int      `json:"channels"`
	Operations int64    `json:"operations"`

	stats Stats // merged, for the comparison
}

// PairGroup is the pairs of one capture between two process names.
type PairGroup struct {
	From       string   `json:"from"`
	To         string   `json:"to"`
	Mechanisms []string `json:"mechanisms"`
	Operations int64    `json:"operations"`
}

// Change is a measure of a channel (by key) that moved beyond noise.
type Change struct {
	Key       string   `json:"key"`
	Mechanism string   `json:"mechanism"`
	Endpoint  string   `json:"endpoint"`
	Comms     []string `json:"comms"`
	Measure   string   `json:"measure"`
	// A and B are the measure in each capture: for rates, the mean per
	// second over the compared intervals.
	A float64 `json:"a"`
	B float64 `json:"b"`
	// Ratio is B/A; absent when A is 0.
	Ratio *float64 `json:"ratio"`
	// PValue is the Mann–Whitney test's, for rates.
	PValue *float64 `json:"p_value,omitempty"`
	// CountA and CountB are what was compared: intervals for rates,
	// timed operations for latencies.
	CountA int64 `json:"count_a"`
	CountB int64 `json:"count_b"`
}

// Changed reports whether the captures differ: a channel or pair new or
// gone, or a measure that moved.
func (d *Diff) Changed() bool {
	return len(d.NewChannels)+len(d.GoneChannels)+len(d.NewPairs)+len(d.GonePairs)+len(d.Changes) > 0
}

// Compare says what changed from the capture a analyzed to b's, with
// rates counted per interval (0: the longer of the two DefaultIntervals,
// so that both are counted alike).
func Compare(a, b *Analyzer, interval time.Duration, rule Rule) *Diff {
	if interval <= 0 {
		interval = max(a.DefaultInterval(), b.DefaultInterval())
	}
	ra, rb := a.ReportEvery(interval), b.ReportEvery(interval)
	if wa, wb := ra.Intervals.Width(), rb.Intervals.Width(); wa != wb {
		// One side had to widen its buckets (a tiny --interval over a
		// long capture): count both in the wider.
		ra, rb = a.ReportEvery(max(wa, wb)), b.ReportEvery(max(wa, wb))
	}
	d := &Diff{
		FormatVersion: FormatVersion, A: side(ra), B: side(rb), IntervalNS: rb.Intervals.WidthNS, Rule: rule,
		NewChannels: []ChannelGroup{}, GoneChannels: []ChannelGroup{}, NewPairs: []PairGroup{}, GonePairs: []PairGroup{},
		Changes: []Change{},
	}
	ga, gb := channelGroups(ra), channelGroups(rb)
	for _, k := range slices.Sorted(maps.Keys(gb)) {
		g, ok := ga[k]
		if !ok {
			d.NewChannels = append(d.NewChannels, *gb[k])
			continue
		}
		d.MatchedChannels++
		d.Changes = append(d.Changes, compareChannel(g, gb[k], ra, rb, rule)...)
	}
	for _, k := range slices.Sorted(maps.Keys(ga)) {
		if _, ok := gb[k]; !ok {
			d.GoneChannels = append(d.GoneChannels, *ga[k])
		}
	}
	pa, pb := pairGroups(ra), pairGroups(rb)
	for _, k := range slices.SortedFunc(maps.Keys(pb), comparePairKey) {
		if _, ok := pa[k]; ok {
			d.MatchedPairs++
		} else {
			d.NewPairs = append(d.NewPairs, *pb[k])
		}
	}
	for _, k := range slices.SortedFunc(maps.Keys(pa), comparePairKey) {
		if _, ok := pb[k]; !ok {
			d.GonePairs = append(d.GonePairs, *pa[k])
		}
	}
	return d
}

func side(r *Report) Side {
	return Side{Start: r.Start, End: r.End, DurationNS: r.DurationNS, Operations: r.Operations}
}

func channelGroups(r *Report) map[string]*ChannelGroup {
	groups := make(map[string]*ChannelGroup)
	for i := range r.Channels {
		c := &r.Channels[i]
		g := groups[c.Key]
		if g == nil {
			g = &ChannelGroup{Key: c.Key, Mechanism: c.Mechanism, Endpoint: MaskEndpoint(c.Mechanism, c.Endpoint)}
			for _, p := range c.Processes {
				g.Comms = append(g.Comms, p.name())
			}
			slices.Sort(g.Comms)
			g.Comms = slices.Compact(g.Comms)
			g.stats = Stats{
				PerInterval: Series{
					Operations:    make([]int64, r.Intervals.Count),
					SentBytes:     make([]int64, r.Intervals.Count),
					ReceivedBytes: make([]int64, r.Intervals.Count),
				},
				raw: &acc{},
			}
			groups[c.Key] = g
		}
		g.Channels++
		g.Operations += c.Operations
		g.stats.raw.merge(c.raw)
		for j := range r.Intervals.Count {
			g.stats.PerInterval.Operations[j] += c.PerInterval.Operations[j]
			g.stats.PerInterval.SentBytes[j] += c.PerInterval.SentBytes[j]
			g.stats.PerInterval.ReceivedBytes[j] += c.PerInterval.ReceivedBytes[j]
		}
	}
	return groups
}

func pairGroups(r *Report) map[[2]string]*PairGroup {
	groups := make(map[[2]string]*PairGroup)
	for _, p := range r.Pairs {
		k := [2]string{p.From.name(), p.To.name()}
		g := groups[k]
		if g == nil {
			g = &PairGroup{From: k[0], To: k[1]}
			groups[k] = g
		}
		g.Operations += p.Operations
		for _, m := range p.Mechanisms {
			if !slices.Contains(g.Mechanisms, m) {
				g.Mechanisms = append(g.Mechanisms, m)
			}
		}
		slices.Sort(g.Mechanisms)
	}
	return groups
}

func comparePairKey(x, y [2]string) int {
	return cmp.Or(cmp.Compare(x[0], y[0]), cmp.Compare(x[1], y[1]))
}
