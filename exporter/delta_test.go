package exporter

import (
	"context"
	"os"
	"sync/atomic"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	"go.opentelemetry.io/otel/sdk/resource"

	"github.com/icptrack/icptrack/flow"
	"github.com/icptrack/icptrack/internal/otlptest"
	"github.com/icptrack/icptrack/semconv"
)

const temporalityVar = "OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE"

// flush collects and exports to the OTLP output in use now.
func flush(t *testing.T, mp *MeterProvider) {
	t.Helper()
	if err := export(mp); err != nil {
		t.Fatalf("export: %v", err)
	}
}

func export(mp *MeterProvider) error {
	mp.mu.Lock()
	out := mp.out
	mp.mu.Unlock()
	return out.provider.ForceFlush(context.Background())
}

// otlpOutputs send metrics to r, and only when flushed.
func otlpOutputs(r *otlptest.Receiver) MetricOutputs {
	return MetricOutputs{OTLP: OTLPConfig{Endpoint: r.URL, Protocol: ProtocolHTTP}, Interval: time.Hour, NoHostName: true}
}

var sentByW = []attribute.KeyValue{attribute.String(semconv.AttrIPCMechanism, "pipe"), attribute.String(semconv.AttrProcessExecutableName, "w")}

// With the delta preference, each export carries what was counted since
// the one before: the message counter's deltas add up to the messages
// sent, each starting where the one before ended; the duration
// histogram's counts, sums and buckets likewise, with a minimum and
// maximum only on its first delta.
func TestOTLPDeltasAddUpToTheTotals(t *testing.T) {
	t.Setenv(temporalityVar, "delta")
	r := otlptest.Start(t)
	began := time.Now()
	mp, m := newTestMeterProvider(t, otlpOutputs(r))
	sends(m, 30)
	flush(t, mp)
	sends(m, 12)
	flush(t, mp)
	flush(t, mp)
	sends(m, 1)
	if err := mp.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}

	sent := r.Points(semconv.MetricIPCSentMessages, sentByW...)
	if len(sent) != 4 || sent[0].Value != 30 || sent[1].Value != 12 || sent[2].Value != 0 || sent[3].Value != 1 {
		t.Errorf("ipc.sent.messages deltas %+v, want 30, 12, 0 and 1", sent)
	}
	if b := otlptest.ChainBreaks(sent, began); len(b) > 0 {
		t.Errorf("ipc.sent.messages: %v", b)
	}
	bytes := r.Points(semconv.MetricIPCIO, sentByW...)
	if got := otlptest.Total(bytes); got != 43*10 {
		t.Errorf("ipc.io deltas add up to %v, want 430", got)
	}

	hist := r.Points(semconv.MetricIPCOperationDuration, sentByW...)
	if len(hist) != 4 || otlptest.Total(hist) != 43 {
		t.Fatalf("ipc.operation.duration deltas %+v, want 4 adding up to 43 operations", hist)
	}
	if b := otlptest.ChainBreaks(hist, began); len(b) > 0 {
		t.Errorf("ipc.operation.duration: %v", b)
	}
	for i, want := range []uint64{30, 12, 0, 1} {
		var n uint64
		for _, c := range hist[i].Buckets {
			n += c
		}
		if hist[i].Value != float64(want) || n != want || hist[i].Sum != 0 {
			t.Errorf("histogram delta %d: count %v, buckets %v, sum %v; want %d in the buckets, sum 0", i, hist[i].Value, hist[i].Buckets, hist[i].Sum, want)
		}
		if hist[i].HasMinMax != (i == 0) {
			t.Errorf("histogram delta %d has a minimum and maximum: %v (only the first, a whole, can)", i, hist[i].HasMinMax)
		}
	}
}

// The lowmemory preference makes deltas of counters and histograms only:
// an observable counter (the message counter) and an up-down counter stay
// cumulative, a synchronous counter is sent as deltas.
func TestOTLPLowMemoryDeltasOnlyForCountersAndHistograms(t *testing.T) {
	t.Setenv(temporalityVar, "lowmemory")
	r := otlptest.Start(t)
	mp, m := newTestMeterProvider(t, otlpOutputs(r))
	meter := mp.Meter("test")
	counter, err := meter.Int64Counter("test.counter")
	if err != nil {
		t.Fatal(err)
	}
	updown, err := meter.Int64UpDownCounter("test.updown")
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	sends(m, 5)
	counter.Add(ctx, 5)
	updown.Add(ctx, 5)
	flush(t, mp)
	sends(m, 2)
	counter.Add(ctx, 2)
	updown.Add(ctx, -3)
	flush(t, mp)

	for _, c := range []struct {
		name          string
		delta         bool
		first, second float64
	}{
		{semconv.MetricIPCSentMessages, false, 5, 7},
		{semconv.MetricIPCOperationDuration, true, 5, 2},
		{"test.counter", true, 5, 2},
		{"test.updown", false, 5, 2},
	} {
		ps := r.Points(c.name)
		if len(ps) != 2 || ps[0].Delta != c.delta || ps[1].Delta != c.delta || ps[0].Value != c.first || ps[1].Value != c.second {
			t.Errorf("%s: %+v; want delta=%v, %v then %v", c.name, ps, c.delta, c.first, c.second)
		}
	}
}

// With no preference, the metrics go as they always did: cumulative.
func TestOTLPMetricsAreCumulativeByDefault(t *testing.T) {
	t.Setenv(temporalityVar, "")
	os.Unsetenv(temporalityVar)
	r := otlptest.Start(t)
	mp, m := newTestMeterProvider(t, otlpOutputs(r))
	sends(m, 3)
	flush(t, mp)
	sends(m, 4)
	flush(t, mp)
	for _, name := range []string{semconv.MetricIPCSentMessages, semconv.MetricIPCOperationDuration} {
		ps := r.Points(name, sentByW...)
		if len(ps) != 2 || ps[0].Delta || ps[1].Delta || ps[0].Value != 3 || ps[1].Value != 7 || !ps[0].Start.Equal(ps[1].Start) {
			t.Errorf("%s: %+v; want cumulative 3 then 7 from one start", name, ps)
		}
	}
}

// A reload that sends the metrics to another endpoint loses and repeats
// nothing: the replaced exporter's last export and the new one's exports
// chain, whichever runs first. Then the new endpoint refuses one export,
// and the next carries its counts.
func TestOTLPDeltasGoOnAcrossAReload(t *testing.T) {
	t.Setenv(temporalityVar, "delta")
	a, b := otlptest.Start(t), otlptest.Start(t)
	began := time.Now()
	mp, m := newTestMeterProvider(t, otlpOutputs(a))
	sends(m, 30)
	flush(t, mp)
	sends(m, 5)
	next, err := mp.Prepare(otlpOutputs(b))
	if err != nil {
		t.Fatal(err)
	}
	mp.Use(next)
	// The replaced reader exports one last time in the background, while
	// these are counted and the new one exports.
	sends(m, 7)
	flush(t, mp)
	mp.retiring.Wait()
	sends(m, 2)
	b.Refuse.Store(true)
	if err := export(mp); err == nil {
		t.Error("an export the endpoint refused succeeded")
	}
	b.Refuse.Store(false)
	sends(m, 1)
	if err := mp.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}

	old, cur := a.Points(semconv.MetricIPCSentMessages, sentByW...), b.Points(semconv.MetricIPCSentMessages, sentByW...)
	if len(old) < 2 {
		t.Fatalf("the old endpoint got %+v: want the export before the reload and the replaced reader's last", old)
	}
	all := append(append([]otlptest.Point{}, old...), cur...)
	// The old reader's last export may have run after the new one's first.
	otlptest.SortByTime(all)
	if got := otlptest.Total(all); got != 45 {
		t.Errorf("ipc.sent.messages deltas add up to %v over both endpoints, want 45 (old %+v, new %+v)", got, old, cur)
	}
	if br := otlptest.ChainBreaks(all, began); len(br) > 0 {
		t.Errorf("ipc.sent.messages across the reload: %v", br)
	}
	if got := otlptest.Total(lastPoint(cur)); got != 3 {
		t.Errorf("the new endpoint's last delta is %v, want the 2 of the refused export and the 1 after", got)
	}
	hist := append(a.Points(semconv.MetricIPCOperationDuration, sentByW...), b.Points(semconv.MetricIPCOperationDuration, sentByW...)...)
	if got := otlptest.Total(hist); got != 45 {
		t.Errorf("ipc.operation.duration deltas count %v operations over both endpoints, want 45", got)
	}
}

// lastPoint is the last point of ps, alone.
func lastPoint(ps []otlptest.Point) []otlptest.Point {
	if len(ps) == 0 {
		return nil
	}
	return ps[len(ps)-1:]
}

// A stream that leaves the exports and comes back soon goes on from where
// it was; one that comes back after it was forgotten is sent whole.
func TestOTLPDeltasOfAStreamThatComesBack(t *testing.T) {
	t.Setenv(temporalityVar, "delta")
	r := otlptest.Start(t)
	mp, _ := newTestMeterProvider(t, otlpOutputs(r))
	var n atomic.Int64
	var observe atomic.Bool
	meter := mp.Meter("test")
	_, err := meter.Int64ObservableCounter("test.sink", metric.WithInt64Callback(func(_ context.Context, o metric.Int64Observer) error {
		if observe.Load() {
			o.Observe(n.Load())
		}
		return nil
	}))
	if err != nil {
		t.Fatal(err)
	}
	step := func(add int64, present bool) {
		n.Add(add)
		observe.Store(present)
		flush(t, mp)
	}
	step(10, true)
	step(5, false)
	step(5, false)
	step(1, true) // back, remembered: 11 since the first export
	mp.deltas.mu.Lock()
	mp.deltas.forgetAfter = 0
	mp.deltas.mu.Unlock()
	step(0, false)
	step(0, false) // absent twice: forgotten
	step(4, true)  // back, forgotten: its whole 25
	ps := r.Points("test.sink")
	if len(ps) != 3 || ps[0].Value != 10 || ps[1].Value != 11 || ps[2].Value != 25 || !ps[1].Start.Equal(ps[0].Time) || !ps[2].Start.Before(ps[0].Time) {
		t.Errorf("test.sink %+v: want 10, then 11 from the first, then the whole 25 from the stream's start", ps)
	}
}

// Metrics mode's kernel counts, a Producer, go as deltas too.
func TestOTLPDeltasOfKernelMetrics(t *testing.T) {
	t.Setenv(temporalityVar, "delta")
	r := otlptest.Start(t)
	k := NewKernelMetrics()
	o := otlpOutputs(r)
	o.Producer = k
	mp, _ := newTestMeterProvider(t, o)
	k.Add(aggregate(10, "app", flow.Pipe, flow.Send, "", 100, 6400, 11))
	flush(t, mp)
	k.Add(aggregate(10, "app", flow.Pipe, flow.Send, "", 150, 9600, 11))
	k.Add(aggregate(11, "app", flow.Pipe, flow.Send, "", 20, 1280, 11))
	flush(t, mp)
	app := attribute.String(semconv.AttrProcessExecutableName, "app")
	sent := r.Points(semconv.MetricIPCSentMessages, app)
	if len(sent) != 2 || !sent[0].Delta || sent[0].Value != 100 || sent[1].Value != 70 || !sent[1].Start.Equal(sent[0].Time) {
		t.Errorf("ipc.sent.messages from the kernel %+v, want deltas 100 then 70", sent)
	}
	hist := r.Points(semconv.MetricIPCOperationDuration, app)
	if len(hist) != 2 || !hist[1].Delta || hist[0].Value != 100 || hist[1].Value != 70 {
		t.Errorf("ipc.operation.duration from the kernel %+v, want deltas of 100 then 70 operations", hist)
	}
}

// Two readers' exports may run in the other order than their collections
// (a reload's replaced reader and the new one): the older collection,
// exported last, sends nothing its streams' later deltas already hold.
func TestOTLPDeltasOfAnOlderCollectionAreNotSentTwice(t *testing.T) {
	t.Setenv(temporalityVar, "delta")
	r := otlptest.Start(t)
	mp, m := newTestMeterProvider(t, MetricOutputs{})
	inner, err := newMetricExporter(OTLPConfig{Endpoint: r.URL, Protocol: ProtocolHTTP}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer inner.Shutdown(context.Background())
	exp := deltaExporter{Exporter: inner, streams: mp.deltas}
	collect := func() *metricdata.ResourceMetrics {
		sms, err := countsProducer{mp.counts}.Produce(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		return &metricdata.ResourceMetrics{Resource: resource.Empty(), ScopeMetrics: sms}
	}
	sends(m, 4)
	older := collect()
	sends(m, 6)
	newer := collect()
	for _, rm := range []*metricdata.ResourceMetrics{newer, older} {
		if err := exp.Export(context.Background(), rm); err != nil {
			t.Fatal(err)
		}
	}
	sends(m, 1)
	if err := exp.Export(context.Background(), collect()); err != nil {
		t.Fatal(err)
	}
	ps := r.Points(semconv.MetricIPCSentMessages, sentByW...)
	if len(ps) != 2 || ps[0].Value != 10 || ps[1].Value != 1 || !ps[1].Start.Equal(ps[0].Time) {
		t.Errorf("ipc.sent.messages %+v: want 10 from the newer collection, nothing from the older, then 1", ps)
	}
}
