package anomaly

import (
	"math"
	"slices"
)

// madToSigma turns a median absolute deviation into the standard
// deviation it stands for when the data are normal, so that a robust z
// reads like an ordinary one.
const madToSigma = 1.4826

// dist is what the baseline says about one measure of one subject: the
// median, the median absolute deviation and the extremes of its values,
// one value per interval.
type dist struct {
	median, mad, min, max float64
	n                     int
	// floor is the least spread the measure is allowed (see sigma).
	floor float64
}

// newDist summarises values (which it reorders).
func newDist(values []float64, floor float64) dist {
	d := dist{n: len(values), floor: floor}
	if len(values) == 0 {
		return d
	}
	d.median = median(values)
	d.min, d.max = values[0], values[len(values)-1]
	dev := make([]float64, len(values))
	for i, v := range values {
		dev[i] = math.Abs(v - d.median)
	}
	d.mad = median(dev)
	return d
}

// sigma is the spread a value is measured against: the MAD as a standard
// deviation, but never less than the floor. Without the floor a baseline
// that never varied (a MAD of 0) would make any change infinitely
// unlikely.
func (d dist) sigma() float64 {
	return max(madToSigma*d.mad, d.floor)
}

// z is x's robust z score: how many sigmas it lies from the median.
func (d dist) z(x float64) float64 {
	return (x - d.median) / d.sigma()
}

// median sorts values and returns their median.
func median(values []float64) float64 {
	slices.Sort(values)
	n := len(values)
	if n == 0 {
		return 0
	}
	if n%2 == 1 {
		return values[n/2]
	}
	return (values[n/2-1] + values[n/2]) / 2
}

// theilSen is the Theil–Sen slope of ys taken at x = 0, 1, 2, …: the
// median of the slopes between every pair of points. A few outliers
// cannot move it, unlike a least-squares fit.
func theilSen(ys []float64) float64 {
	var slopes []float64
	for i := range ys {
		for j := i + 1; j < len(ys); j++ {
			slopes = append(slopes, (ys[j]-ys[i])/float64(j-i))
		}
	}
	return median(slopes)
}
