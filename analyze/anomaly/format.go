package anomaly

import (
	"math"
	"strconv"
	"strings"
	"time"
)

// How numbers read in the evidence: three significant digits at most.

func countString(v float64) string {
	switch a := math.Abs(v); {
	case a == math.Trunc(a) || a >= 100:
		return strconv.FormatFloat(v, 'f', 0, 64)
	case a >= 10:
		return strconv.FormatFloat(v, 'f', 1, 64)
	}
	return strconv.FormatFloat(v, 'f', 2, 64)
}

func zString(z float64) string { return strconv.FormatFloat(z, 'f', 1, 64) }

func percentString(r float64) string { return strconv.FormatFloat(100*r, 'f', 0, 64) + "%" }

func durationString(ns float64) string {
	d := time.Duration(ns)
	switch {
	case d < time.Microsecond:
		return strconv.FormatInt(int64(d), 10) + "ns"
	case d < time.Millisecond:
		return countString(ns/1e3) + "µs"
	case d < time.Second:
		return countString(ns/1e6) + "ms"
	}
	return countString(ns/1e9) + "s"
}

func bytesString(v float64) string {
	const unit = 1024
	if v < unit {
		return countString(v) + "B"
	}
	v, suffix := v/unit, "KiB"
	for _, s := range []string{"MiB", "GiB", "TiB"} {
		if v < unit {
			break
		}
		v, suffix = v/unit, s
	}
	return strconv.FormatFloat(v, 'f', 1, 64) + suffix
}

// clockLayout shows fractions of a second when intervals are shorter.
func clockLayout(interval time.Duration) string {
	if interval%time.Second != 0 {
		return "15:04:05.000"
	}
	return "15:04:05"
}

func timeRange(from, to time.Time, interval time.Duration) string {
	l := clockLayout(interval)
	return from.Local().Format(l) + "–" + to.Local().Format(l)
}

func (d *Detector) intervalString(i int64) string { return d.rangeString(i, i) }

// rangeString shows intervals i to j of the examined capture.
func (d *Detector) rangeString(i, j int64) string {
	return timeRange(d.start(&d.exam, i), d.end(&d.exam, j), d.opts.Interval)
}

func joinEvidence(parts []string) string { return strings.Join(parts, "; and ") }
