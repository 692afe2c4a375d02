package exporter

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/pmetric/pmetricotlp"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	"go.opentelemetry.io/otel/sdk/resource"

	"github.com/icptrack/icptrack/flow"
	"github.com/icptrack/icptrack/semconv"
)

const temporalityVar = "OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE"

// otlpMetricsReceiver is an OTLP/HTTP endpoint that keeps every metrics
// request it accepts. While refusing, it answers 400 Bad Request, which
// the exporter does not retry.
type otlpMetricsReceiver struct {
	url    string
	refuse atomic.Bool
	mu     sync.Mutex
	got    []pmetric.Metrics
}

func startOTLPMetricsReceiver(t *testing.T) *otlpMetricsReceiver {
	t.Helper()
	r := &otlpMetricsReceiver{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, err := io.ReadAll(req.Body)
		if err != nil || req.URL.Path != "/v1/metrics" || r.refuse.Load() {
			http.Error(w, "refused", http.StatusBadRequest)
			return
		}
		er := pmetricotlp.NewExportRequest()
		if err := er.UnmarshalProto(body); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		r.mu.Lock()
		r.got = append(r.got, er.Metrics())
		r.mu.Unlock()
		out, _ := pmetricotlp.NewExportResponse().MarshalProto()
		w.Header().Set("Content-Type", "application/x-protobuf")
		_, _ = w.Write(out)
	}))
	t.Cleanup(srv.Close)
	r.url = srv.URL
	return r
}

// otlpPoint is one data point as the receiver got it: a Sum's value, or a
// Histogram's count, sum and buckets.
type otlpPoint struct {
	delta       bool
	start, time time.Time
	value       float64
	sum         float64
	buckets     []uint64
	hasMinMax   bool
}

// points are the data points of the metric name whose attributes include
// attrs, in the order they were received.
func (r *otlpMetricsReceiver) points(name string, attrs ...attribute.KeyValue) []otlpPoint {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []otlpPoint
	matches := func(a pcommon.Map) bool {
		for _, kv := range attrs {
			if v, ok := a.Get(string(kv.Key)); !ok || v.AsString() != kv.Value.String() {
				return false
			}
		}
		return true
	}
	for _, md := range r.got {
		for i := range md.ResourceMetrics().Len() {
			sms := md.ResourceMetrics().At(i).ScopeMetrics()
			for j := range sms.Len() {
				ms := sms.At(j).Metrics()
				for k := range ms.Len() {
					m := ms.At(k)
					if m.Name() != name {
						continue
					}
					switch m.Type() {
					case pmetric.MetricTypeSum:
						dps := m.Sum().DataPoints()
						for l := range dps.Len() {
							p := dps.At(l)
							if !matches(p.Attributes()) {
								continue
							}
							v := p.DoubleValue()
							if p.ValueType() == pmetric.NumberDataPointValueTypeInt {
								v = float64(p.IntValue())
							}
							out = append(out, otlpPoint{delta: m.Sum().AggregationTemporality() == pmetric.AggregationTemporalityDelta,
								start: p.StartTimestamp().AsTime(), time: p.Timestamp().AsTime(), value: v})
						}
					case pmetric.MetricTypeHistogram:
						dps := m.Histogram().DataPoints()
						for l := range dps.Len() {
							p := dps.At(l)
							if !matches(p.Attributes()) {
								continue
							}
							out = append(out, otlpPoint{delta: m.Histogram().AggregationTemporality() == pmetric.AggregationTemporalityDelta,
								start: p.StartTimestamp().AsTime(), time: p.Timestamp().AsTime(), value: float64(p.Count()),
								sum: p.Sum(), buckets: p.BucketCounts().AsRaw(), hasMinMax: p.HasMin() && p.HasMax()})
						}
					}
				}
			}
		}
	}
	return out
}

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
func otlpOutputs(r *otlpMetricsReceiver) MetricOutputs {
	return MetricOutputs{OTLP: OTLPConfig{Endpoint: r.url, Protocol: ProtocolHTTP}, Interval: time.Hour, NoHostName: true}
}

func total(ps []otlpPoint) (sum float64) {
	for _, p := range ps {
		sum += p.value
	}
	return sum
}

// chained reports what breaks the chain of deltas: each must start where
// the one before ended, the first where the stream began, after began.
func chained(ps []otlpPoint, began time.Time) []string {
	var broken []string
	for i, p := range ps {
		switch {
		case !p.delta:
			broken = append(broken, "point "+p.time.String()+" is cumulative")
		case !p.time.After(p.start):
			broken = append(broken, "point "+p.time.String()+" ends before it starts")
		case i == 0 && p.start.Before(began):
			broken = append(broken, "the first delta starts before the stream began")
		case i > 0 && !p.start.Equal(ps[i-1].time):
			broken = append(broken, "delta at "+p.time.String()+" starts at "+p.start.String()+", not where the one before ended ("+ps[i-1].time.String()+")")
		}
	}
	return broken
}

var sentByW = []attribute.KeyValue{attribute.String(semconv.AttrIPCMechanism, "pipe"), attribute.String(semconv.AttrProcessExecutableName, "w")}

// With the delta preference, each export carries what was counted since
// the one before: the message counter's deltas add up to the messages
// sent, each starting where the one before ended; the duration
// histogram's counts, sums and buckets likewise, with a minimum and
// maximum only on its first delta.
func TestOTLPDeltasAddUpToTheTotals(t *testing.T) {
	t.Setenv(temporalityVar, "delta")
	r := startOTLPMetricsReceiver(t)
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

	sent := r.points(semconv.MetricIPCSentMessages, sentByW...)
	if len(sent) != 4 || sent[0].value != 30 || sent[1].value != 12 || sent[2].value != 0 || sent[3].value != 1 {
		t.Errorf("ipc.sent.messages deltas %+v, want 30, 12, 0 and 1", sent)
	}
	if b := chained(sent, began); len(b) > 0 {
		t.Errorf("ipc.sent.messages: %v", b)
	}
	bytes := r.points(semconv.MetricIPCIO, sentByW...)
	if got := total(bytes); got != 43*10 {
		t.Errorf("ipc.io deltas add up to %v, want 430", got)
	}

	hist := r.points(semconv.MetricIPCOperationDuration, sentByW...)
	if len(hist) != 4 || total(hist) != 43 {
		t.Fatalf("ipc.operation.duration deltas %+v, want 4 adding up to 43 operations", hist)
	}
	if b := chained(hist, began); len(b) > 0 {
		t.Errorf("ipc.operation.duration: %v", b)
	}
	for i, want := range []uint64{30, 12, 0, 1} {
		var n uint64
		for _, c := range hist[i].buckets {
			n += c
		}
		if hist[i].value != float64(want) || n != want || hist[i].sum != 0 {
			t.Errorf("histogram delta %d: count %v, buckets %v, sum %v; want %d in the buckets, sum 0", i, hist[i].value, hist[i].buckets, hist[i].sum, want)
		}
		if hist[i].hasMinMax != (i == 0) {
			t.Errorf("histogram delta %d has a minimum and maximum: %v (only the first, a whole, can)", i, hist[i].hasMinMax)
		}
	}
}

// The lowmemory preference makes deltas of counters and histograms only:
// an observable counter (the message counter) and an up-down counter stay
// cumulative, a synchronous counter is sent as deltas.
func TestOTLPLowMemoryDeltasOnlyForCountersAndHistograms(t *testing.T) {
	t.Setenv(temporalityVar, "lowmemory")
	r := startOTLPMetricsReceiver(t)
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
		ps := r.points(c.name)
		if len(ps) != 2 || ps[0].delta != c.delta || ps[1].delta != c.delta || ps[0].value != c.first || ps[1].value != c.second {
			t.Errorf("%s: %+v; want delta=%v, %v then %v", c.name, ps, c.delta, c.first, c.second)
		}
	}
}

// With no preference, the metrics go as they always did: cumulative.
func TestOTLPMetricsAreCumulativeByDefault(t *testing.T) {
	t.Setenv(temporalityVar, "")
	os.Unsetenv(temporalityVar)
	r := startOTLPMetricsReceiver(t)
	mp, m := newTestMeterProvider(t, otlpOutputs(r))
	sends(m, 3)
	flush(t, mp)
	sends(m, 4)
	flush(t, mp)
	for _, name := range []string{semconv.MetricIPCSentMessages, semconv.MetricIPCOperationDuration} {
		ps := r.points(name, sentByW...)
		if len(ps) != 2 || ps[0].delta || ps[1].delta || ps[0].value != 3 || ps[1].value != 7 || !ps[0].start.Equal(ps[1].start) {
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
	a, b := startOTLPMetricsReceiver(t), startOTLPMetricsReceiver(t)
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
	b.refuse.Store(true)
	if err := export(mp); err == nil {
		t.Error("an export the endpoint refused succeeded")
	}
	b.refuse.Store(false)
	sends(m, 1)
	if err := mp.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}

	old, cur := a.points(semconv.MetricIPCSentMessages, sentByW...), b.points(semconv.MetricIPCSentMessages, sentByW...)
	if len(old) < 2 {
		t.Fatalf("the old endpoint got %+v: want the export before the reload and the replaced reader's last", old)
	}
	all := append(append([]otlpPoint{}, old...), cur...)
	// The old reader's last export may have run after the new one's first.
	for i := 1; i < len(all); i++ {
		for j := i; j > 0 && all[j].time.Before(all[j-1].time); j-- {
			all[j], all[j-1] = all[j-1], all[j]
		}
	}
	if got := total(all); got != 45 {
		t.Errorf("ipc.sent.messages deltas add up to %v over both endpoints, want 45 (old %+v, new %+v)", got, old, cur)
	}
	if br := chained(all, began); len(br) > 0 {
		t.Errorf("ipc.sent.messages across the reload: %v", br)
	}
	if got := total(lastPoint(cur)); got != 3 {
		t.Errorf("the new endpoint's last delta is %v, want the 2 of the refused export and the 1 after", got)
	}
	hist := append(a.points(semconv.MetricIPCOperationDuration, sentByW...), b.points(semconv.MetricIPCOperationDuration, sentByW...)...)
	if got := total(hist); got != 45 {
		t.Errorf("ipc.operation.duration deltas count %v operations over both endpoints, want 45", got)
	}
}

// lastPoint is the last point of ps, alone.
func lastPoint(ps []otlpPoint) []otlpPoint {
	if len(ps) == 0 {
		return nil
	}
	return ps[len(ps)-1:]
}

// A stream that leaves the exports and comes back soon goes on from where
// it was; one that comes back after it was forgotten is sent whole.
func TestOTLPDeltasOfAStreamThatComesBack(t *testing.T) {
	t.Setenv(temporalityVar, "delta")
	r := startOTLPMetricsReceiver(t)
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
	ps := r.points("test.sink")
	if len(ps) != 3 || ps[0].value != 10 || ps[1].value != 11 || ps[2].value != 25 || !ps[1].start.Equal(ps[0].time) || !ps[2].start.Before(ps[0].time) {
		t.Errorf("test.sink %+v: want 10, then 11 from the first, then the whole 25 from the stream's start", ps)
	}
}

// Metrics mode's kernel counts, a Producer, go as deltas too.
func TestOTLPDeltasOfKernelMetrics(t *testing.T) {
	t.Setenv(temporalityVar, "delta")
	r := startOTLPMetricsReceiver(t)
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
	sent := r.points(semconv.MetricIPCSentMessages, app)
	if len(sent) != 2 || !sent[0].delta || sent[0].value != 100 || sent[1].value != 70 || !sent[1].start.Equal(sent[0].time) {
		t.Errorf("ipc.sent.messages from the kernel %+v, want deltas 100 then 70", sent)
	}
	hist := r.points(semconv.MetricIPCOperationDuration, app)
	if len(hist) != 2 || !hist[1].delta || hist[0].value != 100 || hist[1].value != 70 {
		t.Errorf("ipc.operation.duration from the kernel %+v, want deltas of 100 then 70 operations", hist)
	}
}

// Two readers' exports may run in the other order than their collections
// (a reload's replaced reader and the new one): the older collection,
// exported last, sends nothing its streams' later deltas already hold.
func TestOTLPDeltasOfAnOlderCollectionAreNotSentTwice(t *testing.T) {
	t.Setenv(temporalityVar, "delta")
	r := startOTLPMetricsReceiver(t)
	mp, m := newTestMeterProvider(t, MetricOutputs{})
	inner, err := newMetricExporter(OTLPConfig{Endpoint: r.url, Protocol: ProtocolHTTP}, nil)
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
	ps := r.points(semconv.MetricIPCSentMessages, sentByW...)
	if len(ps) != 2 || ps[0].value != 10 || ps[1].value != 1 || !ps[1].start.Equal(ps[0].time) {
		t.Errorf("ipc.sent.messages %+v: want 10 from the newer collection, nothing from the older, then 1", ps)
	}
}
