package syslog

import "time"

// limiter is a token bucket: rate tokens a second, up to a second's worth
// saved, so a burst after a quiet spell passes whole.
type limiter struct {
	rate   float64 // 0: no limit
	tokens float64
	last   time.Time
}

func newLimiter(rate float64, now time.Time) limiter {
	return limiter{rate: rate, tokens: max(rate, 1), last: now}
}

// allow takes a token if there is one.
func (l *limiter) allow(now time.Time) bool {
	if l.rate == 0 {
		return true
	}
	if d := now.Sub(l.last); d > 0 {
		l.tokens = min(max(l.rate, 1), l.tokens+d.Seconds()*l.rate)
		l.last = now
	}
	if l.tokens < 1 {
		return false
	}
	l.tokens--
	return true
}
