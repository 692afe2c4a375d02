package exporter

import "time"

// capWindow is how often the cap re-estimates the rate of operations.
const capWindow = 250 * time.Millisecond

// capBurst is the time's worth of the allowed rate that a window may run
// ahead of it before the cap cuts the probability within the window: a
// flood that starts mid-window must not fill the export queue before the
// window ends.
const capBurst = 50 * time.Millisecond

// spanCap is --max-spans-per-second: it picks the sampling probability
// that keeps the spans exported near the allowed rate, from the rate of
// operations offered. The probability applies to new traces only (a
// trace keeps the threshold it started with), so spans of traces that
// were kept earlier still arrive; the exported rate measured corrects
// for them.
//
// While the export queue fills (the backend or the sender cannot keep
// up with even the allowed rate) the allowed rate is halved each window,
// and it grows back by half a window once the queue has drained.
type spanCap struct {
	max     float64 // spans per second asked for
	allowed float64 // spans per second allowed now: max, or less while the queue fills
	fill    func() float64
	// p is the probability the cap allows new traces; the sampler uses
	// the smaller of it and the configured ratio.
	p float64

	start             time.Time
	offered, exported float64 // this window
}

func newSpanCap(max float64, fill func() float64) *spanCap {
	return &spanCap{max: max, allowed: max, fill: fill, p: 1}
}

// count notes one operation offered, and whether its span was exported.
func (c *spanCap) count(exported bool) {
	c.offered++
	if exported {
		c.exported++
	}
}

// update re-estimates the probability at now, with peff the probability
// new traces were sampled with (the cap's or the ratio's, whichever was
// smaller). It reports whether p changed.
func (c *spanCap) update(now time.Time, peff float64) bool {
	el := now.Sub(c.start)
	if c.start.IsZero() || el < 0 {
		c.reset(now)
		return false
	}
	old := c.p
	secs := el.Seconds()
	if el < capWindow {
		// Mid-window: cut at once if exports already ran past the
		// window's budget and a burst.
		if c.offered > 0 && c.exported > c.allowed*(secs+capBurst.Seconds()) {
			c.p = c.clamp(min(c.p, c.allowed*secs/c.offered))
		}
		return c.p != old
	}
	if c.fill != nil {
		switch f := c.fill(); {
		case f > 0.5:
			c.allowed = max(c.allowed/2, c.max/32)
		case f < 0.125:
			c.allowed = min(c.max, c.allowed*1.5)
		}
	}
	target := 1.0
	if c.offered > 0 {
		// Open loop: the fraction of what was offered that fits.
		target = c.allowed * secs / c.offered
	}
	if rate := c.exported / secs; rate > c.allowed && peff > 0 {
		// Closed loop: traces kept earlier (at a higher probability)
		// still bring spans, so go lower in proportion.
		target = min(target, peff*c.allowed/rate)
	}
	c.p = c.clamp(target)
	c.reset(now)
	return c.p != old
}

func (c *spanCap) reset(now time.Time) {
	c.start, c.offered, c.exported = now, 0, 0
}

func (c *spanCap) clamp(p float64) float64 {
	return min(1, max(p, minProbability))
}
