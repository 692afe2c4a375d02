package analyze

import (
	"slices"
	"time"
)

// Rule is when Compare calls a difference a change rather than noise.
//
// Rates: a channel's operations per interval, and its bytes moved per
// interval, are compared between the two captures over the intervals
// from the channel's first operation to its last. They changed when the
// Mann–Whitney U test says the two sets of intervals differ (two-sided
// p below MaxPValue, each side at least MinIntervals intervals) and the
// mean rates differ by at least MinRateRatio (B/A ≥ MinRateRatio or
// ≤ 1/MinRateRatio).
//
// Latency: a channel's p50 changed when B's p25, p50 and p75 are each
// at least MinLatencyRatio times A's, or each at most 1/MinLatencyRatio
// of them, and each side timed at least MinP50Count operations; its p99
// likewise with p90 and p99 and MinP99Count. Asking the neighbouring
// quantiles to move too keeps a latency with two modes (calls that
// waited for the other end and calls that did not) from being called
// changed when the median merely lands on the other mode.
type Rule struct {
	MinIntervals    int     `json:"min_intervals"`
	MaxPValue       float64 `json:"max_p_value"`
	MinRateRatio    float64 `json:"min_rate_ratio"`
	MinLatencyRatio float64 `json:"min_latency_ratio"`
	MinP50Count     int64   `json:"min_p50_count"`
	MinP99Count     int64   `json:"min_p99_count"`
}

// DefaultRule is diff's rule.
var DefaultRule = Rule{
	MinIntervals:    5,
	MaxPValue:       0.001,
	MinRateRatio:    1.5,
	MinLatencyRatio: 2,
	MinP50Count:     20,
	MinP99Count:     500,
}

// compareChannel applies the rule to one key's channels in A and B.
func compareChannel(a, b *ChannelGroup, ra, rb *Report, rule Rule) []Change {
	var changes []Change
	change := func(measure string, va, vb float64, na, nb int64) Change {
		c := Change{Key: b.Key, Mechanism: b.Mechanism, Endpoint: b.Endpoint, Comms: b.Comms,
			Measure: measure, A: va, B: vb, CountA: na, CountB: nb}
		if va != 0 {
			ratio := vb / va
			c.Ratio = &ratio
		}
		return c
	}
	opsA, bytesA := activeRates(&a.stats.PerInterval, ra.Intervals.Width())
	opsB, bytesB := activeRates(&b.stats.PerInterval, rb.Intervals.Width())
	for _, m := range []struct {
		measure string
		a, b    []float64
	}{{OperationsPerSecond, opsA, opsB}, {BytesPerSecond, bytesA, bytesB}} {
		if len(m.a) < rule.MinIntervals || len(m.b) < rule.MinIntervals {
			continue
		}
		ma, mb := mean(m.a), mean(m.b)
		if ma == 0 && mb == 0 {
			continue
		}
		if ma > 0 && mb > 0 && mb/ma < rule.MinRateRatio && ma/mb < rule.MinRateRatio {
			continue
		}
		p := mannWhitney(m.a, m.b)
		if p >= rule.MaxPValue {
			continue
		}
		c := change(m.measure, ma, mb, int64(len(m.a)), int64(len(m.b)))
		c.PValue = &p
		changes = append(changes, c)
	}
	la, lb := a.stats.raw, b.stats.raw
	for _, q := range []struct {
		measure string
		// quantiles: the one reported, then its neighbours, which must
		// move with it.
		quantiles []float64
		min       int64
	}{{LatencyP50, []float64{0.5, 0.25, 0.75}, rule.MinP50Count}, {LatencyP99, []float64{0.99, 0.9}, rule.MinP99Count}} {
		if la.timed < max(q.min, 1) || lb.timed < max(q.min, 1) {
			continue
		}
		up, down := true, true
		for _, x := range q.quantiles {
			va := quantile(la.latency.GetValueAtQuantile, x)
			vb := quantile(lb.latency.GetValueAtQuantile, x)
			up = up && va > 0 && vb >= va*rule.MinLatencyRatio
			down = down && vb > 0 && va >= vb*rule.MinLatencyRatio
		}
		if !up && !down {
			continue
		}
		va := quantile(la.latency.GetValueAtQuantile, q.quantiles[0])
		vb := quantile(lb.latency.GetValueAtQuantile, q.quantiles[0])
		changes = append(changes, change(q.measure, float64(int64(va)), float64(int64(vb)), la.timed, lb.timed))
	}
	return changes
}

// activeRates are a series' operations and bytes moved per second, in
// each interval from its first operation to its last.
func activeRates(s *Series, width time.Duration) (ops, bytes []float64) {
	first := slices.IndexFunc(s.Operations, func(n int64) bool { return n > 0 })
	if first < 0 {
		return nil, nil
	}
	last := len(s.Operations) - 1
	for s.Operations[last] == 0 {
		last--
	}
	w := width.Seconds()
	for i := first; i <= last; i++ {
		ops = append(ops, float64(s.Operations[i])/w)
		bytes = append(bytes, float64(max(s.SentBytes[i], s.ReceivedBytes[i]))/w)
	}
	return ops, bytes
}

func mean(v []float64) float64 {
	var s float64
	for _, x := range v {
		s += x
	}
	return s / float64(len(v))
}
