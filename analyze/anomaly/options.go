package anomaly

import (
	"fmt"
	"time"
)

// Defaults of Options.
const (
	DefaultInterval       = time.Second
	DefaultBaselineWindow = 30 * time.Second
	DefaultThreshold      = 8.0
)

// MinBaselineIntervals is the fewest whole intervals a baseline must cover:
// a median and a MAD of fewer values say too little.
const MinBaselineIntervals = 10

// lateness is how far out of order operations may arrive (the event log
// holds a receive back until its sends are written, at most 250ms): an
// interval is judged only once the capture has moved this far past its
// end. A later operation counts in the oldest interval still open.
const lateness = time.Second

// Options configure a Detector.
type Options struct {
	// Interval is what rates, latencies, error and signal counts and
	// queue depths are measured over. Default 1s.
	Interval time.Duration
	// BaselineWindow, when above 0, makes the first BaselineWindow of the
	// capture given to Add (from its first operation's time) the
	// baseline, and the rest what is examined. At 0, the baseline is what
	// was given to Learn. It must cover MinBaselineIntervals intervals.
	BaselineWindow time.Duration
	// Threshold is the robust z score beyond which a measure is flagged
	// (rates, latencies, errors, signals). Default 8.
	Threshold float64
}

func (o *Options) fill() error {
	if o.Interval == 0 {
		o.Interval = DefaultInterval
	}
	if o.Threshold == 0 {
		o.Threshold = DefaultThreshold
	}
	switch {
	case o.Interval < 0:
		return fmt.Errorf("interval %s: must be positive", o.Interval)
	case o.Threshold < 0:
		return fmt.Errorf("threshold %g: must be positive", o.Threshold)
	case o.BaselineWindow < 0:
		return fmt.Errorf("baseline window %s: must be positive", o.BaselineWindow)
	case o.BaselineWindow > 0 && o.BaselineWindow < MinBaselineIntervals*o.Interval:
		return fmt.Errorf("baseline window %s is shorter than %d intervals of %s: give it at least %s",
			o.BaselineWindow, MinBaselineIntervals, o.Interval, MinBaselineIntervals*o.Interval)
	}
	return nil
}
