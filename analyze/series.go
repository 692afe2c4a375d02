package analyze

import "time"

// ladder is the interval widths chosen when none is asked for. Each is a
// whole multiple of the one before, so buckets of one width merge exactly
// into buckets of the next; past the last, widths double.
var ladder = []time.Duration{
	time.Millisecond, 2 * time.Millisecond, 10 * time.Millisecond, 20 * time.Millisecond,
	100 * time.Millisecond, 200 * time.Millisecond, time.Second, 2 * time.Second,
	10 * time.Second, 20 * time.Second, time.Minute, 2 * time.Minute,
	10 * time.Minute, 20 * time.Minute, time.Hour, 2 * time.Hour,
	6 * time.Hour, 12 * time.Hour, 24 * time.Hour,
}

// nextWidth is the ladder's next width above w.
func nextWidth(w time.Duration) time.Duration {
	for _, l := range ladder {
		if l > w {
			return l
		}
	}
	return 2 * w
}

// maxBuckets bounds the buckets a capture spans while it is read: past
// it, every series merges into buckets of the ladder's next width.
// reportBuckets is how many intervals a report aims at when it chooses
// its own interval.
// maxFixedBuckets bounds them when the width was asked for: past it,
// the width doubles, so that a tiny --interval over a long capture
// cannot take all memory.
const (
	maxBuckets      = 1000
	maxFixedBuckets = 100_000
	reportBuckets   = 100
)

// series counts operations and bytes per interval bucket; bucket i covers
// [i·width, (i+1)·width) in Unix nanoseconds. It holds only the buckets
// from its first operation to its last.
type series struct {
	first int64
	ops   []int64
	bytes []int64
}

func (s *series) add(bucket, ops, bytes int64) {
	switch {
	case len(s.ops) == 0:
		s.first = bucket
		s.ops, s.bytes = []int64{0}, []int64{0}
	case bucket < s.first:
		// Operations arrive in the order they completed, so one that
		// started earlier can come later.
		grow := int(s.first - bucket)
		s.ops = append(make([]int64, grow, grow+len(s.ops)), s.ops...)
		s.bytes = append(make([]int64, grow, grow+len(s.bytes)), s.bytes...)
		s.first = bucket
	}
	i := int(bucket - s.first)
	for i >= len(s.ops) {
		s.ops = append(s.ops, 0)
		s.bytes = append(s.bytes, 0)
	}
	s.ops[i] += ops
	s.bytes[i] += bytes
}

// coarsen merges every k buckets into one, for a width k times wider.
func (s *series) coarsen(k int64) {
	if len(s.ops) == 0 {
		return
	}
	first := floorDiv(s.first, k)
	n := floorDiv(s.first+int64(len(s.ops))-1, k) - first + 1
	ops, bytes := make([]int64, n), make([]int64, n)
	for i := range s.ops {
		j := floorDiv(s.first+int64(i), k) - first
		ops[j] += s.ops[i]
		bytes[j] += s.bytes[i]
	}
	s.first, s.ops, s.bytes = first, ops, bytes
}

func floorDiv(a, b int64) int64 {
	q := a / b
	if (a%b != 0) && ((a < 0) != (b < 0)) {
		q--
	}
	return q
}
