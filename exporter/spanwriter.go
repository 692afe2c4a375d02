package exporter

import (
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/icptrack/icptrack/flow"
)

// The span mapper (Spans) says what each span holds through a spanWriter,
// and a spanBatch gathers the spans into batches, one Resource per
// process. There are two: pdataBatch builds ptrace.Traces, for the
// Collector receiver, whose pipeline takes pdata; protoBatch writes the
// OTLP request's protobuf encoding directly, for the standalone agent,
// which only ever sends the bytes. pdata costs an allocation per attribute
// and then a marshalling pass; going straight to the wire format costs
// neither (README, "Spans and metrics": why icptrack encodes its own).

// spanWriter takes one span's fields, in any order.
type spanWriter interface {
	ids(trace pcommon.TraceID, span, parent pcommon.SpanID, state string, flags uint32)
	link(trace pcommon.TraceID, span pcommon.SpanID, state string, flags uint32)
	// head's name is "operation target".
	head(operation, target string, kind ptrace.SpanKind, start, end pcommon.Timestamp)
	errorStatus(msg string)
	str(key, v string)
	num(key string, v int64)
	flag(key string, v bool)
	// event adds a span event with one string attribute.
	event(name string, at pcommon.Timestamp, key, v string)
}

// spanBatch gathers spans until Spans hands the batch on.
type spanBatch interface {
	// begin starts a span of op's process, with room for attrs
	// attributes; end closes it.
	begin(res *resources, op *flow.Operation, attrs int) spanWriter
	end()
	// size is the spans in the batch; since, when the first was added.
	size() int
	since() time.Time
	// flush hands the batch to its sink and starts the next.
	flush()
}

// pdataBatch builds ptrace.Traces.
type pdataBatch struct {
	sink    func(ptrace.Traces)
	td      ptrace.Traces
	byPID   map[uint32]ptrace.SpanSlice
	n       int
	started time.Time
	cur     pdataSpan
}

func newPdataBatch(sink func(ptrace.Traces)) *pdataBatch {
	b := &pdataBatch{sink: sink, byPID: make(map[uint32]ptrace.SpanSlice)}
	b.reset()
	return b
}

func (b *pdataBatch) reset() {
	b.td = ptrace.NewTraces()
	clear(b.byPID)
	b.n = 0
}

func (b *pdataBatch) begin(res *resources, op *flow.Operation, attrs int) spanWriter {
	if b.n == 0 {
		b.started = time.Now()
	}
	ss, ok := b.byPID[op.PID]
	if !ok {
		rs := b.td.ResourceSpans().AppendEmpty()
		res.of(op).CopyTo(rs.Resource().Attributes())
		scope := rs.ScopeSpans().AppendEmpty()
		scope.Scope().SetName(ScopeName)
		scope.Scope().SetVersion(Version())
		ss = scope.Spans()
		b.byPID[op.PID] = ss
	}
	b.cur = pdataSpan{ss.AppendEmpty()}
	b.cur.s.Attributes().EnsureCapacity(attrs)
	return &b.cur
}

func (b *pdataBatch) end()             { b.n++ }
func (b *pdataBatch) size() int        { return b.n }
func (b *pdataBatch) since() time.Time { return b.started }

func (b *pdataBatch) flush() {
	td := b.td
	b.reset()
	b.sink(td)
}

type pdataSpan struct{ s ptrace.Span }

func (p *pdataSpan) ids(trace pcommon.TraceID, span, parent pcommon.SpanID, state string, flags uint32) {
	p.s.SetTraceID(trace)
	p.s.SetSpanID(span)
	if !parent.IsEmpty() {
		p.s.SetParentSpanID(parent)
	}
	p.s.TraceState().FromRaw(state)
	p.s.SetFlags(flags)
}

func (p *pdataSpan) link(trace pcommon.TraceID, span pcommon.SpanID, state string, flags uint32) {
	l := p.s.Links().AppendEmpty()
	l.SetTraceID(trace)
	l.SetSpanID(span)
	l.TraceState().FromRaw(state)
	l.SetFlags(flags)
}

func (p *pdataSpan) head(operation, target string, kind ptrace.SpanKind, start, end pcommon.Timestamp) {
	p.s.SetName(operation + " " + target)
	p.s.SetKind(kind)
	p.s.SetStartTimestamp(start)
	p.s.SetEndTimestamp(end)
}

func (p *pdataSpan) errorStatus(msg string) {
	p.s.Status().SetCode(ptrace.StatusCodeError)
	p.s.Status().SetMessage(msg)
}

func (p *pdataSpan) str(key, v string)       { p.s.Attributes().PutStr(key, v) }
func (p *pdataSpan) num(key string, v int64) { p.s.Attributes().PutInt(key, v) }
func (p *pdataSpan) flag(key string, v bool) { p.s.Attributes().PutBool(key, v) }

func (p *pdataSpan) event(name string, at pcommon.Timestamp, key, v string) {
	ev := p.s.Events().AppendEmpty()
	ev.SetName(name)
	ev.SetTimestamp(at)
	ev.Attributes().PutStr(key, v)
}
