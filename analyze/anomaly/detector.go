package anomaly

import (
	"errors"
	"fmt"
	"time"

	"github.com/icptrack/icptrack/flow"
)

// Detector learns a baseline of IPC traffic and flags what departs from
// it in a capture. Feed it operations one at a time: its memory grows with
// the channels, processes and baseline intervals, never with the
// operations.
//
// With Options.BaselineWindow, give it one capture with Add. Otherwise
// give it the baseline capture with Learn first, then the capture to
// examine with Add. Findings ends the detection.
type Detector struct {
	opts    Options
	lag     int64 // intervals kept open for late operations
	series  map[seriesKey]*series
	novelty novelty
	// endpoints caches stableEndpoint by mechanism and endpoint.
	endpoints map[[2]string]string

	learn, exam clock
	learned     bool // Learn was called
	frozen      bool // the baseline is learned
	baseN       int64
	baseline    Period
	findings    []Finding
	done        bool
}

// clock places one capture's operations on its grid of intervals, from
// its first operation's time, and says when an interval may be closed.
type clock struct {
	started bool
	t0      time.Time
	next    int64 // the first interval not yet closed
	latest  int64 // the latest interval an operation ended in
	last    time.Time
}

// New makes a Detector.
func New(opts Options) (*Detector, error) {
	if err := opts.fill(); err != nil {
		return nil, err
	}
	d := &Detector{
		opts:      opts,
		lag:       int64((lateness + opts.Interval - 1) / opts.Interval),
		series:    map[seriesKey]*series{},
		endpoints: map[[2]string]string{},
		novelty:   newNovelty(),
	}
	if opts.BaselineWindow > 0 {
		d.baseN = int64(opts.BaselineWindow / opts.Interval)
	}
	return d, nil
}

// Learn adds an operation of the baseline capture. It panics after Add,
// or on a Detector with a BaselineWindow: the baseline comes from one
// place.
func (d *Detector) Learn(op *flow.Operation) {
	if d.opts.BaselineWindow > 0 || d.exam.started || d.done {
		panic("anomaly: Learn after Add, or with a BaselineWindow")
	}
	d.learned = true
	i := d.place(&d.learn, op)
	d.record(op, i, true)
}

// Add adds an operation of the capture being examined.
func (d *Detector) Add(op *flow.Operation) {
	if d.done {
		panic("anomaly: Add after Findings")
	}
	if d.learned && !d.frozen {
		d.endLearning()
	}
	i := d.place(&d.exam, op)
	d.record(op, i, d.inWindow(i))
}

// inWindow reports whether interval i of the examined capture is in its
// baseline window.
func (d *Detector) inWindow(i int64) bool { return d.baseN > 0 && i < d.baseN }

// place puts op in an interval of c's grid, closing the intervals that
// can no longer receive operations, and returns the interval.
func (d *Detector) place(c *clock, op *flow.Operation) int64 {
	end := op.Time.Add(op.Duration)
	if !c.started {
		c.started, c.t0 = true, op.Time
	}
	if end.After(c.last) {
		c.last = end
	}
	i := max(int64(end.Sub(c.t0)/d.opts.Interval), c.next)
	if i > c.latest {
		c.latest = i
		for c.next < c.latest-d.lag {
			d.close(c, c.next, false)
		}
	}
	return i
}

// start and end of interval i on c's grid.
func (d *Detector) start(c *clock, i int64) time.Time {
	return c.t0.Add(time.Duration(i) * d.opts.Interval)
}
func (d *Detector) end(c *clock, i int64) time.Time { return d.start(c, i+1) }

// close ends interval i: its values join the baseline, or are judged
// against it. partial says the capture ended inside it.
func (d *Detector) close(c *clock, i int64, partial bool) {
	baseline := c == &d.learn || d.inWindow(i)
	for _, s := range d.series {
		b := s.bucket(i, d.lag)
		if baseline {
			if s.learning {
				s.learn(b)
			}
		} else if d.frozen {
			if f, ok := s.judge(d, b, i, partial); ok {
				s.flag(d, f, i)
			} else {
				s.unflag(d, i)
			}
		}
		b.reset()
	}
	c.next = i + 1
	if c == &d.exam && d.baseN > 0 && i == d.baseN-1 {
		d.baseline = Period{Source: "window", From: c.t0, To: d.end(c, i), Intervals: int(d.baseN)}
		d.freeze()
	}
}

// endLearning closes the baseline capture's whole intervals and learns
// from them. Its last interval, which the capture ended inside, is left
// out: it would look quiet.
func (d *Detector) endLearning() {
	c := &d.learn
	for c.next < c.latest {
		d.close(c, c.next, false)
	}
	for _, s := range d.series {
		s.bucket(c.latest, d.lag).reset()
	}
	d.baseline = Period{Source: "capture", From: c.t0, To: d.start(c, c.latest), Intervals: int(c.latest)}
	d.freeze()
}

// freeze turns the baseline's values into distributions and forgets them.
func (d *Detector) freeze() {
	for _, s := range d.series {
		s.freeze(d.learned)
	}
	d.novelty.freeze(d.learned)
	d.frozen = true
}

// record adds op to the interval i of its series and to what novelty
// tracks.
func (d *Detector) record(op *flow.Operation, i int64, baseline bool) {
	d.novelty.add(op, i, baseline, d)
	for _, k := range d.keysOf(op) {
		s := d.series[k]
		if s == nil {
			s = newSeries(k, d.lag)
			d.series[k] = s
			if baseline {
				// Silent so far: zeros for the baseline intervals before.
				s.learning = true
				s.prefill(d.closedBaseline())
			}
		}
		s.add(op, s.bucket(i, d.lag))
	}
}

// closedBaseline is how many baseline intervals are closed so far.
func (d *Detector) closedBaseline() int {
	if d.learned {
		return int(d.learn.next)
	}
	return int(min(d.exam.next, d.baseN))
}

// Findings closes the capture and returns what the detection found. Call
// it once, after the last Add.
func (d *Detector) Findings() (*Report, error) {
	if d.done {
		return nil, errors.New("anomaly: Findings called twice")
	}
	d.done = true
	if d.learned && !d.frozen {
		d.endLearning()
	}
	if d.learned && d.baseline.Intervals < MinBaselineIntervals {
		return nil, fmt.Errorf("the baseline capture covers %d whole intervals of %s (%s), and needs at least %d: give a longer baseline capture",
			d.baseline.Intervals, d.opts.Interval, d.baseline.To.Sub(d.baseline.From), MinBaselineIntervals)
	}
	if !d.learned && d.baseN == 0 {
		return nil, errors.New("no baseline: set a baseline window or learn from a baseline capture")
	}
	c := &d.exam
	if !c.started {
		return nil, errors.New("the capture to examine has no operations")
	}
	if d.baseN > 0 && c.latest < d.baseN {
		return nil, fmt.Errorf("the capture lasts %s, no longer than its baseline window of %s: nothing is left to examine (give a shorter baseline window)",
			c.last.Sub(c.t0).Round(time.Millisecond), d.opts.BaselineWindow)
	}
	for c.next <= c.latest {
		d.close(c, c.next, c.next == c.latest)
	}
	for _, s := range d.series {
		s.unflag(d, c.latest+1)
	}
	d.findings = append(d.findings, d.novelty.findings(d)...)
	sortFindings(d.findings)
	from := c.t0
	if d.baseN > 0 {
		from = d.end(c, d.baseN-1)
	}
	return &Report{
		Interval: d.opts.Interval,
		Baseline: d.baseline,
		Examined: Period{From: from, To: c.last, Intervals: int(c.latest + 1 - d.baseN)},
		Findings: d.findings,
	}, nil
}
