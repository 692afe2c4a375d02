package analyze

import (
	"maps"
	"math"
	"slices"
	"time"
)

func (b *builder) finish() {
	r := b.r
	for id, g := range b.channels {
		info := b.a.channels[id]
		c := ChannelStats{
			Channel:   id,
			Mechanism: info.mechanism.String(),
			Endpoint:  info.endpoint,
			Processes: sortedProcesses(g.processes),
			Unpaired:  g.unpaired,
			Stats:     b.stats(g.group),
		}
		c.Key = Key(c.Mechanism, c.Endpoint, c.Processes)
		r.Channels = append(r.Channels, c)
		if !g.paired && len(g.processes) > 1 {
			r.Map = append(r.Map, Link{
				Processes: c.Processes, Direction: Shared, Mechanism: c.Mechanism, Endpoint: c.Endpoint,
				Channels: 1, Operations: c.Operations, Bytes: c.MovedBytes(),
			})
		}
	}
	for pair, g := range b.pairs {
		r.Pairs = append(r.Pairs, PairStats{
			From: pair[0], To: pair[1],
			Mechanisms: slices.Sorted(maps.Keys(g.mechanisms)),
			Channels:   slices.Sorted(maps.Keys(g.channels)),
			Stats:      b.stats(g.group),
		})
	}
	for p, g := range b.processes {
		r.Processes = append(r.Processes, ProcessStats{Process: p, Exe: b.a.exes[p], Stats: b.stats(g)})
	}
	for k, l := range b.links {
		line := Link{
			Processes: []Process{k.a, k.b}, Direction: OneWay, Mechanism: k.mechanism, Endpoint: k.endpoint,
			Channels: len(l.channels), Operations: l.ops,
			Bytes: max(l.sent[0], l.received[0]) + max(l.sent[1], l.received[1]),
		}
		// A direction counts when it moved bytes; for channels that move
		// none (signals), when it had operations.
		way := [2]bool{l.sent[0]+l.received[0] > 0, l.sent[1]+l.received[1] > 0}
		if !way[0] && !way[1] {
			way = [2]bool{l.dirOps[0] > 0, l.dirOps[1] > 0}
		}
		first1 := !l.firstSend[1].IsZero() && (l.firstSend[0].IsZero() || l.firstSend[1].Before(l.firstSend[0]))
		switch {
		case way[0] && way[1]:
			line.Direction = BothWays
			if first1 {
				line.Processes = []Process{k.b, k.a}
			}
		case way[1]:
			line.Processes = []Process{k.b, k.a}
		}
		r.Map = append(r.Map, line)
	}
	sortReport(r)
	b.rank()
}

// stats turns a group into its Stats.
func (b *builder) stats(g *group) Stats {
	r := b.r
	s := Stats{
		Operations: g.ops, Records: g.records, Sends: g.sends, Receives: g.receives,
		SentBytes: g.sent, ReceivedBytes: g.received,
		Blocked:     Blocked{Operations: g.blocked, TimeNS: int64(g.blockedFor)},
		Errors:      g.errors,
		PerInterval: Series{Operations: g.perOps, SentBytes: g.perSent, ReceivedBytes: g.perReceived},
		raw:         &g.acc,
	}
	if s.Errors == nil {
		s.Errors = map[string]int64{}
	}
	if secs := time.Duration(r.DurationNS).Seconds(); secs > 0 {
		s.OperationsPerSecond = float64(s.Operations) / secs
		s.BytesPerSecond = float64(s.MovedBytes()) / secs
	}
	w := r.Intervals.Width().Seconds()
	for i, n := range g.perOps {
		s.PeakOperationsPerSecond = max(s.PeakOperationsPerSecond, float64(n)/w)
		s.PeakBytesPerSecond = max(s.PeakBytesPerSecond, float64(max(g.perSent[i], g.perReceived[i]))/w)
	}
	if g.sized > 0 {
		s.MessageSize = Sizes{
			Count: g.sized,
			Mean:  float64(g.sent+g.received) / float64(g.sized),
			P50:   math.Round(quantile(g.sizes.GetValueAtQuantile, 0.5)),
			P99:   math.Round(quantile(g.sizes.GetValueAtQuantile, 0.99)),
		}
	}
	if g.timed > 0 {
		s.Latency = Latency{
			Count:  g.timed,
			MeanNS: int64(g.latencySum) / g.timed,
			P50NS:  int64(quantile(g.latency.GetValueAtQuantile, 0.5)),
			P90NS:  int64(quantile(g.latency.GetValueAtQuantile, 0.9)),
			P99NS:  int64(quantile(g.latency.GetValueAtQuantile, 0.99)),
			MaxNS:  int64(g.latencyMax),
		}
	}
	return s
}

func quantile(at func(float64) (float64, error), q float64) float64 {
	v, err := at(q)
	if err != nil {
		return 0 // an empty sketch: the caller checked the count
	}
	return v
}
