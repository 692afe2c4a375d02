package anomaly

import (
	"math"
	"time"

	"github.com/DataDog/sketches-go/ddsketch"

	"github.com/icptrack/icptrack/flow"
)

// Latencies are compared as logarithms: a call that takes twice as long
// is as unusual at 5µs as at 5ms, and the spread of call times grows with
// them.
const (
	// latencySigmaFloor is the least sigma of a log latency: ln(10)/8,
	// so that with the threshold of 8 a p50 or p99 must rise tenfold
	// over the baseline's median before it is flagged, however steady the
	// baseline was. Less is not enough: on a 2-core machine whose cores
	// were both taken by other work, the p50 of the demo's
	// microsecond-long sends rose 5.4 times, which is load, not an
	// anomaly of the IPC.
	latencySigmaFloor = 0.2878
	// minP50Ops and minP99Ops are the fewest operations an interval needs
	// for its p50 and its p99 to be judged (or learned). Below 100, a p99
	// is the slowest single call, which one preemption decides.
	minP50Ops = 5
	minP99Ops = 100
	// minLatencyIntervals is the fewest baseline intervals with a p50 (or
	// p99) that a latency needs to be judged at all.
	minLatencyIntervals = 5
)

func newSketch() *ddsketch.DDSketch {
	sk, err := ddsketch.NewDefaultDDSketch(0.01)
	if err != nil {
		panic(err) // only for a relative accuracy outside (0, 1)
	}
	return sk
}

// addLatency adds op's time per call: a coalesced record's calls each
// count at their mean time in the call.
func addLatency(b *bucket, op *flow.Operation) {
	if b.latency == nil {
		b.latency = newSketch()
	}
	per, n := op.Duration, op.Ops()
	if n > 1 {
		per = op.Busy / time.Duration(n)
	}
	_ = b.latency.AddWithCount(float64(max(per, 1)), float64(n))
	b.latencyOps += float64(n)
}

// logQuantile is the natural logarithm of the quantile q of b's times, in
// nanoseconds.
func logQuantile(b *bucket, q float64) float64 {
	v, err := b.latency.GetValueAtQuantile(q)
	if err != nil {
		return 0
	}
	return math.Log(max(v, 1))
}

func learnLatency(s *series, b *bucket) {
	if b.latencyOps >= minP50Ops {
		s.base[0] = append(s.base[0], logQuantile(b, 0.5))
	}
	if b.latencyOps >= minP99Ops {
		s.base[1] = append(s.base[1], logQuantile(b, 0.99))
	}
}

// judgeLatency flags an interval whose p50 or p99 is at least Threshold
// sigmas above the baseline's median (as logarithms) and half as long
// again as the baseline's slowest interval.
func (d *Detector) judgeLatency(s *series, b *bucket, i int64) (Finding, bool) {
	var best Finding
	found := false
	for m, q := range []struct {
		name string
		q    float64
		min  float64
	}{{"p50", 0.5, minP50Ops}, {"p99", 0.99, minP99Ops}} {
		dist := s.dists[m]
		if b.latencyOps < q.min || dist.n < minLatencyIntervals {
			continue
		}
		x := logQuantile(b, q.q)
		z := dist.z(x)
		if z < d.opts.Threshold || x < dist.max+math.Log(1.5) {
			continue
		}
		if found && z <= best.Score {
			continue
		}
		found = true
		stats := &Stats{Median: math.Exp(dist.median), MAD: dist.mad, Max: math.Exp(dist.max), Log: true, Intervals: dist.n}
		best = Finding{
			Kind: Latency, Subject: s.key.subject(), Score: z, Metric: q.name, Value: math.Exp(x), Baseline: stats,
			Evidence: q.name + " " + durationString(math.Exp(x)) + " in " + d.intervalString(i) + " over " +
				countString(b.latencyOps) + " " + s.key.op + "s; baseline median " + durationString(stats.Median) +
				", max " + durationString(stats.Max) + ", MAD " + percentString(math.Exp(dist.mad)-1) +
				"; robust z " + zString(z),
		}
	}
	return best, found
}
