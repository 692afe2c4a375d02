package api

import "github.com/DataDog/sketches-go/ddsketch"

// latencyMerger reads percentiles of the union of an edge's latency
// sketches (all made alike, so their bins mean the same) by adding up
// their bins, without building a merged sketch: merging a sketch per
// bucket per edge was most of the time of a large graph. It is the
// sketches' own quantile rule (DDSketch's GetValueAtQuantile).
type latencyMerger struct {
	counts []float64 // by bin index - base
	base   int
	lo, hi int // the bins touched since reset, as counts' indexes
	total  float64
	sketch *ddsketch.DDSketch // one of those added: its mapping
}

func newLatencyMerger() *latencyMerger {
	return &latencyMerger{counts: make([]float64, 4096), base: -1024, lo: 1, hi: 0}
}

func (m *latencyMerger) reset() {
	if m.lo <= m.hi {
		clear(m.counts[m.lo : m.hi+1])
	}
	m.lo, m.hi, m.total, m.sketch = 1, 0, 0, nil
}

func (m *latencyMerger) add(s *ddsketch.DDSketch) {
	m.sketch = s
	s.GetPositiveValueStore().ForEach(func(index int, count float64) bool {
		j := index - m.base
		if j < 0 || j >= len(m.counts) {
			m.grow(index)
			j = index - m.base
		}
		m.counts[j] += count
		if m.lo > m.hi {
			m.lo, m.hi = j, j
		} else {
			m.lo, m.hi = min(m.lo, j), max(m.hi, j)
		}
		m.total += count
		return false
	})
}

// grow makes room for bin index, keeping what is counted.
func (m *latencyMerger) grow(index int) {
	lo, hi := min(index, m.base), max(index, m.base+len(m.counts)-1)
	counts := make([]float64, 2*(hi-lo+1))
	base := lo - (hi-lo+1)/2
	copy(counts[m.base-base:], m.counts)
	if m.lo <= m.hi {
		m.lo, m.hi = m.lo+m.base-base, m.hi+m.base-base
	}
	m.counts, m.base = counts, base
}

// quantile is the value at quantile q of what was added; 0 when nothing
// was.
func (m *latencyMerger) quantile(q float64) int64 {
	if m.total == 0 || m.sketch == nil {
		return 0
	}
	rank := float64(q * (m.total - 1))
	var n float64
	for j := m.lo; j <= m.hi; j++ {
		n += m.counts[j]
		if n > rank {
			return int64(m.sketch.Value(j + m.base))
		}
	}
	return int64(m.sketch.Value(m.hi + m.base))
}
