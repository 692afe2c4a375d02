// Package human writes numbers for people: the summary's, analyze's
// and diff's durations, with three significant digits at most.
package human

import (
	"strconv"
	"time"
)

// Duration shows d with three significant digits: 870ns, 1.54µs, 23.2ms,
// 412ms, 3.00s.
func Duration(d time.Duration) string {
	switch {
	case d < time.Microsecond:
		return strconv.FormatInt(int64(d), 10) + "ns"
	case d < time.Millisecond:
		return Float(float64(d)/1e3) + "µs"
	case d < time.Second:
		return Float(float64(d)/1e6) + "ms"
	}
	return Float(d.Seconds()) + "s"
}

// Float shows v with three significant digits, for v below 1000: 1.54,
// 23.2, 412.
func Float(v float64) string {
	decimals := 0
	switch {
	case v < 10:
		decimals = 2
	case v < 100:
		decimals = 1
	}
	return strconv.FormatFloat(v, 'f', decimals, 64)
}
