package analyze

import (
	"math"
	"slices"
)

// mannWhitney is the two-sided p-value of the Mann–Whitney U test that x
// and y are samples of the same distribution: the normal approximation,
// with the correction for ties and for continuity. It makes no
// assumption about the distribution, so bursty rates with many empty
// intervals are fine; it wants about 5 or more samples on each side.
func mannWhitney(x, y []float64) float64 {
	n1, n2 := float64(len(x)), float64(len(y))
	if n1 == 0 || n2 == 0 {
		return 1
	}
	type sample struct {
		v     float64
		fromX bool
	}
	all := make([]sample, 0, len(x)+len(y))
	for _, v := range x {
		all = append(all, sample{v, true})
	}
	for _, v := range y {
		all = append(all, sample{v, false})
	}
	slices.SortFunc(all, func(a, b sample) int {
		switch {
		case a.v < b.v:
			return -1
		case a.v > b.v:
			return 1
		}
		return 0
	})
	// Ranks from 1; tied values share the mean of their ranks.
	var rx, ties float64
	for i := 0; i < len(all); {
		j := i
		for j < len(all) && all[j].v == all[i].v {
			j++
		}
		rank := float64(i+j+1) / 2
		for _, s := range all[i:j] {
			if s.fromX {
				rx += rank
			}
		}
		t := float64(j - i)
		ties += t*t*t - t
		i = j
	}
	n := n1 + n2
	u := rx - n1*(n1+1)/2
	mean := n1 * n2 / 2
	variance := n1 * n2 / 12 * ((n + 1) - ties/(n*(n-1)))
	if variance <= 0 {
		return 1 // every value the same
	}
	z := max(0, math.Abs(u-mean)-0.5) / math.Sqrt(variance)
	return math.Erfc(z / math.Sqrt2)
}
