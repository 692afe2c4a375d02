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
	// Add takes one operation, after correlation and the filter. op is
	// the correlator's, reused once Add returns: a sink that keeps it
	// (queues it for a writer) keeps op.Clone(), and only of what it
	// keeps, since a copy of every operation costs at full rate.
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

// NamedSinkStats are one sink's stats, with its name.
type NamedSinkStats struct {
	Name string
	SinkStats
}

// The outputs every pipeline has had, as sinks. They write what they are
// given at once, in memory, so the pipeline counts for them.

// eventsSinkName is the event log's sink's name.
const eventsSinkName = "events"

type eventLogSink struct {
	w     OpWriter
	close func() error
}

// EventLogSink is the event log as a sink: w writes it, and close (nil:
// nothing) closes its file, for a reload that replaces it (Reload.Events).
func EventLogSink(w OpWriter, close func() error) Sink { return eventLogSink{w, close} }

func (s eventLogSink) Name() string           { return eventsSinkName }
func (s eventLogSink) Add(op *flow.Operation) { s.w.Write(op) }
func (s eventLogSink) Tick(time.Time)         {}
func (s eventLogSink) Flush() error           { return s.w.Flush() }
func (s eventLogSink) Close() error {
	if s.close == nil {
		return nil
	}
	return s.close()
}

type summarySink struct{ s *Summary }

func (s summarySink) Name() string           { return summarySinkName }
func (s summarySink) Add(op *flow.Operation) { s.s.Add(op) }
func (s summarySink) Tick(time.Time)         {}
func (s summarySink) Flush() error           { return nil }
func (s summarySink) Close() error           { return nil }

// The built-in sinks' names, in the order NewPipeline puts them.
const (
	summarySinkName = "summary"
	spansSinkName   = "spans"
	metricsSinkName = "metrics"
	logsSinkName    = "logs"
)

var builtInOrder = []string{eventsSinkName, summarySinkName, spansSinkName, metricsSinkName, logsSinkName}

// spansSink hands operations to Spans. close, when set, shuts down where
// the spans went (Reload.RetireSpans): the caller's, for the spans the
// pipeline started with.
type spansSink struct {
	s     *Spans
	close func() error
}

func (s spansSink) Name() string           { return spansSinkName }
func (s spansSink) Add(op *flow.Operation) { s.s.Add(op) }
func (s spansSink) Tick(now time.Time)     { s.s.Tick(now) }
func (s spansSink) Flush() error           { s.s.Flush(); return nil }
func (s spansSink) Close() error {
	if s.close == nil {
		return nil
	}
	return s.close()
}

type metricsSink struct{ m *Metrics }

func (s metricsSink) Name() string           { return metricsSinkName }
func (s metricsSink) Add(op *flow.Operation) { s.m.Record(op) }
func (s metricsSink) Tick(time.Time)         {}
func (s metricsSink) Flush() error           { return nil }
func (s metricsSink) Close() error           { return nil }

type logsSink struct{ l *Logs }

func (s logsSink) Name() string           { return logsSinkName }
func (s logsSink) Add(op *flow.Operation) { s.l.Add(op) }
func (s logsSink) Tick(now time.Time)     { s.l.Tick(now) }
func (s logsSink) Flush() error           { s.l.Flush(); return nil }
func (s logsSink) Close() error           { return nil }
