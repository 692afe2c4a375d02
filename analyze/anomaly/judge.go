package anomaly

import "math"

// judge decides whether interval i of the examined capture is anomalous
// for s. partial says the capture ended inside it: its counts are then
// too low, so only rises are judged.
func (s *series) judge(d *Detector, b *bucket, i int64, partial bool) (Finding, bool) {
	var f Finding
	var ok bool
	switch s.key.kind {
	case Rate:
		if !s.known {
			return Finding{}, false // a new channel: novelty reports it
		}
		f, ok = d.judgeRate(s, b, i, partial)
	case Latency:
		if !s.known {
			return Finding{}, false
		}
		f, ok = d.judgeLatency(s, b, i)
	case ErrorBurst, SignalStorm:
		f, ok = d.judgeCount(s, b, i)
	case QueueGrowth:
		f, ok = d.judgeQueue(s, b, i)
	}
	if ok && f.From.IsZero() {
		f.From = d.start(&d.exam, i)
	}
	f.To = d.end(&d.exam, i)
	return f, ok
}

// poissonSigma is the least sigma of a count whose median is m: counts of
// independent events vary by about their square root even when nothing
// changes, so a quiet subject's baseline cannot make a handful more look
// unusual.
func poissonSigma(m float64) float64 { return math.Sqrt(max(m, 1)) }

// high and low apply the rules for counts and rates: at least Threshold
// sigmas from the median, and beyond the baseline's own extremes by half
// (above 1.5 × its busiest interval, or below its quietest ÷ 1.5), so
// that what the baseline did now and then is never flagged.
func (d *Detector) high(dist dist, x float64) (float64, bool) {
	z := dist.z(x)
	return z, z >= d.opts.Threshold && x >= 1.5*dist.max && x > 0
}

func (d *Detector) low(dist dist, x float64) (float64, bool) {
	z := dist.z(x)
	return z, z <= -d.opts.Threshold && x <= dist.min/1.5
}

// minRateOps is the fewest operations an interval needs for its bytes to
// be judged. Without it, one large message on an endpoint that in the
// baseline moved few or no bytes (a read of end of file) would score as
// high as a flood.
const minRateOps = 5

// judgeRate flags a rise or a fall of a process's operations or bytes per
// second on a channel.
func (d *Detector) judgeRate(s *series, b *bucket, i int64, partial bool) (Finding, bool) {
	per := d.opts.Interval.Seconds()
	measures := []struct {
		metric string
		x      float64
		show   func(float64) string
	}{
		{"ops/s", b.ops, countString},
		{"bytes/s", max(b.bytesSent, b.bytesRecv), bytesString},
	}
	var best Finding
	var evidence []string
	for m, ms := range measures {
		dist := s.dists[m]
		if ms.metric == "bytes/s" && b.ops < minRateOps {
			continue // a big message or two is not a rate
		}
		z, ok := d.high(dist, ms.x)
		if !ok && !partial {
			z, ok = d.low(dist, ms.x)
		}
		if !ok {
			continue
		}
		e := ms.metric + " " + ms.show(ms.x/per) + " in " + d.intervalString(i) + "; baseline median " +
			ms.show(dist.median/per) + ", MAD " + ms.show(dist.mad/per) + ", " + rangeWord(z) + " " +
			ms.show(extreme(dist, z)/per) + "; robust z " + zString(z)
		if math.Abs(z) > best.Score {
			evidence = append([]string{e}, evidence...)
			best = Finding{
				Kind: Rate, Subject: s.key.subject(), Score: math.Abs(z), Metric: ms.metric, Value: ms.x / per,
				Baseline: &Stats{Median: dist.median / per, MAD: dist.mad / per, Max: dist.max / per, Intervals: dist.n},
			}
		} else {
			evidence = append(evidence, e)
		}
	}
	if len(evidence) == 0 {
		return Finding{}, false
	}
	best.Evidence = joinEvidence(evidence)
	return best, true
}

func rangeWord(z float64) string {
	if z < 0 {
		return "min"
	}
	return "max"
}

func extreme(d dist, z float64) float64 {
	if z < 0 {
		return d.min
	}
	return d.max
}

// judgeCount flags a burst of failures with one errno, or a storm of one
// signal between two processes. A subject the baseline never had is
// judged against a baseline of none.
func (d *Detector) judgeCount(s *series, b *bucket, i int64) (Finding, bool) {
	dist := s.dists[0]
	if !s.known {
		dist = dist0(d.baseline.Intervals)
	}
	x := max(b.ops, b.received)
	z, ok := d.high(dist, x)
	if !ok {
		return Finding{}, false
	}
	per := d.opts.Interval.Seconds()
	metric, what := "errors/s", "failures/s"
	if s.key.kind == SignalStorm {
		metric, what = "signals/s", "signals/s"
	}
	e := what + " " + countString(x/per) + " in " + d.intervalString(i) + "; "
	if s.known {
		e += "baseline median " + countString(dist.median/per) + ", MAD " + countString(dist.mad/per) +
			", max " + countString(dist.max/per)
	} else {
		e += "none in the baseline"
	}
	e += "; robust z " + zString(z)
	return Finding{
		Kind: s.key.kind, Subject: s.key.subject(), Score: z, Metric: metric, Value: x / per, Evidence: e,
		Baseline: &Stats{Median: dist.median / per, MAD: dist.mad / per, Max: dist.max / per, Intervals: dist.n},
	}, true
}

// dist0 is the baseline of a subject it never had, over n intervals:
// always none, with the least sigma a count can have.
func dist0(n int) dist { return dist{floor: 1, n: n} }
