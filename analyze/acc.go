package analyze

import (
	"time"

	"github.com/DataDog/sketches-go/ddsketch"
	"github.com/DataDog/sketches-go/ddsketch/mapping"
	"github.com/DataDog/sketches-go/ddsketch/store"

	"github.com/icptrack/icptrack/flow"
)

// sketchBins bounds a sketch's memory: at 1% accuracy, 2048 bins cover
// values over 18 orders of magnitude before the smallest collapse.
const sketchBins = 2048

func newSketch() *ddsketch.DDSketch {
	m, err := mapping.NewCubicallyInterpolatedMapping(0.01)
	if err != nil {
		panic(err) // only for an invalid accuracy
	}
	return ddsketch.NewDDSketch(m, store.NewCollapsingLowestDenseStore(sketchBins), store.NewCollapsingLowestDenseStore(sketchBins))
}

// acc accumulates the statistics of a set of operations. Every count is
// of operations, not records: a coalesced record adds op.Ops().
type acc struct {
	records, ops    int64
	sends, receives int64
	sent, received  int64 // bytes
	// sized counts the sends and receives that moved data: the message
	// sizes are theirs.
	sized int64
	// timed counts the operations whose time in the call was measured
	// (not StartUnknown); latencySum is their summed time.
	timed      int64
	latencySum time.Duration
	latencyMax time.Duration
	blocked    int64
	blockedFor time.Duration
	errors     map[string]int64
	// first is when the earliest operation started.
	first time.Time
	// firstSend is when the earliest send started: the map names the
	// process that spoke first on a channel first.
	firstSend      time.Time
	latency, sizes *ddsketch.DDSketch
}

func (a *acc) add(op *flow.Operation) {
	n := op.Ops()
	a.records++
	a.ops += n
	if a.first.IsZero() || op.Time.Before(a.first) {
		a.first = op.Time
	}
	switch op.Op {
	case flow.Send:
		a.sends += n
		a.sent += op.Bytes
		if a.firstSend.IsZero() || op.Time.Before(a.firstSend) {
			a.firstSend = op.Time
		}
	case flow.Receive:
		a.receives += n
		a.received += op.Bytes
	}
	if (op.Op == flow.Send || op.Op == flow.Receive) && op.Bytes > 0 && op.Error == "" {
		a.sized += n
		if a.sizes == nil {
			a.sizes = newSketch()
		}
		_ = a.sizes.AddWithCount(float64(op.Bytes)/float64(n), float64(n))
	}
	// A call whose start no hook saw has no measured time in the call.
	// Captures do not record StartUnknown, but its mark survives: such
	// a call that did not block has a duration of 0, which no measured
	// call has.
	d := op.Duration
	if op.Count > 1 {
		d = op.Busy / time.Duration(op.Count)
	}
	if !op.StartUnknown && d > 0 {
		a.timed += n
		a.latencySum += d * time.Duration(n)
		a.latencyMax = max(a.latencyMax, d)
		if a.latency == nil {
			a.latency = newSketch()
		}
		_ = a.latency.AddWithCount(float64(d), float64(n))
	}
	if op.Blocked {
		a.blocked += n
		// Duration is the wait itself when the start was unknown.
		if op.Count > 1 {
			a.blockedFor += op.Busy
		} else {
			a.blockedFor += op.Duration
		}
	}
	if op.Error != "" {
		if a.errors == nil {
			a.errors = make(map[string]int64)
		}
		a.errors[op.Error] += n
	}
}

// merge adds o's operations to a; the sketches are copied, never shared.
func (a *acc) merge(o *acc) {
	a.records += o.records
	a.ops += o.ops
	a.sends += o.sends
	a.receives += o.receives
	a.sent += o.sent
	a.received += o.received
	a.sized += o.sized
	a.timed += o.timed
	a.latencySum += o.latencySum
	a.latencyMax = max(a.latencyMax, o.latencyMax)
	a.blocked += o.blocked
	a.blockedFor += o.blockedFor
	if !o.first.IsZero() && (a.first.IsZero() || o.first.Before(a.first)) {
		a.first = o.first
	}
	if !o.firstSend.IsZero() && (a.firstSend.IsZero() || o.firstSend.Before(a.firstSend)) {
		a.firstSend = o.firstSend
	}
	for k, v := range o.errors {
		if a.errors == nil {
			a.errors = make(map[string]int64)
		}
		a.errors[k] += v
	}
	a.latency = mergeSketch(a.latency, o.latency)
	a.sizes = mergeSketch(a.sizes, o.sizes)
}

func mergeSketch(into, from *ddsketch.DDSketch) *ddsketch.DDSketch {
	if from == nil {
		return into
	}
	if into == nil {
		into = newSketch()
	}
	_ = into.MergeWith(from)
	return into
}
