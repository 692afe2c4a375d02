package analyze

import (
	"time"
)

// group gathers flows into one set of statistics on the report's axis.
type group struct {
	acc
	// Per interval: operations, bytes sent, bytes received.
	perOps, perSent, perReceived []int64
}

// axis maps the Analyzer's buckets onto the report's intervals.
type axis struct {
	first int64 // the first interval, in intervals since the Unix epoch
	count int
	k     int64 // the Analyzer's buckets per interval
}

func newGroup(ax axis) *group {
	return &group{perOps: make([]int64, ax.count), perSent: make([]int64, ax.count), perReceived: make([]int64, ax.count)}
}

func (g *group) addFlow(f *flowStats, dir direction, ax axis) {
	g.acc.merge(&f.acc)
	s := &f.series
	for i, n := range s.ops {
		j := floorDiv(s.first+int64(i), ax.k) - ax.first
		g.perOps[j] += n
		switch dir {
		case sending:
			g.perSent[j] += s.bytes[i]
		case receiving:
			g.perReceived[j] += s.bytes[i]
		}
	}
}

// Report makes the report at DefaultInterval, or at Options.Interval.
func (a *Analyzer) Report() *Report { return a.ReportEvery(0) }

// ReportEvery makes the report with rates counted per interval d, which
// is rounded up to a whole number of the Analyzer's buckets; 0 means
// DefaultInterval. The Analyzer may go on taking operations after.
func (a *Analyzer) ReportEvery(d time.Duration) *Report {
	if d <= 0 {
		d = a.DefaultInterval()
	}
	k := max(1, int64((d+a.width-1)/a.width))
	d = time.Duration(k) * a.width
	r := &Report{FormatVersion: FormatVersion, Operations: a.ops, Records: a.records}
	r.Intervals.WidthNS = int64(d)
	ax := axis{k: k}
	if a.records > 0 {
		r.Start, r.End = a.first, a.last
		r.DurationNS = int64(a.last.Sub(a.first))
		ax.first = floorDiv(a.minStart, int64(d))
		ax.count = int(spanBuckets(a.minStart, a.maxStart, d))
		r.Intervals.Start = time.Unix(0, ax.first*int64(d)).UTC()
		r.Intervals.Count = ax.count
	}
	b := builder{a: a, r: r, ax: ax}
	b.gather()
	b.finish()
	return r
}

// builder makes one Report: it places each flow in its channel, its pair
// and its process.
type builder struct {
	a  *Analyzer
	r  *Report
	ax axis

	channels  map[string]*channelGroup
	pairs     map[[2]Process]*pairGroup
	processes map[Process]*group
	links     map[linkKey]*linkGroup
}

type channelGroup struct {
	*group
	processes map[Process]bool
	unpaired  int64
	paired    bool
}

type pairGroup struct {
	*group
	mechanisms, channels map[string]bool
}

// linkKey is a map line: two processes (ordered by pid, then name), a
// mechanism and an endpoint.
type linkKey struct {
	a, b      Process
	mechanism string
	endpoint  string
}

type linkGroup struct {
	channels map[string]bool
	ops      int64
	// Per direction, [0] a→b and [1] b→a: operations, bytes sent and
	// received, and when the first send was made.
	dirOps, sent, received [2]int64
	firstSend              [2]time.Time
}

func (b *builder) gather() {
	b.channels = make(map[string]*channelGroup)
	b.pairs = make(map[[2]Process]*pairGroup)
	b.processes = make(map[Process]*group)
	b.links = make(map[linkKey]*linkGroup)
	known := b.knownPairs()
	for k, f := range b.a.flows {
		ch := b.channels[k.channel]
		if ch == nil {
			ch = &channelGroup{group: newGroup(b.ax), processes: make(map[Process]bool)}
			b.channels[k.channel] = ch
		}
		ch.addFlow(f, k.dir, b.ax)
		ch.processes[k.self] = true
		p := b.processes[k.self]
		if p == nil {
			p = newGroup(b.ax)
			b.processes[k.self] = p
		}
		p.addFlow(f, k.dir, b.ax)
		if k.dir == other {
			continue
		}
		from, to, ok := b.pairOf(k, known[k.channel])
		if !ok {
			ch.unpaired += f.ops
			continue
		}
		ch.paired = true
		ch.processes[from], ch.processes[to] = true, true
		pg := b.pairs[[2]Process{from, to}]
		if pg == nil {
			pg = &pairGroup{group: newGroup(b.ax), mechanisms: make(map[string]bool), channels: make(map[string]bool)}
			b.pairs[[2]Process{from, to}] = pg
		}
		pg.addFlow(f, k.dir, b.ax)
		info := b.a.channels[k.channel]
		pg.mechanisms[info.mechanism.String()] = true
		pg.channels[k.channel] = true
		b.addLink(k, f, from, to, info.mechanism.String(), info.endpoint)
	}
}

// knownPairs is, per channel, who sent to whom according to the
// operations that named their other end.
func (b *builder) knownPairs() map[string]map[[2]Process]bool {
	known := make(map[string]map[[2]Process]bool)
	for k := range b.a.flows {
		if k.dir == other || !k.peer.Known() {
			continue
		}
		pair := [2]Process{k.self, k.peer}
		if k.dir == receiving {
			pair = [2]Process{k.peer, k.self}
		}
		if known[k.channel] == nil {
			known[k.channel] = make(map[[2]Process]bool)
		}
		known[k.channel][pair] = true
	}
	return known
}

// pairOf says who sent and who received a flow's operations. An
// operation that does not name its other end (a send made before its
// receiver was known, an end of file, an EAGAIN) is placed with the one
// process that, on the same channel, received this process's sends (or
// sent what it received); with none or several, it stays unpaired.
func (b *builder) pairOf(k flowKey, known map[[2]Process]bool) (from, to Process, ok bool) {
	if k.peer.Known() {
		if k.dir == sending {
			return k.self, k.peer, true
		}
		return k.peer, k.self, true
	}
	var other Process
	n := 0
	for pair := range known {
		if k.dir == sending && pair[0] == k.self {
			other, n = pair[1], n+1
		}
		if k.dir == receiving && pair[1] == k.self {
			other, n = pair[0], n+1
		}
	}
	if n != 1 {
		return Process{}, Process{}, false
	}
	if k.dir == sending {
		return k.self, other, true
	}
	return other, k.self, true
}

func (b *builder) addLink(k flowKey, f *flowStats, from, to Process, mechanism, endpoint string) {
	lk, dir := linkKey{a: from, b: to, mechanism: mechanism, endpoint: endpoint}, 0
	if compareProcess(to, from) < 0 {
		lk.a, lk.b, dir = to, from, 1
	}
	l := b.links[lk]
	if l == nil {
		l = &linkGroup{channels: make(map[string]bool)}
		b.links[lk] = l
	}
	l.channels[k.channel] = true
	l.ops += f.ops
	l.dirOps[dir] += f.ops
	l.sent[dir] += f.sent
	l.received[dir] += f.received
	if t := f.firstSend; !t.IsZero() && (l.firstSend[dir].IsZero() || t.Before(l.firstSend[dir])) {
		l.firstSend[dir] = t
	}
}
