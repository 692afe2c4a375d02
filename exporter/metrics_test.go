package exporter

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/icptrack/icptrack/flow"
	"github.com/icptrack/icptrack/semconv"
)

func newTestMetrics(t *testing.T, self func() SelfStats) (*Metrics, *sdkmetric.ManualReader) {
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	t.Cleanup(func() { _ = mp.Shutdown(context.Background()) })
	m, err := NewMetrics(mp, self)
	if err != nil {
		t.Fatal(err)
	}
	return m, reader
}

func collect(t *testing.T, r *sdkmetric.ManualReader) map[string]metricdata.Metrics {
	t.Helper()
	var rm metricdata.ResourceMetrics
	if err := r.Collect(context.Background(), &rm); err != nil {
		t.Fatal(err)
	}
	out := map[string]metricdata.Metrics{}
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			out[m.Name] = m
		}
	}
	return out
}

func attrsString(s attribute.Set) string {
	var parts []string
	for _, kv := range s.ToSlice() {
		parts = append(parts, string(kv.Key)+"="+kv.Value.String())
	}
	slices.Sort(parts)
	return fmt.Sprint(parts)
}

func sums(t *testing.T, m metricdata.Metrics) map[string]int64 {
	t.Helper()
	out := map[string]int64{}
	switch d := m.Data.(type) {
	case metricdata.Sum[int64]:
		for _, p := range d.DataPoints {
			out[attrsString(p.Attributes)] = p.Value
		}
	case metricdata.Gauge[int64]:
		for _, p := range d.DataPoints {
			out[attrsString(p.Attributes)] = p.Value
		}
	default:
		t.Fatalf("%s is a %T", m.Name, m.Data)
	}
	return out
}

func TestMetricsOfOperations(t *testing.T) {
	m, reader := newTestMetrics(t, nil)
	a, b := process(10, "alpha"), process(20, "beta")
	send := op(a, flow.Pipe, flow.Send, "write", "pipe:7", "pipe:[7]", 100)
	send.Duration = 3 * time.Microsecond
	for range 3 {
		m.Record(&send)
	}
	recv := op(b, flow.Pipe, flow.Receive, "read", "pipe:7", "pipe:[7]", 300)
	recv.Duration = 2 * time.Millisecond
	m.Record(&recv)
	eof := op(b, flow.Pipe, flow.Receive, "read", "pipe:7", "pipe:[7]", 0)
	m.Record(&eof)
	failed := op(a, flow.Pipe, flow.Send, "write", "pipe:7", "pipe:[7]", 0)
	failed.Error = "EPIPE"
	m.Record(&failed)
	wouldBlock := op(b, flow.Pipe, flow.Receive, "read", "pipe:7", "pipe:[7]", 0)
	wouldBlock.Error = "EAGAIN"
	m.Record(&wouldBlock)
	emptyMsg := op(b, flow.UnixDgram, flow.Receive, "recv", "unix:1", "socket:[1]", 0)
	m.Record(&emptyMsg)

	got := collect(t, reader)
	if _, ok := got[semconv.MetricIPCChannelBacklog]; ok {
		t.Error("backlog reported before any channel was observed")
	}
	if s := sums(t, got[semconv.MetricIPCSentMessages]); s["[ipc.mechanism=pipe process.executable.name=alpha]"] != 3 || len(s) != 1 {
		t.Errorf("sent messages %v: want 3 for alpha's pipe, failed sends not counted", s)
	}
	if s := sums(t, got[semconv.MetricIPCReceivedMessages]); s["[ipc.mechanism=pipe process.executable.name=beta]"] != 1 ||
		s["[ipc.mechanism=unix_dgram process.executable.name=beta]"] != 1 {
		t.Errorf("received messages %v: want the read (not the end of file) and the empty datagram", s)
	}
	io := sums(t, got[semconv.MetricIPCIO])
	if io["[ipc.direction=send ipc.mechanism=pipe process.executable.name=alpha]"] != 300 ||
		io["[ipc.direction=receive ipc.mechanism=pipe process.executable.name=beta]"] != 300 {
		t.Errorf("ipc.io %v", io)
	}
	if got[semconv.MetricIPCIO].Unit != "By" || got[semconv.MetricIPCOperationDuration].Unit != "s" {
		t.Error("units are not By and s")
	}

	h, ok := got[semconv.MetricIPCOperationDuration].Data.(metricdata.Histogram[float64])
	if !ok {
		t.Fatalf("duration is %T", got[semconv.MetricIPCOperationDuration].Data)
	}
	counts := map[string]uint64{}
	for _, p := range h.DataPoints {
		counts[attrsString(p.Attributes)] = p.Count
		if !slices.Equal(p.Bounds, DurationBuckets) {
			t.Errorf("bounds %v", p.Bounds)
		}
		for _, kv := range p.Attributes.ToSlice() {
			switch kv.Key {
			case semconv.AttrProcessPID, semconv.AttrIPCChannelID, semconv.AttrIPCThreadTID:
				t.Errorf("high-cardinality %s on a metric", kv.Key)
			}
		}
	}
	want := map[string]uint64{
		"[ipc.mechanism=pipe ipc.operation.type=send process.executable.name=alpha]":                  3,
		"[error.type=EPIPE ipc.mechanism=pipe ipc.operation.type=send process.executable.name=alpha]": 1,
		"[ipc.mechanism=pipe ipc.operation.type=receive process.executable.name=beta]":                3, // EAGAIN is not an error
		"[ipc.mechanism=unix_dgram ipc.operation.type=receive process.executable.name=beta]":          1,
	}
	for k, n := range want {
		if counts[k] != n {
			t.Errorf("duration count %s = %d, want %d (all: %v)", k, counts[k], n, counts)
		}
	}
}

// However many executables there are, metrics keep a bounded number of
// series.
func TestMetricsCardinalityIsBounded(t *testing.T) {
	m, reader := newTestMetrics(t, nil)
	for i := range MaxExecutables + 50 {
		o := op(process(uint32(100+i), fmt.Sprintf("exe%d", i)), flow.Pipe, flow.Send, "write", fmt.Sprintf("pipe:%d", i), "", 1)
		m.Record(&o)
	}
	s := sums(t, collect(t, reader)[semconv.MetricIPCSentMessages])
	if len(s) != MaxExecutables+1 || s["[ipc.mechanism=pipe process.executable.name="+OtherExecutable+"]"] != 50 {
		t.Errorf("%d series, other = %d; want %d and 50", len(s), s["[ipc.mechanism=pipe process.executable.name=_other]"], MaxExecutables+1)
	}
}

// Backlog and attachments come from the correlator's channels; the
// self-metrics from the callback.
func TestObservedMetrics(t *testing.T) {
	m, reader := newTestMetrics(t, func() SelfStats { return SelfStats{Processed: 42, RingBufferDropped: 2, ExportDropped: 5} })
	c := flow.New(func(*flow.Operation) {}, flow.DefaultOptions())
	now := time.Now()
	ev := func(e flow.Event) {
		e.Start, e.End = now, now
		c.Add(&e)
	}
	// 100 bytes written to a pipe, 40 read: 60 wait.
	ev(flow.Event{PID: 1, TID: 1, Comm: "w", Mechanism: flow.Pipe, Op: flow.Send, Ino: 7, Dev: 1, Offset: 0, Result: 100, FD: -1})
	ev(flow.Event{PID: 2, TID: 2, Comm: "r", Mechanism: flow.Pipe, Op: flow.Receive, Ino: 7, Dev: 1, Offset: 0, Result: 40, FD: -1})
	// A pipe nobody traced reads from is not a backlog.
	ev(flow.Event{PID: 1, TID: 1, Comm: "w", Mechanism: flow.Pipe, Op: flow.Send, Ino: 8, Dev: 1, Offset: 0, Result: 500, FD: -1})
	// Two processes attach one SysV segment.
	for _, pid := range []uint32{1, 2} {
		ev(flow.Event{PID: pid, TID: pid, Mechanism: flow.SysVShm, Op: flow.Attach, Syscall: "shmat", Result: 0x7000, FD: -1,
			IPC: flow.IPC{ID: 4, Namespace: 1, Address: 0x7000, Size: 4096}})
	}
	c.Flush()
	m.Observe(c)

	got := collect(t, reader)
	if b := sums(t, got[semconv.MetricIPCChannelBacklog]); b["[ipc.mechanism=pipe]"] != 60 {
		t.Errorf("backlog %v, want 60 bytes in pipes", b)
	}
	if a := sums(t, got[semconv.MetricIPCShmAttachments]); a["[ipc.mechanism=sysv_shm]"] != 2 {
		t.Errorf("attachments %v, want 2 for sysv_shm", a)
	}
	if p := sums(t, got[semconv.MetricIcptrackEventsProcessed]); p["[]"] != 42 {
		t.Errorf("processed %v", p)
	}
	d := sums(t, got[semconv.MetricIcptrackEventsDropped])
	if d["[ipc.drop.reason=ring_buffer]"] != 2 || d["[ipc.drop.reason=export_queue]"] != 5 {
		t.Errorf("dropped %v", d)
	}
}

// What the receiver hands a Collector pipeline: the same metrics, as pdata.
func TestMetricsToPdata(t *testing.T) {
	m, reader := newTestMetrics(t, func() SelfStats { return SelfStats{Processed: 7} })
	send := op(process(10, "alpha"), flow.Pipe, flow.Send, "write", "pipe:7", "pipe:[7]", 100)
	send.Duration = 3 * time.Microsecond
	m.Record(&send)
	m.Record(&send)
	m.Observe(flow.New(func(*flow.Operation) {}, flow.DefaultOptions()))
	var rm metricdata.ResourceMetrics
	if err := reader.Collect(context.Background(), &rm); err != nil {
		t.Fatal(err)
	}
	md := MetricsToPdata(&rm)
	found := map[string]pmetric.Metric{}
	sms := md.ResourceMetrics().At(0).ScopeMetrics()
	for i := 0; i < sms.Len(); i++ {
		if sms.At(i).Scope().Name() != ScopeName {
			t.Errorf("scope %q", sms.At(i).Scope().Name())
		}
		ms := sms.At(i).Metrics()
		for j := 0; j < ms.Len(); j++ {
			found[ms.At(j).Name()] = ms.At(j)
		}
	}
	sent := found[semconv.MetricIPCSentMessages]
	if sent.Type() != pmetric.MetricTypeSum || !sent.Sum().IsMonotonic() || sent.Sum().DataPoints().At(0).IntValue() != 2 ||
		sent.Sum().AggregationTemporality() != pmetric.AggregationTemporalityCumulative {
		t.Errorf("ipc.sent.messages: %v", sent.Type())
	}
	if v, _ := sent.Sum().DataPoints().At(0).Attributes().Get(semconv.AttrProcessExecutableName); v.Str() != "alpha" {
		t.Errorf("attribute %v", v)
	}
	dur := found[semconv.MetricIPCOperationDuration]
	if dur.Type() != pmetric.MetricTypeHistogram || dur.Unit() != "s" {
		t.Fatalf("ipc.operation.duration: %v %q", dur.Type(), dur.Unit())
	}
	p := dur.Histogram().DataPoints().At(0)
	if p.Count() != 2 || p.ExplicitBounds().Len() != len(DurationBuckets) || p.BucketCounts().Len() != len(DurationBuckets)+1 ||
		p.BucketCounts().At(2) != 2 || p.Min() != 3e-6 {
		t.Errorf("histogram point: count %d bounds %d buckets %v min %v", p.Count(), p.ExplicitBounds().Len(), p.BucketCounts().AsRaw(), p.Min())
	}
	if backlog := found[semconv.MetricIPCChannelBacklog]; backlog.Type() != pmetric.MetricTypeGauge {
		t.Errorf("ipc.channel.backlog is %v", backlog.Type())
	}
	if shm := found[semconv.MetricIPCShmAttachments]; shm.Type() != pmetric.MetricTypeSum || shm.Sum().IsMonotonic() {
		t.Errorf("ipc.shm.attachments is not an updowncounter")
	}
	if p := found[semconv.MetricIcptrackEventsProcessed]; p.Sum().DataPoints().At(0).IntValue() != 7 {
		t.Errorf("icptrack.events.processed %v", p.Sum().DataPoints().At(0).IntValue())
	}
}

// A coalesced record counts its operations: messages, bytes and the
// duration histogram are what they would be with a record per operation,
// each operation at the run's mean time in the call.
func TestMetricsCountCoalescedOperations(t *testing.T) {
	m, reader := newTestMetrics(t, nil)
	a := process(10, "alpha")
	run := op(a, flow.Pipe, flow.Send, "write", "pipe:7", "pipe:[7]", 640)
	run.Count, run.Busy, run.Duration = 10, 30*time.Microsecond, 900*time.Microsecond
	m.Record(&run)
	single := op(a, flow.Pipe, flow.Send, "write", "pipe:7", "pipe:[7]", 64)
	single.Count, single.Duration = 1, 3*time.Microsecond
	m.Record(&single)

	got := collect(t, reader)
	if s := sums(t, got[semconv.MetricIPCSentMessages]); s["[ipc.mechanism=pipe process.executable.name=alpha]"] != 11 {
		t.Errorf("sent messages %v: want 11, the run's 10 and one more", s)
	}
	if io := sums(t, got[semconv.MetricIPCIO]); io["[ipc.direction=send ipc.mechanism=pipe process.executable.name=alpha]"] != 704 {
		t.Errorf("ipc.io %v: want 704 bytes", io)
	}
	h := got[semconv.MetricIPCOperationDuration].Data.(metricdata.Histogram[float64])
	if len(h.DataPoints) != 1 {
		t.Fatalf("%d duration series, want 1", len(h.DataPoints))
	}
	p := h.DataPoints[0]
	if p.Count != 11 || p.Sum < 32.9e-6 || p.Sum > 33.1e-6 {
		t.Errorf("duration: %d operations in %gs, want 11 in 33µs (3µs each)", p.Count, p.Sum)
	}
}
