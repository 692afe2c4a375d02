package exporter

import (
	"net/netip"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/icptrack/icptrack/flow"
	"github.com/icptrack/icptrack/semconv"
)

// spanCollector maps operations and keeps every span with its resource.
type spanCollector struct {
	t       *testing.T
	spans   *Spans
	batches []ptrace.Traces
	nextID  flow.OpID
	now     time.Time
}

type mapped struct {
	span     ptrace.Span
	resource pcommon.Map
}

func newSpanCollector(t *testing.T, mutate func(*SpanOptions)) *spanCollector {
	c := &spanCollector{t: t, now: time.Unix(1700000000, 0)}
	opts := DefaultSpanOptions()
	opts.Seed = 1
	opts.Resource.HostName = "testhost"
	if mutate != nil {
		mutate(&opts)
	}
	c.spans = NewSpans(opts, func(td ptrace.Traces) { c.batches = append(c.batches, td) })
	return c
}

// add maps op (giving it the next id) and returns its id.
func (c *spanCollector) add(op flow.Operation) flow.OpID {
	c.nextID++
	op.ID = c.nextID
	if op.Time.IsZero() {
		c.now = c.now.Add(time.Millisecond)
		op.Time = c.now
		op.Duration = 3 * time.Microsecond
	}
	if op.QueueDepth == 0 && op.Mechanism != flow.POSIXMQ && op.Mechanism != flow.SysVMQ {
		op.QueueDepth = -1
	}
	c.spans.Add(&op)
	return op.ID
}

// all flushes and returns every span by operation id.
func (c *spanCollector) all() map[flow.OpID]mapped {
	c.spans.Flush()
	out := map[flow.OpID]mapped{}
	for _, td := range c.batches {
		for i := 0; i < td.ResourceSpans().Len(); i++ {
			rs := td.ResourceSpans().At(i)
			if rs.ScopeSpans().Len() != 1 || rs.ScopeSpans().At(0).Scope().Name() != ScopeName {
				c.t.Fatalf("resource %d: want one scope named %s", i, ScopeName)
			}
			ss := rs.ScopeSpans().At(0).Spans()
			for j := 0; j < ss.Len(); j++ {
				sp := ss.At(j)
				id := sp.SpanID()
				var v uint64
				for _, b := range id {
					v = v<<8 | uint64(b)
				}
				out[flow.OpID(v)] = mapped{span: sp, resource: rs.Resource().Attributes()}
			}
		}
	}
	return out
}

func str(t *testing.T, m pcommon.Map, key string) string {
	t.Helper()
	v, ok := m.Get(key)
	if !ok {
		return "<absent>"
	}
	return v.AsString()
}

func process(pid uint32, exe string) flow.Operation {
	return flow.Operation{PID: pid, TID: pid, PPID: 1, Comm: exe, Exe: "/usr/bin/" + exe}
}

func op(p flow.Operation, mech flow.Mechanism, o flow.OpType, syscall, channel, endpoint string, bytes int64) flow.Operation {
	p.Mechanism, p.Op, p.Syscall, p.Channel, p.Endpoint, p.Bytes = mech, o, syscall, channel, endpoint, bytes
	return p
}

// Each mechanism's span: name, kind, and the attributes that identify it.
func TestSpanOfEachMechanism(t *testing.T) {
	a, b := process(10, "alpha"), process(20, "beta")
	mqSend := op(a, flow.POSIXMQ, flow.Send, "mq_timedsend", "posix_mq:5", "/orders", 12)
	mqSend.QueueDepth, mqSend.MessageType, mqSend.HasMessageType = 3, 7, true
	tcp := op(a, flow.TCP, flow.Send, "sendto", "tcp:1:127.0.0.1:5000-127.0.0.1:41234", "127.0.0.1:41234->127.0.0.1:5000", 64)
	tcp.Local, tcp.Remote = netip.MustParseAddrPort("127.0.0.1:41234"), netip.MustParseAddrPort("127.0.0.1:5000")
	sig := flow.Operation{PID: 0, TID: 0, Comm: "kernel", Mechanism: flow.Signal, Op: flow.Send, Channel: "signal:0:20:17", Endpoint: "SIGCHLD", Signal: "SIGCHLD", Peer: flow.Peer{PID: 20, Comm: "beta"}}
	kill := op(a, flow.Signal, flow.Send, "kill", "signal:10:20:15", "SIGTERM", 0)
	kill.Signal = "SIGTERM"

	cases := []struct {
		name  string
		op    flow.Operation
		span  string
		kind  ptrace.SpanKind
		attrs map[string]string
	}{
		{"pipe", op(a, flow.Pipe, flow.Send, "write", "pipe:7", "pipe:[7]", 5), "write pipe", ptrace.SpanKindProducer,
			map[string]string{semconv.AttrIPCMechanism: "pipe", semconv.AttrIPCOperationType: "send", semconv.AttrIPCChannelID: "pipe:7",
				semconv.AttrIPCChannelName: "pipe:[7]", semconv.AttrIPCChannelAnonymous: "true", semconv.AttrNetworkTransport: "pipe", semconv.AttrIPCPayloadSize: "5"}},
		{"fifo", op(b, flow.FIFO, flow.Receive, "read", "fifo:0:5:9", "/run/app.fifo", 5), "read /run/app.fifo", ptrace.SpanKindConsumer,
			map[string]string{semconv.AttrIPCChannelAnonymous: "false", semconv.AttrNetworkTransport: "pipe"}},
		{"unix named", op(a, flow.UnixStream, flow.Send, "sendmsg", "unix:1-2", "/run/app.sock", 9), "sendmsg /run/app.sock", ptrace.SpanKindProducer,
			map[string]string{semconv.AttrNetworkTransport: "unix", semconv.AttrIPCChannelAnonymous: "false"}},
		{"socketpair", op(a, flow.UnixSeqpacket, flow.Receive, "recvmsg", "unix:1-2", "socket:[99]", 9), "recvmsg unix_seqpacket", ptrace.SpanKindConsumer,
			map[string]string{semconv.AttrIPCChannelAnonymous: "true"}},
		{"abstract dgram", op(a, flow.UnixDgram, flow.Send, "sendto", "unix:3", "@bus", 9), "sendto @bus", ptrace.SpanKindProducer, nil},
		{"tcp", tcp, "sendto tcp", ptrace.SpanKindProducer,
			map[string]string{semconv.AttrNetworkTransport: "tcp", semconv.AttrNetworkPeerAddress: "127.0.0.1", semconv.AttrNetworkPeerPort: "5000"}},
		{"udp", op(a, flow.UDP, flow.Receive, "recvfrom", "udp:1:127.0.0.1:53", "127.0.0.1:53", 40), "recvfrom udp", ptrace.SpanKindConsumer,
			map[string]string{semconv.AttrNetworkTransport: "udp"}},
		{"posix mq", mqSend, "mq_timedsend /orders", ptrace.SpanKindProducer,
			map[string]string{semconv.AttrMessagingSystem: "posix_mq", semconv.AttrMessagingOperationType: "send",
				semconv.AttrMessagingDestinationName: "/orders", semconv.AttrMessagingMessageBodySize: "12",
				semconv.AttrIPCQueueDepth: "3", semconv.AttrIPCMessageType: "7", semconv.AttrNetworkTransport: "<absent>"}},
		{"sysv mq", op(b, flow.SysVMQ, flow.Receive, "msgrcv", "sysv_mq:1:3", "key 0x2a msqid 3", 4), "msgrcv sysv_mq", ptrace.SpanKindConsumer,
			map[string]string{semconv.AttrMessagingSystem: "sysv_mq", semconv.AttrMessagingOperationType: "receive", semconv.AttrIPCChannelAnonymous: "false"}},
		{"sysv shm", op(a, flow.SysVShm, flow.Attach, "shmat", "sysv_shm:1:4", "shmid 4", 4096), "shmat sysv_shm", ptrace.SpanKindInternal,
			map[string]string{semconv.AttrIPCOperationType: "attach", semconv.AttrIPCChannelAnonymous: "true", semconv.AttrIPCPayloadSize: "<absent>",
				semconv.AttrIPCShmSize: "4096"}},
		{"posix shm", op(a, flow.POSIXShm, flow.Create, "openat", "posix_shm:1:8", "/cache", 0), "openat /cache", ptrace.SpanKindInternal, nil},
		{"memfd", op(a, flow.Memfd, flow.Create, "memfd_create", "memfd:1:9", "memfd:frames", 0), "memfd_create memfd:frames", ptrace.SpanKindInternal, nil},
		{"futex", op(a, flow.POSIXShm, flow.Wait, "futex", "posix_shm:1:8", "/cache+0x40", 0), "futex posix_shm", ptrace.SpanKindInternal,
			map[string]string{semconv.AttrIPCOperationType: "wait"}},
		{"kill", kill, "kill SIGTERM", ptrace.SpanKindProducer, map[string]string{semconv.AttrIPCSignalName: "SIGTERM"}},
		{"kernel signal", sig, "send SIGCHLD", ptrace.SpanKindProducer,
			map[string]string{semconv.AttrIPCOperationName: "send", semconv.AttrIPCPeerProcessPID: "20", semconv.AttrIPCPeerProcessExecutableName: "beta"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := newSpanCollector(t, nil)
			id := c.add(tc.op)
			m, ok := c.all()[id]
			if !ok {
				t.Fatal("no span for the operation")
			}
			if m.span.Name() != tc.span || m.span.Kind() != tc.kind {
				t.Errorf("span %q %v, want %q %v", m.span.Name(), m.span.Kind(), tc.span, tc.kind)
			}
			attrs := m.span.Attributes()
			for k, want := range tc.attrs {
				if got := str(t, attrs, k); got != want {
					t.Errorf("%s = %s, want %s", k, got, want)
				}
			}
			if got := str(t, attrs, semconv.AttrIPCMechanism); got != tc.op.Mechanism.String() {
				t.Errorf("ipc.mechanism = %s", got)
			}
			if tc.op.PID != 0 && str(t, attrs, semconv.AttrIPCThreadTID) != "10" && str(t, attrs, semconv.AttrIPCThreadTID) != "20" {
				t.Errorf("ipc.thread.tid = %s", str(t, attrs, semconv.AttrIPCThreadTID))
			}
			if n := attrCount(&tc.op); attrs.Len() > n || attrs.Len() < n-5 {
				t.Errorf("%d attributes, but attrCount sized the map for %d", attrs.Len(), n)
			}
			if m.span.StartTimestamp() == 0 || m.span.EndTimestamp() < m.span.StartTimestamp() {
				t.Errorf("times %v..%v", m.span.StartTimestamp(), m.span.EndTimestamp())
			}
		})
	}
}

func TestResourcePerProcess(t *testing.T) {
	c := newSpanCollector(t, func(o *SpanOptions) {
		o.Resource.Attributes = map[string]string{"deployment.environment.name": "test", semconv.AttrServiceName: "ignored"}
	})
	a := process(10, "alpha")
	a.ContainerID, a.Cmdline = "3f2a9c1e5b7d", "alpha --serve"
	ia := c.add(op(a, flow.Pipe, flow.Send, "write", "pipe:7", "pipe:[7]", 5))
	ia2 := c.add(op(a, flow.Pipe, flow.Send, "write", "pipe:7", "pipe:[7]", 5))
	ib := c.add(op(process(20, "beta"), flow.Pipe, flow.Receive, "read", "pipe:7", "pipe:[7]", 10))
	spans := c.all()
	if len(c.batches) != 1 || c.batches[0].ResourceSpans().Len() != 2 {
		t.Fatalf("want one batch with one resource per process, got %d batches", len(c.batches))
	}
	ra := spans[ia].resource
	for k, want := range map[string]string{
		semconv.AttrServiceName: "alpha", semconv.AttrProcessPID: "10", semconv.AttrProcessParentPID: "1",
		semconv.AttrProcessExecutableName: "alpha", semconv.AttrProcessExecutablePath: "/usr/bin/alpha",
		semconv.AttrProcessCommandLine: "alpha --serve", semconv.AttrContainerID: "3f2a9c1e5b7d",
		semconv.AttrHostName: "testhost", "deployment.environment.name": "test",
	} {
		if got := str(t, ra, k); got != want {
			t.Errorf("alpha's resource %s = %s, want %s", k, got, want)
		}
	}
	if str(t, spans[ia2].resource, semconv.AttrProcessPID) != "10" {
		t.Error("second span of the process is not under its resource")
	}
	if got := str(t, spans[ib].resource, semconv.AttrServiceName); got != "beta" {
		t.Errorf("beta's service.name = %s", got)
	}
}

func TestServiceNameRule(t *testing.T) {
	c := newSpanCollector(t, func(o *SpanOptions) { o.Resource.ServiceName = "ipc-{comm}" })
	p := process(10, "alpha")
	p.Comm = "worker-3"
	id := c.add(op(p, flow.Pipe, flow.Send, "write", "pipe:7", "pipe:[7]", 5))
	if got := str(t, c.all()[id].resource, semconv.AttrServiceName); got != "ipc-worker-3" {
		t.Errorf("service.name = %s, want ipc-worker-3", got)
	}
	for _, bad := range []string{"", "{pid}", "svc-{exe"} {
		if ValidateServiceName(bad) == nil {
			t.Errorf("rule %q accepted", bad)
		}
	}
	if err := ValidateServiceName("{exe}@{container}"); err != nil {
		t.Error(err)
	}
}

func TestReceiveIsTheChildOfTheSendItDelivered(t *testing.T) {
	c := newSpanCollector(t, func(o *SpanOptions) { o.CausalStitching = false })
	w := c.add(op(process(10, "w"), flow.Pipe, flow.Send, "write", "pipe:7", "pipe:[7]", 5))
	r := op(process(20, "r"), flow.Pipe, flow.Receive, "read", "pipe:7", "pipe:[7]", 5)
	r.Links = []flow.OpID{w}
	rid := c.add(r)
	s := c.all()
	if s[rid].span.TraceID() != s[w].span.TraceID() || s[rid].span.ParentSpanID() != s[w].span.SpanID() {
		t.Errorf("receive not the child of its send")
	}
	if !s[w].span.ParentSpanID().IsEmpty() || s[rid].span.Links().Len() != 0 {
		t.Errorf("send has a parent, or receive has links")
	}
}

func TestReceiveOfSeveralSends(t *testing.T) {
	c := newSpanCollector(t, func(o *SpanOptions) { o.CausalStitching = true })
	// Two sends of one thread, after it received: one trace.
	wp := process(10, "w")
	in := c.add(op(wp, flow.Pipe, flow.Receive, "read", "pipe:1", "pipe:[1]", 3)) // from nobody seen: starts a trace
	w1 := c.add(op(wp, flow.Pipe, flow.Send, "write", "pipe:7", "pipe:[7]", 5))
	w2 := c.add(op(wp, flow.Pipe, flow.Send, "write", "pipe:7", "pipe:[7]", 5))
	r := op(process(20, "r"), flow.Pipe, flow.Receive, "read", "pipe:7", "pipe:[7]", 10)
	r.Links = []flow.OpID{w1, w2}
	one := c.add(r)
	// Sends of two unrelated threads (no context): two traces.
	x1 := c.add(op(process(30, "x"), flow.Pipe, flow.Send, "write", "pipe:8", "pipe:[8]", 5))
	x2 := c.add(op(process(40, "y"), flow.Pipe, flow.Send, "write", "pipe:8", "pipe:[8]", 5))
	r2 := op(process(50, "z"), flow.Pipe, flow.Receive, "read", "pipe:8", "pipe:[8]", 10)
	r2.Links = []flow.OpID{x1, x2}
	two := c.add(r2)
	s := c.all()

	if s[w1].span.TraceID() != s[in].span.TraceID() || s[w1].span.ParentSpanID() != s[in].span.SpanID() {
		t.Error("send after a receive is not its child")
	}
	got := s[one].span
	if got.TraceID() != s[in].span.TraceID() || got.ParentSpanID() != s[w2].span.SpanID() ||
		got.Links().Len() != 1 || got.Links().At(0).SpanID() != s[w1].span.SpanID() {
		t.Errorf("receive of two sends of one trace: want child of the last, linked to the first")
	}
	got = s[two].span
	if !got.ParentSpanID().IsEmpty() || got.Links().Len() != 2 ||
		got.TraceID() == s[x1].span.TraceID() || got.TraceID() == s[x2].span.TraceID() {
		t.Errorf("receive of sends of two traces: want a new trace linked to both")
	}
	for i, want := range []flow.OpID{x1, x2} {
		l := got.Links().At(i)
		if l.SpanID() != s[want].span.SpanID() || l.TraceID() != s[want].span.TraceID() {
			t.Errorf("link %d does not point at send %d", i, i+1)
		}
	}
}

// client → server → worker → server → client, twice: each request is one
// trace over three processes with the parent chain of the causality, and
// the second request is not part of the first.
func TestCausalStitchingMakesOneTracePerRequest(t *testing.T) {
	c := newSpanCollector(t, nil)
	cl, sv, wk := process(10, "client"), process(20, "server"), process(30, "worker")
	type step struct {
		who  flow.Operation
		o    flow.OpType
		mech flow.Mechanism
		ch   string
		from int // index of the step whose send this receive delivered, -1 none
	}
	var ids []flow.OpID
	request := func() []flow.OpID {
		base := len(ids)
		steps := []step{
			{cl, flow.Send, flow.UnixStream, "sock", -1},
			{sv, flow.Receive, flow.UnixStream, "sock", 0},
			{sv, flow.Send, flow.Pipe, "pipe", -1},
			{wk, flow.Receive, flow.Pipe, "pipe", 2},
			{wk, flow.Send, flow.POSIXMQ, "mq", -1},
			{sv, flow.Receive, flow.POSIXMQ, "mq", 4},
			{sv, flow.Send, flow.UnixStream, "sock", -1},
			{cl, flow.Receive, flow.UnixStream, "sock", 6},
			// An event loop's would-block read joins the current work.
			{sv, flow.Receive, flow.UnixStream, "sock", -2},
		}
		for _, st := range steps {
			o := op(st.who, st.mech, st.o, "io", st.ch, st.ch, 8)
			if st.from >= 0 {
				o.Links = []flow.OpID{ids[base+st.from]}
			}
			if st.from == -2 {
				o.Error, o.Bytes = "EAGAIN", 0
			}
			ids = append(ids, c.add(o))
		}
		return ids[base:]
	}
	first, second := request(), request()
	s := c.all()
	for n, req := range [][]flow.OpID{first, second} {
		trace := s[req[0]].span.TraceID()
		services := map[string]bool{}
		for i, id := range req {
			sp := s[id].span
			if sp.TraceID() != trace {
				t.Errorf("request %d step %d (%s) is in another trace", n+1, i, sp.Name())
			}
			services[str(t, s[id].resource, semconv.AttrServiceName)] = true
		}
		if len(services) != 3 {
			t.Errorf("request %d spans %d services, want client, server and worker", n+1, len(services))
		}
		// The parent chain: each step's parent is the step before it
		// (the send a receive delivered, the receive a send follows).
		for i := 1; i < 8; i++ {
			if s[req[i]].span.ParentSpanID() != s[req[i-1]].span.SpanID() {
				t.Errorf("request %d: step %d's parent is not step %d", n+1, i, i-1)
			}
		}
		if !s[req[0]].span.ParentSpanID().IsEmpty() {
			t.Errorf("request %d's first send has a parent: the client's previous answer leaked into it", n+1)
		}
		if s[req[8]].span.Status().Code() == ptrace.StatusCodeError {
			t.Error("EAGAIN marked as an error")
		}
	}
	if s[first[0]].span.TraceID() == s[second[0]].span.TraceID() {
		t.Error("two requests share a trace")
	}
}

func TestWithoutStitchingEverySendStartsATrace(t *testing.T) {
	c := newSpanCollector(t, func(o *SpanOptions) { o.CausalStitching = false })
	sv := process(20, "server")
	in := c.add(op(sv, flow.UnixStream, flow.Receive, "read", "sock", "sock", 8))
	out := c.add(op(sv, flow.Pipe, flow.Send, "write", "pipe", "pipe", 8))
	s := c.all()
	if s[in].span.TraceID() == s[out].span.TraceID() || !s[out].span.ParentSpanID().IsEmpty() {
		t.Error("send stitched to the receive with stitching off")
	}
}

func TestErrorsPayloadAndUnknownLinks(t *testing.T) {
	c := newSpanCollector(t, nil)
	p := process(10, "alpha")
	failed := op(p, flow.Pipe, flow.Send, "write", "pipe:7", "pipe:[7]", 0)
	failed.Error = "EPIPE"
	fid := c.add(failed)
	wb := op(p, flow.Pipe, flow.Receive, "read", "pipe:7", "pipe:[7]", 0)
	wb.Error = "EAGAIN"
	wid := c.add(wb)
	withPayload := op(p, flow.Pipe, flow.Send, "write", "pipe:7", "pipe:[7]", 11)
	withPayload.Payload, withPayload.PayloadCaptured, withPayload.PayloadTruncated = []byte("hello"), true, true
	pid := c.add(withPayload)
	orphan := op(process(20, "beta"), flow.Pipe, flow.Receive, "read", "pipe:7", "pipe:[7]", 5)
	orphan.Links = []flow.OpID{999}
	oid := c.add(orphan)
	s := c.all()

	if sp := s[fid].span; sp.Status().Code() != ptrace.StatusCodeError || sp.Status().Message() != "EPIPE" ||
		str(t, sp.Attributes(), semconv.AttrErrorType) != "EPIPE" {
		t.Errorf("failed send: status %v %q, error.type %s", sp.Status().Code(), sp.Status().Message(), str(t, sp.Attributes(), semconv.AttrErrorType))
	}
	if sp := s[wid].span; sp.Status().Code() != ptrace.StatusCodeUnset || str(t, sp.Attributes(), semconv.AttrErrorType) != "<absent>" {
		t.Error("EAGAIN reported as an error")
	}
	sp := s[pid].span
	if sp.Events().Len() != 1 || sp.Events().At(0).Name() != semconv.EventIPCPayload ||
		str(t, sp.Events().At(0).Attributes(), semconv.AttrIPCPayloadContent) != "aGVsbG8=" {
		t.Error("payload not in an ipc.payload event")
	}
	if str(t, sp.Attributes(), semconv.AttrIPCPayloadCapturedSize) != "5" || str(t, sp.Attributes(), semconv.AttrIPCPayloadTruncated) != "true" {
		t.Error("payload size attributes wrong")
	}
	if _, ok := sp.Attributes().Get(semconv.AttrIPCPayloadContent); ok {
		t.Error("payload bytes in a span attribute")
	}
	if s[oid].span.Links().Len() != 0 || !s[oid].span.ParentSpanID().IsEmpty() || c.spans.Stats().UnknownLinks != 1 {
		t.Error("a link to an unknown send was not left out and counted")
	}
}

func TestBatchesBySizeAndTime(t *testing.T) {
	c := newSpanCollector(t, func(o *SpanOptions) { o.BatchSize = 3; o.BatchTimeout = time.Second })
	p := process(10, "alpha")
	for range 4 {
		c.add(op(p, flow.Pipe, flow.Send, "write", "pipe:7", "pipe:[7]", 5))
	}
	if len(c.batches) != 1 || c.batches[0].SpanCount() != 3 {
		t.Fatalf("after 4 spans with batches of 3: %d batches", len(c.batches))
	}
	c.spans.Tick(time.Now())
	if len(c.batches) != 1 {
		t.Fatal("a young batch went out")
	}
	c.spans.Tick(time.Now().Add(2 * time.Second))
	if len(c.batches) != 2 || c.batches[1].SpanCount() != 1 {
		t.Fatal("a batch older than the timeout did not go out")
	}
	if st := c.spans.Stats(); st.Spans != 4 || st.Batches != 2 {
		t.Errorf("stats %+v", st)
	}
}
