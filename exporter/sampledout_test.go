package exporter

import (
	"bytes"
	"context"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/ptrace"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"

	"github.com/icptrack/icptrack/flow"
	"github.com/icptrack/icptrack/semconv"
)

// Sampling applies to spans only: with one trace in ten exported, the
// event log and the message counters still count every operation, and
// icptrack.spans.sampled_out counts what made no span.
func TestSamplingLeavesMetricsAndTheEventLogExact(t *testing.T) {
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	t.Cleanup(func() { _ = mp.Shutdown(context.Background()) })
	m, err := NewMetrics(mp, nil)
	if err != nil {
		t.Fatal(err)
	}
	var exported int
	opts := DefaultSpanOptions()
	opts.SampleRatio, opts.Seed = 0.1, 7
	spans := NewSpans(opts, func(td ptrace.Traces) { exported += td.SpanCount() })
	var log bytes.Buffer
	p := NewPipeline(Outputs{EventLog: &log, Spans: spans, Metrics: m})
	if _, err := ObserveSampledOut(mp, spans.SampledOut); err != nil {
		t.Fatal(err)
	}

	const n = 2000
	now := time.Now()
	var off uint64
	for i := range n {
		// Each message a separate request: a pipe write and its read.
		for _, e := range []flow.Event{
			{PID: uint32(100 + i), TID: uint32(100 + i), Comm: "w", Mechanism: flow.Pipe, Op: flow.Send, Ino: 7, Dev: 1, Offset: off, Result: 10, FD: -1},
			{PID: 2, TID: 2, Comm: "r", Mechanism: flow.Pipe, Op: flow.Receive, Ino: 7, Dev: 1, Offset: off, Result: 10, FD: -1},
		} {
			e.Start, e.End = now, now
			p.Event(&e)
		}
		off += 10
	}
	if err := p.Finish(); err != nil {
		t.Fatal(err)
	}

	if lines := bytes.Count(log.Bytes(), []byte("\n")); lines != 2*n {
		t.Errorf("event log: %d lines, want %d", lines, 2*n)
	}
	got := collect(t, reader)
	if s := sums(t, got[semconv.MetricIPCSentMessages]); s["[ipc.mechanism=pipe process.executable.name=w]"] != n {
		t.Errorf("%s: %v, want %d", semconv.MetricIPCSentMessages, s, n)
	}
	st := spans.Stats()
	if int(st.Spans) != exported || st.Spans+st.SampledOut != 2*n {
		t.Fatalf("spans %+v, %d exported, for %d operations", st, exported, 2*n)
	}
	if exported == 0 || exported > n/2 {
		t.Errorf("%d of %d spans exported at ratio 0.1", exported, 2*n)
	}
	if exported%2 != 0 {
		t.Errorf("%d spans exported: a write went without its read, or a read without its write", exported)
	}
	if so := sums(t, got[semconv.MetricIcptrackSpansSampledOut]); so["[]"] != int64(st.SampledOut) {
		t.Errorf("%s %v, want %d", semconv.MetricIcptrackSpansSampledOut, so, st.SampledOut)
	}
}
