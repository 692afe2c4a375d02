package exporter

import (
	"time"

	"github.com/icptrack/icptrack/flow"
)

// Sink is one place the pipeline sends operations: the event log, the
// summary, spans, metrics, logs, and the store, syslog, the database and
// the API's live view. The pipeline calls every method on its own
// goroutine, the tracer's, so a sink must never block it on I/O: one that
// writes somewhere slow queues, writes on a goroutine of its own, and
// counts what did not fit in its queue as dropped (SinkStats).
type Sink interface {
	// Name names the sink in self-metrics, logs and the summary: "store",
	// "syslog", "postgres".
	Name() string
	// Add takes one operation, after correlation and the filter. The
	// sink may keep op: the pipeline does not reuse it.
	Add(op *flow.Operation)
	// Tick is called after each read of the ring buffer (every few
	// milliseconds under load, at least every 100ms): time to send what
	// waited long enough.
	Tick(now time.Time)
	// Flush writes what the sink holds, waiting for it: at the end, and
	// before a reload.
	Flush() error
	// Close releases the sink after a last Flush.
	Close() error
}

// SinkStats are a sink's self-metrics.
type SinkStats struct {
	// Written is the operations the sink wrote (or handed on) for good.
	Written uint64
	// Dropped is the operations it lost: a full queue, a backend that
	// refused them for good.
	Dropped uint64
	// Lagging is the operations taken but not written yet.
	Lagging uint64
}

// CountingSink is a Sink that counts for itself. The pipeline counts
// Written for sinks that do not (they write what they are given, at once).
type CountingSink interface {
	Sink
	Stats() SinkStats
}

// DropRecorder is a sink that keeps a record of where the capture lost
// operations, so that overload can be told apart from deletion (the
// store). The pipeline calls it with what was lost since the last call,
// per reason (semconv's ipc.drop.reason values and the sinks' names).
type DropRecorder interface {
	RecordDrops(now time.Time, reason string, n uint64)
}
