package anomaly

// A queue keeps growing when, over the last queueWindow intervals, its
// depth (the deepest it was in each interval, or what the last operation
// left) has a Theil–Sen slope of at least minQueueSlope messages per
// interval, rose by at least minQueueRise messages from the first of them
// to the last, and ends half as deep again as the deepest the baseline
// saw. Theil–Sen takes the median of the slopes between every two
// intervals, so a queue that jitters around a level has a slope near 0
// however it jitters, and one spike cannot fake a trend.
const (
	queueWindow   = 10
	minQueueSlope = 0.5
	minQueueRise  = 5
)

func (d *Detector) judgeQueue(s *series, b *bucket, i int64) (Finding, bool) {
	level := s.level(b)
	if level < 0 {
		s.levels = s.levels[:0]
		return Finding{}, false
	}
	s.levels = append(s.levels, float64(level))
	if len(s.levels) > queueWindow {
		s.levels = s.levels[1:]
	}
	if len(s.levels) < queueWindow {
		return Finding{}, false
	}
	first, last := s.levels[0], s.levels[len(s.levels)-1]
	slope := theilSen(append([]float64(nil), s.levels...))
	dist := s.dists[0]
	if !s.known || dist.n == 0 {
		dist = dist0(d.baseline.Intervals)
	}
	if slope < minQueueSlope || last-first < minQueueRise || last < 1.5*dist.max {
		return Finding{}, false
	}
	z := dist.z(last)
	per := d.opts.Interval.Seconds()
	e := "depth " + countString(first) + " → " + countString(last) + " messages in " +
		d.rangeString(i-queueWindow+1, i) + ", Theil–Sen slope " + countString(slope/per) + " messages/s; "
	if s.known && s.dists[0].n > 0 {
		e += "baseline depth median " + countString(dist.median) + ", max " + countString(dist.max)
	} else {
		e += "not in the baseline"
	}
	e += "; robust z " + zString(z)
	return Finding{
		Kind: QueueGrowth, Subject: s.key.subject(), Score: z, Metric: "depth", Value: last, Evidence: e,
		From:     d.start(&d.exam, i-queueWindow+1),
		Baseline: &Stats{Median: dist.median, MAD: dist.mad, Max: dist.max, Intervals: dist.n},
	}, true
}
