package analyze

import (
	"time"

	"github.com/icptrack/icptrack/flow"
)

// t0 is not on a bucket boundary, so that tests see the buckets aligned
// to the clock, not to the first operation.
var t0 = time.Date(2026, 12, 5, 10, 0, 0, 123_456_789, time.UTC)

// end is one end of a channel in a generated capture.
type end struct {
	pid  uint32
	comm string
}

func (e end) peer() flow.Peer { return flow.Peer{PID: e.pid, Comm: e.comm} }

// op makes one operation of e on channel ch at t0+at.
func op(e end, mech flow.Mechanism, kind flow.OpType, ch, endpoint string, at time.Duration, bytes int64) *flow.Operation {
	return &flow.Operation{
		Time: t0.Add(at), Duration: time.Microsecond, PID: e.pid, TID: e.pid, Comm: e.comm,
		Mechanism: mech, Op: kind, Channel: ch, Endpoint: endpoint, Bytes: bytes, QueueDepth: -1,
	}
}

func with(o *flow.Operation, f func(*flow.Operation)) *flow.Operation {
	f(o)
	return o
}

func analyzeOps(opts Options, ops ...*flow.Operation) *Report {
	a := New(opts)
	for _, o := range ops {
		a.Add(o)
	}
	return a.Report()
}
