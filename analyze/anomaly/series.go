package anomaly

import (
	"github.com/DataDog/sketches-go/ddsketch"

	"github.com/icptrack/icptrack/flow"
)

// seriesKey names one measured subject: a process's end of a channel (for
// rates and latencies), with an errno, a signal between two processes, or
// a queue.
type seriesKey struct {
	kind                            Kind
	comm, peer, mechanism, endpoint string
	op, label                       string // label: the errno or the signal
}

func (k seriesKey) subject() Subject {
	s := Subject{Mechanism: k.mechanism, Endpoint: k.endpoint, Comm: k.comm, PeerComm: k.peer, Op: k.op}
	switch k.kind {
	case ErrorBurst:
		s.Error = k.label
	case SignalStorm:
		s.Signal = k.label
		s.Mechanism, s.Endpoint = "", ""
	}
	return s
}

// bucket is what one interval collected for one series.
type bucket struct {
	ops                  float64 // operations; errors; signals sent
	received             float64 // signals received
	bytesSent, bytesRecv float64
	latency              *ddsketch.DDSketch
	latencyOps           float64
	depth                int64 // the deepest the queue was; -1: no operation
}

func (b *bucket) reset() {
	*b = bucket{latency: b.latency, depth: -1}
	if b.latency != nil {
		b.latency.Clear()
	}
}

// series is one subject's measures, interval by interval: first the
// baseline's values, then, once those are summed up in dists, the
// examined intervals judged one by one.
type series struct {
	key  seriesKey
	ring []bucket
	// base holds the baseline's values of up to two measures (rates:
	// operations and bytes; latency: log p50 and log p99), one per
	// interval, until freeze.
	base  [2][]float64
	dists [2]dist
	// learning: the baseline had the subject (its first operation was
	// in the baseline), so the baseline's intervals are learned; known:
	// some were.
	learning, known bool
	// baseOps and baseBytes total a rate's baseline, for its mean message
	// size.
	baseOps, baseBytes float64
	// lastDepth is a queue's depth after its last operation (-1 unknown);
	// levels its depth in the last examined intervals.
	lastDepth int64
	levels    []float64
	// run is the finding being extended while consecutive intervals are
	// anomalous; runEnd its last interval.
	run    *Finding
	runEnd int64
}

func newSeries(k seriesKey, lag int64) *series {
	s := &series{key: k, ring: make([]bucket, lag+1), lastDepth: -1}
	for i := range s.ring {
		s.ring[i].depth = -1
	}
	return s
}

func (s *series) bucket(i, lag int64) *bucket { return &s.ring[i%(lag+1)] }

// prefill records n baseline intervals before the subject's first
// operation: for counts, intervals of none.
func (s *series) prefill(n int) {
	switch s.key.kind {
	case Rate, ErrorBurst, SignalStorm:
		for m := range s.base {
			s.base[m] = make([]float64, n, n+16)
		}
	}
}

// keysOf lists the series op counts in.
func (d *Detector) keysOf(op *flow.Operation) []seriesKey {
	mech := op.Mechanism.String()
	endpoint := d.stableEndpoint(op)
	var keys []seriesKey
	data := op.Op == flow.Send || op.Op == flow.Receive
	switch {
	case op.Mechanism == flow.Signal:
		if data && op.Peer.PID != op.PID {
			k := seriesKey{kind: SignalStorm, comm: op.Comm, peer: op.Peer.Comm, label: op.Signal}
			if op.Op == flow.Receive {
				k.comm, k.peer = op.Peer.Comm, op.Comm
			}
			keys = append(keys, k)
		}
	case op.Error != "":
		keys = append(keys, seriesKey{kind: ErrorBurst, comm: op.Comm, mechanism: mech, endpoint: endpoint, label: op.Error})
	case data:
		keys = append(keys, seriesKey{kind: Rate, comm: op.Comm, mechanism: mech, endpoint: endpoint})
		if timed(op) {
			keys = append(keys, seriesKey{kind: Latency, comm: op.Comm, mechanism: mech, endpoint: endpoint, op: op.Op.String()})
		}
	}
	if data && op.QueueDepth >= 0 && (op.Mechanism == flow.POSIXMQ || op.Mechanism == flow.SysVMQ) {
		keys = append(keys, seriesKey{kind: QueueGrowth, mechanism: mech, endpoint: endpoint})
	}
	return keys
}

// timed reports whether op's time says how long the call took. Not when
// no hook saw it begin, nor for a receive that blocked: that one waited
// for a sender, so its time is the sender's pace (which the sender's rate
// shows), not the cost of the call. A send that blocked waited for a
// reader to make room: back-pressure, which is a latency worth flagging.
func timed(op *flow.Operation) bool {
	return !op.StartUnknown && !(op.Blocked && op.Op == flow.Receive)
}

func (d *Detector) stableEndpoint(op *flow.Operation) string {
	k := [2]string{op.Mechanism.String(), op.Endpoint}
	e, ok := d.endpoints[k]
	if !ok {
		e = stableEndpoint(op.Mechanism, op.Endpoint)
		d.endpoints[k] = e
	}
	return e
}

// add counts op in b.
func (s *series) add(op *flow.Operation, b *bucket) {
	n := float64(op.Ops())
	switch s.key.kind {
	case Rate:
		b.ops += n
		if op.Op == flow.Send {
			b.bytesSent += float64(op.Bytes)
		} else {
			b.bytesRecv += float64(op.Bytes)
		}
	case Latency:
		addLatency(b, op)
	case ErrorBurst:
		b.ops += n
	case SignalStorm:
		if op.Op == flow.Send {
			b.ops += n
		} else {
			b.received += n
		}
	case QueueGrowth:
		b.depth = max(b.depth, op.QueueDepth)
		s.lastDepth = op.QueueDepth
	}
}

// learn adds an interval's values to the baseline.
func (s *series) learn(b *bucket) {
	s.known = true
	switch s.key.kind {
	case Rate:
		s.base[0] = append(s.base[0], b.ops)
		s.base[1] = append(s.base[1], max(b.bytesSent, b.bytesRecv))
		s.baseOps += b.ops
		s.baseBytes += max(b.bytesSent, b.bytesRecv)
	case Latency:
		learnLatency(s, b)
	case ErrorBurst, SignalStorm:
		s.base[0] = append(s.base[0], max(b.ops, b.received))
	case QueueGrowth:
		if level := s.level(b); level >= 0 {
			s.base[0] = append(s.base[0], float64(level))
		}
	}
}

// level is a queue's depth in an interval: the deepest it was, or with no
// operation, what the last one left.
func (s *series) level(b *bucket) int64 {
	if b.depth >= 0 {
		return b.depth
	}
	return s.lastDepth
}

// freeze sums the baseline up. otherCapture says the baseline came from
// another capture, whose queue depths say nothing of this one's.
func (s *series) freeze(otherCapture bool) {
	switch s.key.kind {
	case Rate:
		ops := newDist(s.base[0], 0)
		ops.floor = poissonSigma(ops.median)
		size := 1.0
		if s.baseOps > 0 {
			size = max(1, s.baseBytes/s.baseOps)
		}
		bytes := newDist(s.base[1], 0)
		bytes.floor = size * ops.floor
		s.dists = [2]dist{ops, bytes}
	case Latency:
		s.dists = [2]dist{newDist(s.base[0], latencySigmaFloor), newDist(s.base[1], latencySigmaFloor)}
	case ErrorBurst, SignalStorm:
		d := newDist(s.base[0], 0)
		d.floor = poissonSigma(d.median)
		s.dists[0] = d
	case QueueGrowth:
		s.dists[0] = newDist(s.base[0], 1)
	}
	s.base = [2][]float64{}
	if otherCapture {
		s.lastDepth = -1
	}
}

// flag extends the series' current finding with f, the finding of
// interval i, or starts a new one.
func (s *series) flag(d *Detector, f Finding, i int64) {
	if s.run != nil && s.runEnd == i-1 {
		r := s.run
		r.To, r.Intervals = f.To, r.Intervals+1
		if f.Score > r.Score {
			f.From, f.Intervals = r.From, r.Intervals
			*r = f
		}
		s.runEnd = i
		return
	}
	s.unflag(d, i)
	f.Intervals = 1
	s.run, s.runEnd = &f, i
}

// unflag ends the series' current finding unless interval i continues it.
func (s *series) unflag(d *Detector, i int64) {
	if s.run != nil && s.runEnd < i {
		d.findings = append(d.findings, *s.run)
		s.run = nil
	}
}
