package exporter

import (
	"net/netip"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/icptrack/icptrack/flow"
)

// The standalone agent's spans are protobuf written directly, the
// receiver's are pdata: for the same operations both must say exactly the
// same thing. Decoding the direct encoding with pdata's own decoder, and
// comparing both as OTLP JSON, checks every field either way.
func TestEncodedSpansAreThePdataSpans(t *testing.T) {
	a, b, c := process(10, "alpha"), process(20, "beta"), process(30, "gamma")
	a.Cmdline, a.ContainerID = "alpha --serve", "0123456789ab"
	var ops []flow.Operation
	add := func(o flow.Operation) *flow.Operation {
		o.ID = flow.OpID(len(ops) + 1)
		o.Time = time.Unix(1_700_000_000, int64(len(ops))*1000)
		o.Duration = time.Duration(len(ops)+1) * time.Microsecond
		ops = append(ops, o)
		return &ops[len(ops)-1]
	}
	add(op(a, flow.Pipe, flow.Send, "write", "pipe:7", "pipe:[7]", 5))
	add(op(c, flow.Pipe, flow.Send, "write", "pipe:7", "pipe:[7]", 7))
	r := add(op(b, flow.Pipe, flow.Receive, "read", "pipe:7", "pipe:[7]", 12))
	r.Links, r.Peer = []flow.OpID{1, 2}, flow.Peer{PID: 10, Comm: "alpha"}
	run := add(op(a, flow.UnixStream, flow.Send, "write", "unix:1-2", "/run/app.sock", 6400))
	run.Count, run.Busy = 100, 90*time.Microsecond
	mq := add(op(a, flow.POSIXMQ, flow.Send, "mq_timedsend", "posix_mq:5", "/orders", 12))
	mq.QueueDepth, mq.MessageType, mq.HasMessageType = 3, 7, true
	tcp := add(op(b, flow.TCP, flow.Receive, "recvfrom", "tcp:1:127.0.0.1:5000-127.0.0.1:41234", "127.0.0.1:5000->127.0.0.1:41234", 64))
	tcp.Local, tcp.Remote = netip.MustParseAddrPort("127.0.0.1:5000"), netip.MustParseAddrPort("[::1]:41234")
	failed := add(op(c, flow.Pipe, flow.Send, "write", "pipe:8", "pipe:[8]", 0))
	failed.Error = "EPIPE"
	payload := add(op(a, flow.UnixDgram, flow.Send, "sendto", "unix:3", "@bus", 9))
	payload.Payload, payload.PayloadCaptured, payload.PayloadTruncated = []byte("GET /\x00\xff"), true, true
	sig := add(op(a, flow.Signal, flow.Send, "kill", "signal:10:20:15", "SIGTERM", 0))
	sig.Signal, sig.Peer = "SIGTERM", flow.Peer{PID: 20, Comm: "beta"}
	add(op(b, flow.SysVShm, flow.Attach, "shmat", "sysv_shm:1:5", "key 0x1234", 4096))
	add(op(b, flow.Memfd, flow.Create, "memfd_create", "memfd:1:9", "memfd:cache", 0))

	opts := DefaultSpanOptions()
	opts.Seed = 42
	opts.Resource.Attributes = map[string]string{"deployment.environment.name": "test"}
	var viaPdata []ptrace.Traces
	var viaProto [][]byte
	counts := 0
	pd := NewSpans(opts, func(td ptrace.Traces) { viaPdata = append(viaPdata, td) })
	pb := NewEncodedSpans(opts, func(body []byte, n int) { viaProto, counts = append(viaProto, body), counts+n }, nil)
	for i := range ops {
		pd.Add(&ops[i])
		pb.Add(&ops[i])
	}
	pd.Flush()
	pb.Flush()
	if len(viaPdata) != 1 || len(viaProto) != 1 || counts != len(ops) {
		t.Fatalf("%d pdata batches, %d encoded batches of %d spans; want one each of %d", len(viaPdata), len(viaProto), counts, len(ops))
	}
	decoded, err := (&ptrace.ProtoUnmarshaler{}).UnmarshalTraces(viaProto[0])
	if err != nil {
		t.Fatalf("the encoded request does not decode: %v", err)
	}
	if n := decoded.SpanCount(); n != len(ops) {
		t.Fatalf("%d spans decoded, want %d", n, len(ops))
	}
	want, err := (&ptrace.JSONMarshaler{}).MarshalTraces(viaPdata[0])
	if err != nil {
		t.Fatal(err)
	}
	got, err := (&ptrace.JSONMarshaler{}).MarshalTraces(decoded)
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != string(want) {
		t.Errorf("encoded spans differ from pdata's:\nencoded %s\npdata   %s", got, want)
	}
}
