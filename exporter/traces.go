package exporter

import (
	"encoding/base64"
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/icptrack/icptrack/flow"
	"github.com/icptrack/icptrack/semconv"
)

// SpanOptions tune how operations become spans.
type SpanOptions struct {
	Resource ResourceOptions
	// CausalStitching makes a send the child of the receive its thread
	// made before it, so that a request that crosses several processes is
	// one trace. It assumes a thread handles one request at a time; see
	// the README for when that is wrong.
	CausalStitching bool
	// BatchSize is how many spans go out together; BatchTimeout how long
	// a batch that is not full waits.
	BatchSize    int
	BatchTimeout time.Duration
	// Seed makes trace ids; random when 0.
	Seed uint64
	// SampleRatio is the fraction of traces exported, in (0, 1]; 0
	// means 1. The decision is made once per trace, on its id, so a
	// stitched trace is exported whole or not at all (OpenTelemetry
	// consistent probability sampling: the threshold travels in each
	// span's tracestate as ot=th:…).
	SampleRatio float64
	// MaxSpansPerSecond caps the spans exported: under load the
	// sampling threshold rises, for new traces, until the rate fits. 0
	// is no cap.
	MaxSpansPerSecond float64
	// QueueFill, when set with MaxSpansPerSecond, is how full the export
	// queue is (0 to 1): the cap lowers the rate while it fills, so that
	// spans are sampled out rather than dropped.
	QueueFill func() float64
}

// DefaultMaxSpansPerSecond is the span cap the agent runs with when
// exporting over OTLP: well under what the span path sustains on one
// core, so that a busy host has its spans sampled rather than dropped
// (see the README for how it was chosen).
const DefaultMaxSpansPerSecond = 20000

// CheckSampleRatio says what is wrong with a trace sample ratio.
func CheckSampleRatio(r float64) error {
	if !(r > 0 && r <= 1) {
		return fmt.Errorf("%v is not a sample ratio: use a fraction of traces above 0 and at most 1, such as 0.1 (1 exports every trace)", r)
	}
	return nil
}

// CheckMaxSpansPerSecond says what is wrong with a span cap.
func CheckMaxSpansPerSecond(n float64) error {
	if !(n >= 0) || math.IsInf(n, 0) {
		return fmt.Errorf("%v is not a rate: use spans per second, such as 20000, or 0 for no cap", n)
	}
	return nil
}

// DefaultSpanOptions are the options icptrack runs with.
func DefaultSpanOptions() SpanOptions {
	return SpanOptions{CausalStitching: true, BatchSize: 1024, BatchTimeout: 200 * time.Millisecond}
}

// SpanStats count what the span mapper did.
type SpanStats struct {
	Spans   uint64
	Batches uint64
	// UnknownLinks are links to sends whose trace the mapper no longer
	// remembered (or never saw); they are left out of the span.
	UnknownLinks uint64
	// SampledOut are operations whose trace was sampled out: they made
	// no span. Spans + SampledOut is every operation added.
	SampledOut uint64
}

// Spans turns operations into OTLP spans (pdata), one span per operation,
// and hands them on in batches with one Resource per process. It is not
// safe for concurrent use: call it from the goroutine that emits
// operations, in their order.
//
// Span ids are operation ids. A receive is the child of the one send it
// delivered (CONSUMER under PRODUCER); one that delivered sends of several
// traces starts a trace of its own and links to them all.
type Spans struct {
	opts  SpanOptions
	res   *resources
	rng   *rand.Rand
	sends sendTable
	// sizes bounds the traces causal stitching grows.
	sizes traceSizes
	// threads is each thread's causal context.
	threads   map[uint32]*threadContext
	lastSweep time.Time
	batch     spanBatch
	stats     SpanStats
	b64       []byte
	links     []spanRef

	// th is the threshold new traces are decided with: the ratio's, or
	// the cap's when that is higher.
	th         threshold
	ratio      float64
	cap        *spanCap
	clock      func() time.Time
	states     traceStates
	sampledOut atomic.Uint64
}

// NewSpans hands each batch to sink as pdata, which sink owns from then
// on: for a Collector pipeline.
func NewSpans(opts SpanOptions, sink func(ptrace.Traces)) *Spans {
	return newSpans(opts, newPdataBatch(sink))
}

// NewEncodedSpans hands each batch to sink as the protobuf encoding of an
// OTLP ExportTraceServiceRequest with that many spans, which sink owns
// from then on: for sending, at a fraction of pdata's cost. buf, when not
// nil, gives a buffer of at least n bytes to encode a batch into, such as
// one the sink is done with (TraceSender.Buffer).
func NewEncodedSpans(opts SpanOptions, sink func(body []byte, spans int), buf func(n int) []byte) *Spans {
	return newSpans(opts, newProtoBatch(sink, buf))
}

func newSpans(opts SpanOptions, batch spanBatch) *Spans {
	d := DefaultSpanOptions()
	if opts.BatchSize <= 0 {
		opts.BatchSize = d.BatchSize
	}
	if opts.BatchTimeout <= 0 {
		opts.BatchTimeout = d.BatchTimeout
	}
	seed := opts.Seed
	if seed == 0 {
		seed = rand.Uint64()
	}
	s := &Spans{
		opts:    opts,
		batch:   batch,
		res:     newResources(opts.Resource),
		rng:     rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)),
		sends:   newSendTable(1 << 16),
		sizes:   newTraceSizes(1 << 14),
		threads: make(map[uint32]*threadContext),
		ratio:   1,
		clock:   time.Now,
		states:  traceStates{},
	}
	if r := opts.SampleRatio; r > 0 && r < 1 {
		s.ratio = r
	}
	if opts.MaxSpansPerSecond > 0 {
		s.cap = newSpanCap(opts.MaxSpansPerSecond, opts.QueueFill)
	}
	s.th = thresholdFor(s.ratio)
	return s
}

// SetSampling changes the sample ratio and the span cap (SpanOptions'
// SampleRatio and MaxSpansPerSecond; 0 or 1: every trace, 0: no cap), for
// a configuration reload. Traces already decided keep their decision.
// Call it on the goroutine that calls Add.
func (s *Spans) SetSampling(ratio, maxSpansPerSecond float64) {
	s.opts.SampleRatio, s.opts.MaxSpansPerSecond = ratio, maxSpansPerSecond
	s.ratio = 1
	if ratio > 0 && ratio < 1 {
		s.ratio = ratio
	}
	s.cap = nil
	if maxSpansPerSecond > 0 {
		s.cap = newSpanCap(maxSpansPerSecond, s.opts.QueueFill)
	}
	s.th = thresholdFor(s.ratio)
}

// Stats returns the counters so far.
func (s *Spans) Stats() SpanStats { return s.stats }

// SampledOut is Stats().SampledOut, safe to read from any goroutine (for
// the self-metrics).
func (s *Spans) SampledOut() uint64 { return s.sampledOut.Load() }

// Probability is the fraction of new traces being exported now: the
// sample ratio, or less while the cap holds the rate down.
func (s *Spans) Probability() float64 { return s.th.probability() }

// Add maps one operation.
func (s *Spans) Add(op *flow.Operation) {
	pl := s.place(op)
	keep := pl.trace.sampled()
	if s.cap != nil {
		s.cap.count(keep)
		if uint64(s.cap.offered)&255 == 0 {
			s.adapt(s.clock())
		}
	}
	if !keep {
		s.stats.SampledOut++
		s.sampledOut.Add(1)
		return
	}
	w := s.batch.begin(s.res, op, attrCount(op))
	s.setPlace(w, op, &pl)
	s.fill(w, op)
	s.batch.end()
	s.stats.Spans++
	if s.batch.size() >= s.opts.BatchSize {
		s.Flush()
	}
}

// adapt lets the cap re-estimate its probability, and moves the
// threshold for new traces when it changed.
func (s *Spans) adapt(now time.Time) {
	if s.cap.update(now, s.th.probability()) {
		s.th = thresholdFor(min(s.ratio, s.cap.p))
	}
}

// Tick sends a batch that has waited long enough and forgets idle
// threads. Call it on a timer.
func (s *Spans) Tick(now time.Time) {
	if s.cap != nil {
		s.adapt(s.clock())
	}
	if s.batch.size() > 0 && now.Sub(s.batch.since()) >= s.opts.BatchTimeout {
		s.Flush()
	}
	if now.Sub(s.lastSweep) >= time.Minute {
		s.lastSweep = now
		for tid, tc := range s.threads {
			if now.Sub(tc.at) > 5*time.Minute {
				delete(s.threads, tid)
			}
		}
	}
}

// Flush sends the batch being built, if it has spans.
func (s *Spans) Flush() {
	if s.batch.size() == 0 {
		return
	}
	s.stats.Batches++
	s.batch.flush()
}

// MaxTraceSpans is how many spans causal stitching puts in one trace:
// past it, a thread's next operation starts a trace of its own, linked to
// the last one.
const MaxTraceSpans = 1000

// traceSizes counts the spans of recent traces, direct-mapped by trace id
// (all random): a slot taken by a newer trace forgets the older one,
// which then counts afresh, so a trace may run past the maximum by as
// much again, never without bound.
type traceSizes struct {
	ids  []pcommon.TraceID
	n    []uint32
	mask uint64
}

func newTraceSizes(n int) traceSizes {
	return traceSizes{ids: make([]pcommon.TraceID, n), n: make([]uint32, n), mask: uint64(n - 1)}
}

func (t *traceSizes) slot(id pcommon.TraceID) uint64 {
	return (uint64(id[8])<<24 | uint64(id[9])<<16 | uint64(id[10])<<8 | uint64(id[11])) & t.mask
}

func (t *traceSizes) add(id pcommon.TraceID) {
	i := t.slot(id)
	if t.ids[i] != id {
		t.ids[i], t.n[i] = id, 0
	}
	t.n[i]++
}

func (t *traceSizes) full(id pcommon.TraceID) bool {
	i := t.slot(id)
	return t.ids[i] == id && t.n[i] >= MaxTraceSpans
}

// threadContext is what a thread is doing, for causal stitching.
type threadContext struct {
	// parent is the receive that the thread's next sends are children of,
	// with its trace's sampling threshold.
	parent    spanRef
	hasParent bool
	// originated are the traces this thread started with a send: a
	// receive in one of them is the answer to its own request, which ends
	// that request rather than starting work on behalf of another.
	originated [4]pcommon.TraceID
	next       int
	at         time.Time
}

func (tc *threadContext) started(t pcommon.TraceID) {
	tc.originated[tc.next] = t
	tc.next = (tc.next + 1) % len(tc.originated)
}

// answered reports whether t is a trace this thread started, and forgets
// it.
func (tc *threadContext) answered(t pcommon.TraceID) bool {
	for i, o := range tc.originated {
		if o == t {
			tc.originated[i] = pcommon.TraceID{}
			return true
		}
	}
	return false
}

type spanRef struct {
	trace traceRef
	span  pcommon.SpanID
}

// sendTable remembers the trace of recent sends, and the threshold it
// was decided with, so that the receives that deliver them join it. It
// is direct-mapped: operation ids look random, and a send is nearly
// always received soon after it was made.
type sendTable struct {
	ids    []flow.OpID
	traces []traceRef
	mask   uint64
}

func newSendTable(n int) sendTable {
	return sendTable{ids: make([]flow.OpID, n), traces: make([]traceRef, n), mask: uint64(n - 1)}
}

func (t *sendTable) put(id flow.OpID, trace traceRef) {
	i := uint64(id) & t.mask
	t.ids[i], t.traces[i] = id, trace
}

func (t *sendTable) get(id flow.OpID) (traceRef, bool) {
	i := uint64(id) & t.mask
	if t.ids[i] != id {
		return traceRef{}, false
	}
	return t.traces[i], true
}

// newTrace starts a trace, decided with the threshold of the moment. Its
// id is all random (a PCG stream), as the W3C random flag on its spans
// promises: the sampling decision rests on its low 56 bits.
func (s *Spans) newTrace() traceRef {
	var t pcommon.TraceID
	for t.IsEmpty() {
		a, b := s.rng.Uint64(), s.rng.Uint64()
		for i := range 8 {
			t[i], t[8+i] = byte(a>>(56-8*i)), byte(b>>(56-8*i))
		}
	}
	return traceRef{id: t, th: s.th}
}

func spanID(id flow.OpID) pcommon.SpanID {
	var b pcommon.SpanID
	for i := range b {
		b[i] = byte(id >> (56 - 8*i))
	}
	return b
}

// sendLike operations are what other operations are caused by; receiveLike
// operations are caused by them.
func sendLike(o flow.OpType) bool    { return o == flow.Send || o == flow.Wake }
func receiveLike(o flow.OpType) bool { return o == flow.Receive || o == flow.Wait }

// placement is where a span goes: its trace, its parent (zero for a
// root) and the sends it links to.
type placement struct {
	trace  traceRef
	parent pcommon.SpanID
	links  []spanRef
}

// place finds op's trace, parent and links, and moves the causal state
// (the sends table, the thread's context) on, whether or not op's trace
// is sampled: a trace sampled out must stay whole for the next spans
// too.
func (s *Spans) place(op *flow.Operation) placement {
	var tc *threadContext
	if s.opts.CausalStitching && op.PID != flow.Kernel.PID {
		tc = s.threads[op.TID]
		if tc == nil {
			tc = &threadContext{}
			s.threads[op.TID] = tc
		}
		tc.at = op.Time
	}
	// Only data a thread received moves its causal context: signals and
	// futex wake-ups interrupt what it is doing rather than start new work.
	moves := tc != nil && op.Op == flow.Receive && op.Mechanism != flow.Signal && op.Error == ""
	var pl placement
	switch {
	case receiveLike(op.Op) && len(op.Links) > 0:
		s.placeReceive(&pl, op)
		// What the thread received is what it now works on, unless it is
		// the answer to the thread's own request.
		if moves {
			if tc.answered(pl.trace.id) {
				tc.hasParent = false
			} else {
				tc.parent, tc.hasParent = spanRef{trace: pl.trace, span: spanID(op.ID)}, true
			}
		}
	case moves && op.Bytes > 0:
		// Bytes from a sender icptrack did not see: the work they start
		// is still one trace.
		pl.trace = s.newTrace()
		tc.parent, tc.hasParent = spanRef{trace: pl.trace, span: spanID(op.ID)}, true
	case tc != nil && tc.hasParent && !s.sizes.full(tc.parent.trace.id):
		pl.trace = tc.parent.trace
		pl.parent = tc.parent.span
	case tc != nil && tc.hasParent:
		// The conversation has gone on for MaxTraceSpans spans (two
		// processes that answer each other for ever are one causal
		// chain): what the thread does next starts a trace of its own,
		// linked to where it came from, so that traces stay readable
		// and the span cap can sample them.
		pl.trace = s.newTrace()
		pl.links = append(s.links[:0], tc.parent)
		s.links = pl.links
		tc.parent, tc.hasParent = spanRef{}, false
		if sendLike(op.Op) && op.Error == "" {
			tc.started(pl.trace.id)
		}
	default:
		pl.trace = s.newTrace()
		if tc != nil && sendLike(op.Op) && op.Error == "" {
			tc.started(pl.trace.id)
		}
	}
	if sendLike(op.Op) {
		s.sends.put(op.ID, pl.trace)
	}
	s.sizes.add(pl.trace.id)
	return pl
}

// placeReceive makes a receive the child of the send it delivered, or of
// the last of several sends in one trace (linking the others), or the
// root of a new trace linked to sends of several traces.
func (s *Spans) placeReceive(pl *placement, op *flow.Operation) {
	known := s.links[:0]
	for _, id := range op.Links {
		t, ok := s.sends.get(id)
		if !ok {
			s.stats.UnknownLinks++
			continue
		}
		known = append(known, spanRef{trace: t, span: spanID(id)})
	}
	s.links = known
	if len(known) == 0 {
		pl.trace = s.newTrace()
		return
	}
	trace := known[0].trace
	for _, r := range known[1:] {
		if r.trace.id != trace.id {
			pl.trace, pl.links = s.newTrace(), known
			return
		}
	}
	last := len(known) - 1
	pl.trace, pl.parent, pl.links = trace, known[last].span, known[:last]
}

// setPlace puts a sampled span in its trace.
func (s *Spans) setPlace(w spanWriter, op *flow.Operation, pl *placement) {
	w.ids(pl.trace.id, spanID(op.ID), pl.parent, s.states.of(pl.trace.th), traceFlagSampled|traceFlagRandom)
	s.addLinks(w, pl.links)
}

// addLinks links the span to the sends in refs whose traces were
// exported: a link to a span that was sampled out would lead nowhere.
func (s *Spans) addLinks(w spanWriter, refs []spanRef) {
	for _, r := range refs {
		if r.trace.sampled() {
			w.link(r.trace.id, r.span, s.states.of(r.trace.th), traceFlagSampled|traceFlagRandom)
		}
	}
}

// fill sets everything but the span's place in its trace.
func (s *Spans) fill(a spanWriter, op *flow.Operation) {
	a.head(operationName(op), spanTarget(op), spanKind(op.Op), pcommon.NewTimestampFromTime(op.Time),
		pcommon.NewTimestampFromTime(op.Time.Add(op.Duration)))
	if IsError(op.Error) {
		a.errorStatus(op.Error)
	}

	a.str(semconv.AttrIPCMechanism, op.Mechanism.String())
	a.str(semconv.AttrIPCOperationType, op.Op.String())
	a.str(semconv.AttrIPCOperationName, operationName(op))
	if op.Channel != "" {
		a.str(semconv.AttrIPCChannelID, op.Channel)
	}
	if op.Endpoint != "" {
		a.str(semconv.AttrIPCChannelName, op.Endpoint)
	}
	if anon, ok := anonymous(op); ok {
		a.flag(semconv.AttrIPCChannelAnonymous, anon)
	}
	a.num(semconv.AttrIPCThreadTID, int64(op.TID))
	if op.Peer.PID != 0 || op.Peer.Comm != "" {
		a.num(semconv.AttrIPCPeerProcessPID, int64(op.Peer.PID))
		if op.Peer.Comm != "" {
			a.str(semconv.AttrIPCPeerProcessExecutableName, op.Peer.Comm)
		}
	}
	if t := transport(op.Mechanism); t != "" {
		a.str(semconv.AttrNetworkTransport, t)
	}
	if op.Remote.IsValid() {
		a.str(semconv.AttrNetworkPeerAddress, op.Remote.Addr().String())
		a.num(semconv.AttrNetworkPeerPort, int64(op.Remote.Port()))
	}
	if op.Op == flow.Send || op.Op == flow.Receive {
		a.num(semconv.AttrIPCPayloadSize, op.Bytes)
	}
	if op.Error != "" && IsError(op.Error) {
		a.str(semconv.AttrErrorType, op.Error)
	}
	switch op.Mechanism {
	case flow.POSIXMQ, flow.SysVMQ:
		a.str(semconv.AttrMessagingSystem, op.Mechanism.String())
		if t := messagingOperation(op.Op); t != "" {
			a.str(semconv.AttrMessagingOperationType, t)
		}
		if op.Endpoint != "" {
			a.str(semconv.AttrMessagingDestinationName, op.Endpoint)
		}
		if op.Op == flow.Send || op.Op == flow.Receive {
			a.num(semconv.AttrMessagingMessageBodySize, op.Bytes)
		}
		if op.QueueDepth >= 0 {
			a.num(semconv.AttrIPCQueueDepth, op.QueueDepth)
		}
		if op.HasMessageType {
			a.num(semconv.AttrIPCMessageType, op.MessageType)
		}
	case flow.Signal:
		if op.Signal != "" {
			a.str(semconv.AttrIPCSignalName, op.Signal)
		}
	case flow.SysVShm, flow.POSIXShm, flow.Memfd:
		if op.Bytes > 0 {
			a.num(semconv.AttrIPCShmSize, op.Bytes)
		}
	}
	if op.Count > 1 {
		a.num(semconv.AttrIPCOperationCount, int64(op.Count))
	}
	if op.PayloadCaptured {
		a.num(semconv.AttrIPCPayloadCapturedSize, int64(len(op.Payload)))
		a.flag(semconv.AttrIPCPayloadTruncated, op.PayloadTruncated)
		if len(op.Payload) > 0 {
			s.b64 = base64.StdEncoding.AppendEncode(s.b64[:0], op.Payload)
			a.event(semconv.EventIPCPayload, pcommon.NewTimestampFromTime(op.Time), semconv.AttrIPCPayloadContent, string(s.b64))
		}
	}
}

// attrCount is at least the number of attributes fill puts on op's span,
// so that the map is allocated once: spans are most of icptrack's
// allocations when it exports, and the garbage collector's work with
// them.
func attrCount(op *flow.Operation) int {
	n := 4 // mechanism, operation type and name, thread id
	if op.Channel != "" {
		n++
	}
	if op.Endpoint != "" {
		n++
	}
	if _, ok := anonymous(op); ok {
		n++
	}
	if op.Peer.PID != 0 || op.Peer.Comm != "" {
		n += 2
	}
	if transport(op.Mechanism) != "" {
		n++
	}
	if op.Remote.IsValid() {
		n += 2
	}
	if op.Op == flow.Send || op.Op == flow.Receive {
		n++
	}
	if IsError(op.Error) {
		n++
	}
	switch op.Mechanism {
	case flow.POSIXMQ, flow.SysVMQ:
		n += 6
	case flow.Signal, flow.SysVShm, flow.POSIXShm, flow.Memfd:
		n++
	}
	if op.Count > 1 {
		n++
	}
	if op.PayloadCaptured {
		n += 2
	}
	return n
}

// IsError reports whether an operation that failed with errno is an error
// worth flagging: a would-block on a non-blocking descriptor is how event
// loops work, not a failure.
func IsError(errno string) bool {
	return errno != "" && errno != "EAGAIN"
}

func spanKind(o flow.OpType) ptrace.SpanKind {
	switch o {
	case flow.Send:
		return ptrace.SpanKindProducer
	case flow.Receive:
		return ptrace.SpanKindConsumer
	}
	return ptrace.SpanKindInternal
}

// SpanName is "{syscall} {target}": the target is the channel's name when
// it has a stable, low-cardinality one (a FIFO or socket path, a queue or
// shared-memory name, a signal), else the mechanism.
// A signal the kernel generated or delivered has no syscall: its
// operation type stands in ("send SIGCHLD").
func SpanName(op *flow.Operation) string {
	return operationName(op) + " " + spanTarget(op)
}

func operationName(op *flow.Operation) string {
	if op.Syscall != "" {
		return op.Syscall
	}
	return op.Op.String()
}

func spanTarget(op *flow.Operation) string {
	e := op.Endpoint
	switch op.Mechanism {
	case flow.FIFO, flow.UnixStream, flow.UnixDgram, flow.UnixSeqpacket:
		if strings.HasPrefix(e, "/") || strings.HasPrefix(e, "@") {
			return e
		}
	case flow.POSIXMQ, flow.POSIXShm:
		if strings.HasPrefix(e, "/") && op.Op != flow.Wait && op.Op != flow.Wake {
			return e
		}
	case flow.Memfd:
		if strings.HasPrefix(e, "memfd:") && op.Op != flow.Wait && op.Op != flow.Wake {
			return e
		}
	case flow.Signal:
		if op.Signal != "" {
			return op.Signal
		}
	}
	return op.Mechanism.String()
}

// anonymous reports whether the channel has no name another process could
// open it by, where that is known.
func anonymous(op *flow.Operation) (bool, bool) {
	switch op.Mechanism {
	case flow.Pipe, flow.Memfd:
		return true, true
	case flow.FIFO, flow.POSIXMQ, flow.POSIXShm, flow.TCP, flow.UDP:
		return false, true
	case flow.UnixStream, flow.UnixDgram, flow.UnixSeqpacket:
		return !strings.HasPrefix(op.Endpoint, "/") && !strings.HasPrefix(op.Endpoint, "@"), true
	case flow.SysVMQ, flow.SysVShm:
		return !strings.HasPrefix(op.Endpoint, "key "), true
	}
	return false, false
}

// transport is network.transport for mechanisms that have one.
func transport(m flow.Mechanism) string {
	switch m {
	case flow.UnixStream, flow.UnixDgram, flow.UnixSeqpacket:
		return "unix"
	case flow.Pipe, flow.FIFO:
		return "pipe"
	case flow.TCP:
		return "tcp"
	case flow.UDP:
		return "udp"
	}
	return ""
}

// messagingOperation is messaging.operation.type for a queue operation.
func messagingOperation(o flow.OpType) string {
	switch o {
	case flow.Send:
		return "send"
	case flow.Receive:
		return "receive"
	case flow.Create:
		return "create"
	}
	return ""
}
