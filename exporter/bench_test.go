package exporter

import (
	"context"
	"io"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"

	"github.com/icptrack/icptrack/flow"
)

// workload is a request/response pattern over three processes, as the
// demo makes it: a unix socket, a pipe and a POSIX queue per request.
type workload struct {
	ops  []flow.Operation
	next flow.OpID
	now  time.Time
}

func newWorkload() *workload {
	w := &workload{now: time.Now()}
	cl, sv, wk := process(10, "client"), process(20, "server"), process(30, "worker")
	step := func(p flow.Operation, mech flow.Mechanism, o flow.OpType, syscall, ch, ep string) {
		x := op(p, mech, o, syscall, ch, ep, 64)
		x.Duration = 4 * time.Microsecond
		x.QueueDepth = -1
		w.ops = append(w.ops, x)
	}
	step(cl, flow.UnixStream, flow.Send, "write", "unix:1-2", "/run/demo.sock")
	step(sv, flow.UnixStream, flow.Receive, "read", "unix:1-2", "/run/demo.sock")
	step(sv, flow.Pipe, flow.Send, "write", "pipe:7", "pipe:[7]")
	step(wk, flow.Pipe, flow.Receive, "read", "pipe:7", "pipe:[7]")
	step(wk, flow.POSIXMQ, flow.Send, "mq_timedsend", "posix_mq:1:9", "/demo")
	step(sv, flow.POSIXMQ, flow.Receive, "mq_timedreceive", "posix_mq:1:9", "/demo")
	step(sv, flow.UnixStream, flow.Send, "write", "unix:1-2", "/run/demo.sock")
	step(cl, flow.UnixStream, flow.Receive, "read", "unix:1-2", "/run/demo.sock")
	return w
}

// feed times sink over b.N operations of the endless workload.
func feed(b *testing.B, sink func(*flow.Operation)) {
	w := newWorkload()
	var o flow.Operation
	var links [1]flow.OpID
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		w.op(i, &o, &links)
		sink(&o)
	}
}

// op returns the i-th operation of the endless workload, ids and links
// filled in as the correlator would.
func (w *workload) op(i int, o *flow.Operation, links *[1]flow.OpID) {
	*o = w.ops[i%len(w.ops)]
	w.next++
	o.ID = w.next
	w.now = w.now.Add(time.Microsecond)
	o.Time = w.now
	if o.Op == flow.Receive {
		links[0] = w.next - 1
		o.Links = links[:]
	}
}

// BenchmarkSpansOverOTLP maps operations to spans and exports them over
// OTLP/gRPC to a real OTLP receiver in this process. The producer waits
// for room in the export queue instead of dropping, so ops/s is the rate
// the whole path sustains; every span must arrive. Run with -cpu 1 for the
// per-core figure: the receiver then shares the one core too.
//
// "encoded" is the standalone agent's path (NewEncodedSpans: protobuf
// written directly), "pdata" the Collector receiver's (pdata, marshalled
// to send).
func BenchmarkSpansOverOTLP(b *testing.B) {
	b.Run("encoded", func(b *testing.B) {
		benchmarkSpansOverOTLP(b, func(s *TraceSender) *Spans {
			return NewEncodedSpans(DefaultSpanOptions(), func(body []byte, n int) {
				s.sendWait(spanPayload{body: body, spans: n})
			}, s.Buffer)
		})
	})
	b.Run("pdata", func(b *testing.B) {
		benchmarkSpansOverOTLP(b, func(s *TraceSender) *Spans {
			return NewSpans(DefaultSpanOptions(), func(td ptrace.Traces) { s.sendWait(pdataPayload(td)) })
		})
	})
}

func benchmarkSpansOverOTLP(b *testing.B, mapper func(*TraceSender) *Spans) {
	srv := &otlpServer{}
	endpoint := startGRPC(b, srv)
	s, err := NewTraceSender(OTLPConfig{Endpoint: endpoint, Protocol: ProtocolGRPC, Compression: "none"}, nil, nil)
	if err != nil {
		b.Fatal(err)
	}
	spans := mapper(s)
	feed(b, spans.Add)
	spans.Flush()
	if err := s.Shutdown(context.Background()); err != nil {
		b.Fatal(err)
	}
	b.StopTimer()
	st := s.Stats()
	if st.DroppedSpans != 0 || st.SentSpans != uint64(b.N) || srv.spans.Load() != int64(b.N) {
		b.Fatalf("%d operations: %+v, receiver got %d", b.N, st, srv.spans.Load())
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "ops/s")
}

// BenchmarkMetricsRecord is the metrics' cost per operation.
func BenchmarkMetricsRecord(b *testing.B) {
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(sdkmetric.NewManualReader()))
	defer mp.Shutdown(context.Background())
	m, err := NewMetrics(mp, nil)
	if err != nil {
		b.Fatal(err)
	}
	feed(b, m.Record)
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "ops/s")
}

// BenchmarkEventLog is the event log's cost per operation.
func BenchmarkEventLog(b *testing.B) {
	l := NewEventLog(io.Discard)
	feed(b, l.Write)
	if err := l.Flush(); err != nil {
		b.Fatal(err)
	}
}

// BenchmarkSummary is the terminal summary's cost per operation.
func BenchmarkSummary(b *testing.B) {
	s := NewSummary()
	feed(b, s.Add)
}

// BenchmarkSpansMapping is the span mapper alone: operations to pdata
// spans in batches, handed to a sink that drops them. With
// BenchmarkSpansMarshal it splits BenchmarkSpansOverOTLP's cost.
func BenchmarkSpansMapping(b *testing.B) {
	benchmarkMapping(b, DefaultSpanOptions())
}

// BenchmarkSpansEncoded is the standalone agent's mapper: operations
// straight to the protobuf an OTLP request is, per span: what
// BenchmarkSpansMapping and BenchmarkSpansMarshal together cost the pdata
// way.
func BenchmarkSpansEncoded(b *testing.B) {
	var free []byte
	spans := NewEncodedSpans(DefaultSpanOptions(), func(b []byte, _ int) { free = b }, func(n int) []byte {
		if cap(free) >= n {
			return free[:0]
		}
		return make([]byte, 0, n)
	})
	feed(b, spans.Add)
	spans.Flush()
}

// BenchmarkSpansSampledOut is the mapper's cost per operation when one
// trace in a hundred is exported: what --max-spans-per-second costs
// under a flood.
func BenchmarkSpansSampledOut(b *testing.B) {
	opts := DefaultSpanOptions()
	opts.SampleRatio = 0.01
	benchmarkMapping(b, opts)
}

func benchmarkMapping(b *testing.B, opts SpanOptions) {
	spans := NewSpans(opts, func(ptrace.Traces) {})
	feed(b, spans.Add)
	spans.Flush()
}

// BenchmarkSpansMarshal is encoding a batch of mapped spans as an OTLP
// request, per span.
func BenchmarkSpansMarshal(b *testing.B) {
	var batches []ptrace.Traces
	spans := NewSpans(DefaultSpanOptions(), func(td ptrace.Traces) { batches = append(batches, td) })
	w := newWorkload()
	var o flow.Operation
	var links [1]flow.OpID
	for i := 0; i < 4096; i++ {
		w.op(i, &o, &links)
		spans.Add(&o)
	}
	spans.Flush()
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i += batches[0].SpanCount() {
		if _, err := ptraceotlp.NewExportRequestFromTraces(batches[0]).MarshalProto(); err != nil {
			b.Fatal(err)
		}
	}
}
