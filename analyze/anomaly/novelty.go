package anomaly

import (
	"slices"
	"strings"
	"time"

	"github.com/icptrack/icptrack/flow"
)

// novelty finds channels and pairs of processes the baseline never had.
//
// A channel is its mechanism, its stable endpoint (Subject.Endpoint) and
// the command names at its ends: those of the processes that operated on
// it and of the peers its operations named. A channel of the examined
// capture is known when a baseline channel with the same mechanism and
// endpoint had at least the same processes at its ends (it may have had
// more: a capture that ended before a peer showed is no stranger). With
// a baseline window, a channel that was already open in the window is
// known whatever it does later.
//
// A pair is a sender and a receiver, by command name, that exchanged
// anything over any channel: a send names its receiver, a receive its
// sender.
//
// Signals a process sends itself and signals the kernel raises (SIGCHLD
// when a child exits, SIGPIPE, SIGSEGV) are not between two processes:
// they count for signal storms only, not here.
type novelty struct {
	// The baseline: the sets of command names seen at the ends of each
	// mechanism and endpoint, and the pairs.
	channels map[string][][]string
	pairs    map[[2]string]bool
	// The capture being read, by its own channel ids.
	local     map[string]*localChannel
	pairsSeen map[[2]string]*use
}

type localChannel struct {
	mechanism, endpoint string
	comms               []string
	pairs               [][2]string
	inBaseline          bool
	use
}

// use is when and how much a channel or pair was used in the examined
// capture.
type use struct {
	first, last time.Time
	ops         int64
	intervals   int
	// the interval being counted, its operations, and the busiest's
	cur, curOps, busiest int64
	channels             []string // a pair's channels, the first few
}

func (u *use) add(op *flow.Operation, i int64) {
	if u.ops == 0 || op.Time.Before(u.first) {
		u.first = op.Time
	}
	if end := op.Time.Add(op.Duration); end.After(u.last) {
		u.last = end
	}
	if u.ops == 0 || i != u.cur {
		u.cur, u.curOps = i, 0
		u.intervals++
	}
	u.ops += op.Ops()
	u.curOps += op.Ops()
	u.busiest = max(u.busiest, u.curOps)
}

func newNovelty() novelty {
	return novelty{
		channels: map[string][][]string{}, pairs: map[[2]string]bool{},
		local: map[string]*localChannel{}, pairsSeen: map[[2]string]*use{},
	}
}

// between reports whether op is an operation between two processes, and
// so names a channel and, with its peer, a pair.
func between(op *flow.Operation) bool {
	if op.Channel == "" {
		return false
	}
	if op.Mechanism == flow.Signal {
		return op.PID != 0 && op.Peer.PID != 0 && op.Peer.PID != op.PID
	}
	return true
}

// pairOf is op's sender and receiver, if op names both and they are two
// processes.
func pairOf(op *flow.Operation) ([2]string, bool) {
	if op.Peer.Comm == "" || op.Peer.PID == 0 || op.Peer.PID == op.PID {
		return [2]string{}, false
	}
	switch op.Op {
	case flow.Send:
		return [2]string{op.Comm, op.Peer.Comm}, true
	case flow.Receive:
		return [2]string{op.Peer.Comm, op.Comm}, true
	}
	return [2]string{}, false
}

func (n *novelty) add(op *flow.Operation, i int64, baseline bool, d *Detector) {
	if !between(op) {
		return
	}
	c := n.local[op.Channel]
	if c == nil {
		c = &localChannel{mechanism: op.Mechanism.String(), endpoint: d.stableEndpoint(op), inBaseline: baseline}
		n.local[op.Channel] = c
	}
	c.inBaseline = c.inBaseline || baseline
	c.comms = addName(c.comms, op.Comm)
	if op.Peer.PID != 0 {
		c.comms = addName(c.comms, op.Peer.Comm)
	}
	pair, ok := pairOf(op)
	if ok && !slices.Contains(c.pairs, pair) {
		c.pairs = append(c.pairs, pair)
	}
	if baseline {
		if ok {
			n.pairs[pair] = true
		}
		return
	}
	c.use.add(op, i)
	if ok && !n.pairs[pair] {
		u := n.pairsSeen[pair]
		if u == nil {
			u = &use{}
			n.pairsSeen[pair] = u
		}
		u.add(op, i)
		if name := c.mechanism + " " + c.endpoint; len(u.channels) < 3 && !slices.Contains(u.channels, name) {
			u.channels = append(u.channels, name)
		}
	}
}

func addName(names []string, name string) []string {
	if name == "" {
		return names
	}
	if i, found := slices.BinarySearch(names, name); !found {
		names = slices.Insert(names, i, name)
	}
	return names
}

// freeze records the baseline's channels. A baseline capture's own
// channels are then forgotten: the examined capture's channel ids are
// its own.
func (n *novelty) freeze(otherCapture bool) {
	for _, c := range n.local {
		if c.inBaseline {
			k := c.mechanism + " " + c.endpoint
			n.channels[k] = append(n.channels[k], slices.Clone(c.comms))
		}
	}
	if otherCapture {
		n.local = map[string]*localChannel{}
	}
}

// known reports whether the baseline had a channel like c.
func (n *novelty) known(c *localChannel) bool {
	if c.inBaseline {
		return true
	}
	for _, comms := range n.channels[c.mechanism+" "+c.endpoint] {
		if isSubset(c.comms, comms) {
			return true
		}
	}
	return false
}

func isSubset(a, b []string) bool {
	for _, s := range a {
		if _, found := slices.BinarySearch(b, s); !found {
			return false
		}
	}
	return true
}

func (n *novelty) findings(d *Detector) []Finding {
	var out []Finding
	for pair, u := range n.pairsSeen {
		if n.pairs[pair] {
			continue // a late operation of the baseline window had it
		}
		// A new pair's answers make the reverse pair new too: one finding
		// tells both, under the direction that began.
		back := n.pairsSeen[[2]string{pair[1], pair[0]}]
		if back != nil && !n.pairs[[2]string{pair[1], pair[0]}] &&
			(back.first.Before(u.first) || back.first.Equal(u.first) && pair[1] < pair[0]) {
			continue
		}
		e := pair[0] + " → " + pair[1] + ": " + countString(float64(u.ops)) + " operations in " +
			timeRange(u.first, u.last, d.opts.Interval) + " over " + strings.Join(u.channels, ", ")
		f := Finding{
			Kind: NewPair, Subject: Subject{Comm: pair[0], PeerComm: pair[1]},
			From: u.first, To: u.last, Score: float64(u.busiest), Metric: "ops", Value: float64(u.busiest),
			Intervals: u.intervals,
		}
		if back != nil && !n.pairs[[2]string{pair[1], pair[0]}] {
			e += "; " + pair[1] + " → " + pair[0] + ": " + countString(float64(back.ops)) + " operations"
			f.To = maxTime(f.To, back.last)
		}
		f.Evidence = e + "; at most " + countString(float64(u.busiest)) + " in an interval; never in the baseline"
		out = append(out, f)
	}
	// Channels that share a key are one finding.
	byKey := map[string]*Finding{}
	var keys []string
	for _, c := range n.local {
		if c.ops == 0 || n.known(c) || n.onlyNewPairs(c) {
			continue
		}
		k := c.mechanism + " " + c.endpoint + " " + strings.Join(c.comms, ",")
		f := byKey[k]
		if f == nil {
			f = &Finding{Kind: NewChannel, Subject: Subject{Mechanism: c.mechanism, Endpoint: c.endpoint, Comms: c.comms},
				From: c.first, To: c.last, Metric: "ops"}
			byKey[k] = f
			keys = append(keys, k)
		}
		f.From, f.To = minTime(f.From, c.first), maxTime(f.To, c.last)
		f.Value += float64(c.ops)
		f.Score = max(f.Score, float64(c.busiest))
		f.Intervals = max(f.Intervals, c.intervals)
	}
	for _, k := range keys {
		f := byKey[k]
		f.Evidence = countString(f.Value) + " operations in " + timeRange(f.From, f.To, d.opts.Interval) +
			", at most " + countString(f.Score) + " in an interval; the baseline had no " + f.Subject.Mechanism + " " +
			f.Subject.Endpoint + " between these processes"
		f.Value = f.Score
		out = append(out, *f)
	}
	return out
}

// onlyNewPairs reports whether every pair on c is new: the NewPair
// findings then name c already.
func (n *novelty) onlyNewPairs(c *localChannel) bool {
	if len(c.pairs) == 0 {
		return false
	}
	for _, p := range c.pairs {
		if n.pairs[p] {
			return false
		}
	}
	return true
}

func minTime(a, b time.Time) time.Time {
	if a.IsZero() || b.Before(a) {
		return b
	}
	return a
}

func maxTime(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}
