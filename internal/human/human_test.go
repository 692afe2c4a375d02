package human

import (
	"testing"
	"time"
)

func TestDuration(t *testing.T) {
	for d, want := range map[time.Duration]string{
		870:                      "870ns",
		1540:                     "1.54µs",
		23_240_000:               "23.2ms",
		412 * time.Millisecond:   "412ms",
		3 * time.Second:          "3.00s",
		125 * time.Second:        "125s",
		999_999:                  "1000µs",
		time.Duration(5_500_000): "5.50ms",
	} {
		if got := Duration(d); got != want {
			t.Errorf("Duration(%d) = %q, want %q", d, got, want)
		}
	}
}
