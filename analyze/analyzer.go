package analyze

import (
	"strconv"
	"time"

	"github.com/icptrack/icptrack/flow"
)

// Options are an Analyzer's settings.
type Options struct {
	// Interval is the width of the buckets that rates over time are
	// counted in. 0 lets the report choose (DefaultInterval).
	Interval time.Duration
	// Top is how many entries each ranked list holds; 0 means 10.
	Top int
}

// DefaultTop is how many entries a ranked list holds unless Options.Top
// says otherwise.
const DefaultTop = 10

// Process is one end of a conversation. The kernel, when it raised a
// signal, is pid 0 named "kernel"; an end that is not known is the zero
// Process.
type Process struct {
	PID  uint32 `json:"pid"`
	Comm string `json:"comm"`
}

// Kernel is the Process that stands for the kernel.
var Kernel = Process{Comm: flow.Kernel.Comm}

// Known reports whether p names an end.
func (p Process) Known() bool { return p != Process{} }

// String is comm[pid], as icptrack shows processes everywhere.
func (p Process) String() string {
	switch {
	case !p.Known():
		return "?"
	case p.PID == 0:
		return p.Comm
	}
	return p.name() + "[" + strconv.FormatUint(uint64(p.PID), 10) + "]"
}

// name is the process's name, or ? when it was not known (a process that
// was not traced, named only as the target of a signal).
func (p Process) name() string {
	if p.Comm == "" {
		return "?"
	}
	return p.Comm
}

// direction is what an operation did on its channel, as far as pairs
// are concerned.
type direction uint8

const (
	other direction = iota // open, create, attach, close, …: no pair
	sending
	receiving
)

// flowKey is the unit everything is counted in: one process's operations
// of one direction on one channel, with one peer. Channels, pairs and
// processes are unions of flows, formed when the report is made, once
// every peer is known.
type flowKey struct {
	channel    string
	self, peer Process
	dir        direction
}

type flowStats struct {
	acc
	series series
}

type channelInfo struct {
	mechanism flow.Mechanism
	endpoint  string
}

// Analyzer takes a capture's operations one at a time (Add) and makes a
// Report of them. It is not safe for concurrent use.
type Analyzer struct {
	opts  Options
	width time.Duration // the buckets' width now; it grows unless fixed
	fixed bool

	flows    map[flowKey]*flowStats
	channels map[string]*channelInfo
	exes     map[Process]string

	records, ops       int64
	minStart, maxStart int64 // Unix ns of the earliest and latest start
	first, last        time.Time
	// The last operation's flow: most operations repeat it.
	lastKey  flowKey
	lastFlow *flowStats
}

// New returns an Analyzer with nothing added.
func New(opts Options) *Analyzer {
	if opts.Top <= 0 {
		opts.Top = DefaultTop
	}
	a := &Analyzer{
		opts:     opts,
		width:    ladder[0],
		flows:    make(map[flowKey]*flowStats),
		channels: make(map[string]*channelInfo),
		exes:     make(map[Process]string),
	}
	if opts.Interval > 0 {
		a.width, a.fixed = opts.Interval, true
	}
	return a
}

// Operations is how many operations were added (a coalesced record
// counts as the operations it stands for).
func (a *Analyzer) Operations() int64 { return a.ops }

// Add counts one operation. op is not kept.
func (a *Analyzer) Add(op *flow.Operation) {
	k := flowKey{channel: channelOf(op), self: Process{op.PID, op.Comm}}
	switch op.Op {
	case flow.Send:
		k.dir, k.peer = sending, Process{op.Peer.PID, op.Peer.Comm}
	case flow.Receive:
		k.dir, k.peer = receiving, Process{op.Peer.PID, op.Peer.Comm}
	}
	f := a.lastFlow
	if f == nil || k != a.lastKey {
		if f = a.flows[k]; f == nil {
			f = &flowStats{}
			a.flows[k] = f
			if _, ok := a.channels[k.channel]; !ok {
				a.channels[k.channel] = &channelInfo{mechanism: op.Mechanism, endpoint: op.Endpoint}
			}
			if _, ok := a.exes[k.self]; !ok {
				a.exes[k.self] = op.Exe
			}
		}
		a.lastKey, a.lastFlow = k, f
	}

	a.records++
	a.ops += op.Ops()
	start := op.Time.UnixNano()
	a.fit(start)
	if a.first.IsZero() || op.Time.Before(a.first) {
		a.first = op.Time
	}
	if end := op.Time.Add(op.Duration); end.After(a.last) {
		a.last = end
	}
	f.add(op)
	var bytes int64
	if k.dir != other {
		bytes = op.Bytes
	}
	// A coalesced record lasts at most its window (a millisecond by
	// default): its operations are all counted at its start.
	f.series.add(floorDiv(start, int64(a.width)), op.Ops(), bytes)
}

// channelOf names an operation's channel: its id, or when it has none,
// its mechanism and endpoint.
func channelOf(op *flow.Operation) string {
	if op.Channel != "" {
		return op.Channel
	}
	return op.Mechanism.String() + " " + op.Endpoint
}

// fit widens the buckets until the capture's starts span at most
// maxBuckets of them: along the ladder, or when the width was asked for,
// by doubling it past maxFixedBuckets.
func (a *Analyzer) fit(start int64) {
	if a.records == 1 {
		a.minStart, a.maxStart = start, start
	} else {
		a.minStart, a.maxStart = min(a.minStart, start), max(a.maxStart, start)
	}
	limit, widen := int64(maxBuckets), nextWidth
	if a.fixed {
		limit, widen = maxFixedBuckets, func(w time.Duration) time.Duration { return 2 * w }
	}
	for spanBuckets(a.minStart, a.maxStart, a.width) > limit {
		next := widen(a.width)
		k := int64(next / a.width)
		for _, f := range a.flows {
			f.series.coarsen(k)
		}
		a.width = next
	}
}

// spanBuckets is how many buckets of width w the starts from lo to hi
// fall in.
func spanBuckets(lo, hi int64, w time.Duration) int64 {
	return floorDiv(hi, int64(w)) - floorDiv(lo, int64(w)) + 1
}

// DefaultInterval is the interval a Report uses unless one was asked for:
// the shortest on the ladder (1ms, 2ms, 10ms, 20ms, 100ms, … 1s, 2s, 10s,
// … 1m, …) that splits the capture into at most 100 intervals.
func (a *Analyzer) DefaultInterval() time.Duration {
	if a.fixed {
		return a.width
	}
	w := a.width
	for a.records > 0 && spanBuckets(a.minStart, a.maxStart, w) > reportBuckets {
		w = nextWidth(w)
	}
	return w
}
