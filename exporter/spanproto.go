package exporter

import (
	"math"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"google.golang.org/protobuf/encoding/protowire"

	"github.com/icptrack/icptrack/flow"
)

// protoBatch writes spans straight into the protobuf encoding of an OTLP
// ExportTraceServiceRequest (opentelemetry-proto, trace/v1 and
// collector/trace/v1), one ResourceSpans per process. Each span is
// encoded into a scratch buffer, then appended to its process's spans;
// flush lays the request out around them in one allocation. The buffers
// are reused from batch to batch, so a span costs no allocation.
type protoBatch struct {
	sink    func(body []byte, spans int)
	buf     func(n int) []byte
	byPID   map[uint32]*protoResource
	order   []*protoResource
	free    []*protoResource
	cur     *protoResource
	span    protoSpan
	n       int
	started time.Time
}

// protoResource is one process's resource and encoded spans.
type protoResource struct {
	attrs pcommon.Map
	spans []byte // ScopeSpans.spans fields, each a tag, a length and a Span
}

// Field numbers of opentelemetry-proto's messages.
const (
	fieldRequestResourceSpans = 1 // ExportTraceServiceRequest.resource_spans
	fieldRSResource           = 1 // ResourceSpans.resource
	fieldRSScopeSpans         = 2 // ResourceSpans.scope_spans
	fieldResourceAttributes   = 1 // Resource.attributes
	fieldSSScope              = 1 // ScopeSpans.scope
	fieldSSSpans              = 2 // ScopeSpans.spans
	fieldScopeName            = 1 // InstrumentationScope.name
	fieldScopeVersion         = 2 // InstrumentationScope.version

	fieldSpanTraceID    = 1
	fieldSpanSpanID     = 2
	fieldSpanTraceState = 3
	fieldSpanParentID   = 4
	fieldSpanName       = 5
	fieldSpanKind       = 6
	fieldSpanStart      = 7
	fieldSpanEnd        = 8
	fieldSpanAttributes = 9
	fieldSpanEvents     = 11
	fieldSpanLinks      = 13
	fieldSpanStatus     = 15
	fieldSpanFlags      = 16

	fieldEventTime       = 1
	fieldEventName       = 2
	fieldEventAttributes = 3

	fieldLinkTraceID    = 1
	fieldLinkSpanID     = 2
	fieldLinkTraceState = 3
	fieldLinkFlags      = 6

	fieldStatusMessage = 2
	fieldStatusCode    = 3

	fieldKVKey   = 1
	fieldKVValue = 2

	fieldAnyString = 1
	fieldAnyBool   = 2
	fieldAnyInt    = 3
	fieldAnyDouble = 4
	fieldAnyArray  = 5
	fieldAnyKVList = 6
	fieldAnyBytes  = 7

	fieldArrayValues  = 1 // ArrayValue.values
	fieldKVListValues = 1 // KeyValueList.values
)

func newProtoBatch(sink func(body []byte, spans int), buf func(n int) []byte) *protoBatch {
	if buf == nil {
		buf = func(n int) []byte { return make([]byte, 0, n) }
	}
	return &protoBatch{sink: sink, buf: buf, byPID: make(map[uint32]*protoResource)}
}

func (b *protoBatch) begin(res *resources, op *flow.Operation, _ int) spanWriter {
	if b.n == 0 {
		b.started = time.Now()
	}
	r := b.byPID[op.PID]
	if r == nil {
		if n := len(b.free); n > 0 {
			r, b.free = b.free[n-1], b.free[:n-1]
		} else {
			r = &protoResource{}
		}
		r.attrs = res.of(op)
		b.byPID[op.PID] = r
		b.order = append(b.order, r)
	}
	b.cur = r
	b.span.b = b.span.b[:0]
	return &b.span
}

func (b *protoBatch) end() {
	b.cur.spans = appendTag(b.cur.spans, fieldSSSpans, protowire.BytesType)
	b.cur.spans = appendBytes(b.cur.spans, b.span.b)
	b.n++
}

func (b *protoBatch) size() int        { return b.n }
func (b *protoBatch) since() time.Time { return b.started }

// flush encodes the request and hands it on: the sink owns the bytes,
// which are written in one buffer (from buf, which may recycle them).
func (b *protoBatch) flush() {
	scope := appendScope(nil)
	var res [][]byte
	total := 0
	for _, r := range b.order {
		attrs := appendResource(nil, r.attrs)
		rs := sizeField(len(attrs)) + sizeField(len(scope)+len(r.spans))
		total += sizeField(rs)
		res = append(res, attrs)
	}
	body := b.buf(total)[:0]
	for i, r := range b.order {
		ss := len(scope) + len(r.spans)
		rs := sizeField(len(res[i])) + sizeField(ss)
		body = appendTag(body, fieldRequestResourceSpans, protowire.BytesType)
		body = appendVarint(body, uint64(rs))
		body = appendTag(body, fieldRSResource, protowire.BytesType)
		body = appendBytes(body, res[i])
		body = appendTag(body, fieldRSScopeSpans, protowire.BytesType)
		body = appendVarint(body, uint64(ss))
		body = append(body, scope...)
		body = append(body, r.spans...)
	}
	n := b.n
	for _, r := range b.order {
		r.spans, r.attrs = r.spans[:0], pcommon.Map{}
		b.free = append(b.free, r)
	}
	clear(b.byPID)
	b.order, b.n = b.order[:0], 0
	b.sink(body, n)
}

// appendTag and appendVarint are protowire's, with the one-byte case
// inlined: nearly every tag and length here is one byte, and protowire's
// general versions are a third of the encoder's time.
func appendTag(b []byte, num protowire.Number, typ protowire.Type) []byte {
	if num < 16 {
		return append(b, byte(num)<<3|byte(typ))
	}
	return protowire.AppendTag(b, num, typ)
}

func appendVarint(b []byte, v uint64) []byte {
	if v < 0x80 {
		return append(b, byte(v))
	}
	return protowire.AppendVarint(b, v)
}

func appendString(b []byte, s string) []byte {
	return append(appendVarint(b, uint64(len(s))), s...)
}

func appendBytes(b []byte, v []byte) []byte {
	return append(appendVarint(b, uint64(len(v))), v...)
}

// sizeField is the size of a length-delimited field of n bytes with a
// one-byte tag (every field number here is below 16).
func sizeField(n int) int { return 1 + protowire.SizeVarint(uint64(n)) + n }

// appendScope is ScopeSpans.scope: icptrack's name and version.
func appendScope(b []byte) []byte {
	var s []byte
	s = appendTag(s, fieldScopeName, protowire.BytesType)
	s = appendString(s, ScopeName)
	s = appendTag(s, fieldScopeVersion, protowire.BytesType)
	s = appendString(s, Version())
	b = appendTag(b, fieldSSScope, protowire.BytesType)
	return appendBytes(b, s)
}

// appendResource is a Resource message's encoding (without its tag).
func appendResource(b []byte, attrs pcommon.Map) []byte {
	attrs.Range(func(k string, v pcommon.Value) bool {
		b = appendKeyValue(b, fieldResourceAttributes, k, v)
		return true
	})
	return b
}

// appendKeyValue writes field as a KeyValue of any value type.
func appendKeyValue(b []byte, field protowire.Number, k string, v pcommon.Value) []byte {
	val := appendAnyValue(nil, v)
	return append(appendAttrHead(b, field, k, len(val)), val...)
}

// appendAnyValue is an AnyValue message's encoding (without its tag).
func appendAnyValue(b []byte, v pcommon.Value) []byte {
	switch v.Type() {
	case pcommon.ValueTypeStr:
		b = appendTag(b, fieldAnyString, protowire.BytesType)
		b = appendString(b, v.Str())
	case pcommon.ValueTypeBool:
		b = appendTag(b, fieldAnyBool, protowire.VarintType)
		b = appendVarint(b, protowire.EncodeBool(v.Bool()))
	case pcommon.ValueTypeInt:
		b = appendTag(b, fieldAnyInt, protowire.VarintType)
		b = appendVarint(b, uint64(v.Int()))
	case pcommon.ValueTypeDouble:
		b = appendTag(b, fieldAnyDouble, protowire.Fixed64Type)
		b = protowire.AppendFixed64(b, math.Float64bits(v.Double()))
	case pcommon.ValueTypeBytes:
		b = appendTag(b, fieldAnyBytes, protowire.BytesType)
		b = appendBytes(b, v.Bytes().AsRaw())
	case pcommon.ValueTypeSlice:
		var arr []byte
		s := v.Slice()
		for i := range s.Len() {
			arr = appendTag(arr, fieldArrayValues, protowire.BytesType)
			arr = appendBytes(arr, appendAnyValue(nil, s.At(i)))
		}
		b = appendTag(b, fieldAnyArray, protowire.BytesType)
		b = appendBytes(b, arr)
	case pcommon.ValueTypeMap:
		var kvs []byte
		v.Map().Range(func(k string, v pcommon.Value) bool {
			kvs = appendKeyValue(kvs, fieldKVListValues, k, v)
			return true
		})
		b = appendTag(b, fieldAnyKVList, protowire.BytesType)
		b = appendBytes(b, kvs)
	}
	return b
}

// protoSpan encodes one Span message (without its tag) into b.
type protoSpan struct{ b []byte }

// appendIDs writes a trace id, span id and trace state as fields 1, 2
// and 3, where both Span and Span.Link keep them.
func appendIDs(b []byte, trace pcommon.TraceID, span pcommon.SpanID, state string) []byte {
	b = appendTag(b, fieldSpanTraceID, protowire.BytesType)
	b = appendBytes(b, trace[:])
	b = appendTag(b, fieldSpanSpanID, protowire.BytesType)
	b = appendBytes(b, span[:])
	if state != "" {
		b = appendTag(b, fieldSpanTraceState, protowire.BytesType)
		b = appendString(b, state)
	}
	return b
}

func (p *protoSpan) ids(trace pcommon.TraceID, span, parent pcommon.SpanID, state string, flags uint32) {
	b := appendIDs(p.b, trace, span, state)
	if !parent.IsEmpty() {
		b = appendTag(b, fieldSpanParentID, protowire.BytesType)
		b = appendBytes(b, parent[:])
	}
	if flags != 0 {
		b = appendTag(b, fieldSpanFlags, protowire.Fixed32Type)
		b = protowire.AppendFixed32(b, flags)
	}
	p.b = b
}

func (p *protoSpan) link(trace pcommon.TraceID, span pcommon.SpanID, state string, flags uint32) {
	b := p.b
	n := protowire.SizeTag(fieldLinkTraceID) + protowire.SizeBytes(len(trace)) +
		protowire.SizeTag(fieldLinkSpanID) + protowire.SizeBytes(len(span))
	if state != "" {
		n += protowire.SizeTag(fieldLinkTraceState) + protowire.SizeBytes(len(state))
	}
	if flags != 0 {
		n += protowire.SizeTag(fieldLinkFlags) + protowire.SizeFixed32()
	}
	b = appendTag(b, fieldSpanLinks, protowire.BytesType)
	b = appendVarint(b, uint64(n))
	b = appendIDs(b, trace, span, state)
	if flags != 0 {
		b = appendTag(b, fieldLinkFlags, protowire.Fixed32Type)
		b = protowire.AppendFixed32(b, flags)
	}
	p.b = b
}

func (p *protoSpan) head(operation, target string, kind ptrace.SpanKind, start, end pcommon.Timestamp) {
	b := p.b
	b = appendTag(b, fieldSpanName, protowire.BytesType)
	b = appendVarint(b, uint64(len(operation)+1+len(target)))
	b = append(append(append(b, operation...), ' '), target...)
	if kind != ptrace.SpanKindUnspecified {
		b = appendTag(b, fieldSpanKind, protowire.VarintType)
		b = appendVarint(b, uint64(kind))
	}
	b = appendTag(b, fieldSpanStart, protowire.Fixed64Type)
	b = protowire.AppendFixed64(b, uint64(start))
	b = appendTag(b, fieldSpanEnd, protowire.Fixed64Type)
	b = protowire.AppendFixed64(b, uint64(end))
	p.b = b
}

func (p *protoSpan) errorStatus(msg string) {
	b := p.b
	n := protowire.SizeTag(fieldStatusMessage) + protowire.SizeBytes(len(msg)) +
		protowire.SizeTag(fieldStatusCode) + protowire.SizeVarint(uint64(ptrace.StatusCodeError))
	b = appendTag(b, fieldSpanStatus, protowire.BytesType)
	b = appendVarint(b, uint64(n))
	b = appendTag(b, fieldStatusMessage, protowire.BytesType)
	b = appendString(b, msg)
	b = appendTag(b, fieldStatusCode, protowire.VarintType)
	b = appendVarint(b, uint64(ptrace.StatusCodeError))
	p.b = b
}

func (p *protoSpan) str(key, v string) {
	b := p.b
	b = appendStrAttr(b, fieldSpanAttributes, key, v)
	p.b = b
}

func (p *protoSpan) num(key string, v int64) {
	b := p.b
	val := protowire.SizeTag(fieldAnyInt) + protowire.SizeVarint(uint64(v))
	b = appendAttrHead(b, fieldSpanAttributes, key, val)
	b = appendTag(b, fieldAnyInt, protowire.VarintType)
	b = appendVarint(b, uint64(v))
	p.b = b
}

func (p *protoSpan) flag(key string, v bool) {
	b := p.b
	val := protowire.SizeTag(fieldAnyBool) + 1
	b = appendAttrHead(b, fieldSpanAttributes, key, val)
	b = appendTag(b, fieldAnyBool, protowire.VarintType)
	b = appendVarint(b, protowire.EncodeBool(v))
	p.b = b
}

func (p *protoSpan) event(name string, at pcommon.Timestamp, key, v string) {
	b := p.b
	attr := sizeStrAttr(key, v)
	n := protowire.SizeTag(fieldEventTime) + protowire.SizeFixed64() +
		protowire.SizeTag(fieldEventName) + protowire.SizeBytes(len(name)) + attr
	b = appendTag(b, fieldSpanEvents, protowire.BytesType)
	b = appendVarint(b, uint64(n))
	b = appendTag(b, fieldEventTime, protowire.Fixed64Type)
	b = protowire.AppendFixed64(b, uint64(at))
	b = appendTag(b, fieldEventName, protowire.BytesType)
	b = appendString(b, name)
	b = appendStrAttr(b, fieldEventAttributes, key, v)
	p.b = b
}

// appendAttrHead writes field's tag and length, and a KeyValue's key and
// the tag and length of a value of val bytes: the value follows.
func appendAttrHead(b []byte, field protowire.Number, key string, val int) []byte {
	kv := protowire.SizeTag(fieldKVKey) + protowire.SizeBytes(len(key)) + protowire.SizeTag(fieldKVValue) + protowire.SizeBytes(val)
	b = appendTag(b, field, protowire.BytesType)
	b = appendVarint(b, uint64(kv))
	b = appendTag(b, fieldKVKey, protowire.BytesType)
	b = appendString(b, key)
	b = appendTag(b, fieldKVValue, protowire.BytesType)
	return appendVarint(b, uint64(val))
}

func appendStrAttr(b []byte, field protowire.Number, key, v string) []byte {
	b = appendAttrHead(b, field, key, protowire.SizeTag(fieldAnyString)+protowire.SizeBytes(len(v)))
	b = appendTag(b, fieldAnyString, protowire.BytesType)
	return appendString(b, v)
}

// sizeStrAttr is appendStrAttr's size with a one-byte field tag.
func sizeStrAttr(key, v string) int {
	val := protowire.SizeTag(fieldAnyString) + protowire.SizeBytes(len(v))
	kv := protowire.SizeTag(fieldKVKey) + protowire.SizeBytes(len(key)) + protowire.SizeTag(fieldKVValue) + protowire.SizeBytes(val)
	return 1 + protowire.SizeBytes(kv)
}
