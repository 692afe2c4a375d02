package exporter

import (
	"context"
	"slices"
	"sync"
	"time"

	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
)

// Every output reads the instruments through one cumulative reader (see
// MeterProvider), so the SDK never applies an OTLP exporter's temporality
// (OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE: cumulative, delta,
// lowmemory): a reader's producers hand their data over as it is. The
// deltas are made here instead, from the cumulative data, for the
// instrument kinds the exporter asks delta of.
//
// The conversion wraps the exporter rather than the producers, for two
// reasons. It sees everything one export carries, the instruments' counts
// and metrics mode's KernelMetrics alike, and knows what the exporter
// wants. And it learns whether the export succeeded: a stream's
// cumulative value is remembered as sent only then, so an export that
// fails (a backend down, the last export of an endpoint a reload dropped)
// loses nothing, and the next one carries its counts, its start time
// earlier. The SDK's own delta would have lost them.
//
// The streams' state lives with the MeterProvider, not with an output: a
// reload that replaces the OTLP exporter leaves the replaced reader's last
// export and the new reader's first to run in either order, or at once,
// and both must take their deltas from the same last values. Exports are
// one at a time (the state's lock is held across an export), and a point
// older than what was last sent of its stream is left out, its counts
// already sent by a later collection.

// deltaForgetAfter is how long a stream's last value is kept once it is
// absent from the exports (a sink a reload removed, a stream the SDK's
// cardinality limit folded away). A stream back before then goes on from
// its last value; one back later is sent whole, as a new stream, which
// counts again what had been sent of it, as the SDK's own delta would.
const deltaForgetAfter = 10 * time.Minute

// streamKey names one stream across collections.
type streamKey struct {
	scope, version, metric string
	attrs                  attribute.Distinct
}

// sent is what was last exported of one stream, as the cumulative value
// the delta was taken from.
type sent struct {
	start, time time.Time
	// value is a Sum's value, or a Histogram's sum; int or float as the
	// data point's.
	ival  int64
	fval  float64
	count uint64
	// bounds and buckets are a Histogram's.
	bounds  []float64
	buckets []uint64
	// absent is when the stream was first missing from a successful
	// export, zero while it is present.
	absent time.Time
}

// deltaStreams are the last values sent, per stream, and the kind of
// instrument each metric comes from.
type deltaStreams struct {
	forgetAfter time.Duration

	kindsMu sync.Mutex
	kinds   map[instrumentName]sdkmetric.InstrumentKind

	mu   sync.Mutex
	sent map[streamKey]*sent
}

type instrumentName struct{ scope, version, name string }

func newDeltaStreams() *deltaStreams {
	return &deltaStreams{forgetAfter: deltaForgetAfter, kinds: map[instrumentName]sdkmetric.InstrumentKind{}, sent: map[streamKey]*sent{}}
}

// view records each instrument's kind as the SDK makes it, and changes
// nothing. Data points do not say whether a monotonic Sum is a Counter or
// an ObservableCounter, which lowmemory tells apart.
func (d *deltaStreams) view(i sdkmetric.Instrument) (sdkmetric.Stream, bool) {
	d.kindsMu.Lock()
	d.kinds[instrumentName{i.Scope.Name, i.Scope.Version, i.Name}] = i.Kind
	d.kindsMu.Unlock()
	return sdkmetric.Stream{}, false
}

// kind is the kind of instrument m comes from. A metric from a Producer
// has no instrument: its Sums are read as observable, a Producer reporting
// totals it read as an observable instrument's callback would.
func (d *deltaStreams) kind(scope, version string, m metricdata.Metrics) (sdkmetric.InstrumentKind, bool) {
	d.kindsMu.Lock()
	k, known := d.kinds[instrumentName{scope, version, m.Name}]
	d.kindsMu.Unlock()
	if known {
		return k, true
	}
	switch data := m.Data.(type) {
	case metricdata.Sum[int64]:
		return sumKind(data.IsMonotonic), true
	case metricdata.Sum[float64]:
		return sumKind(data.IsMonotonic), true
	case metricdata.Histogram[int64], metricdata.Histogram[float64]:
		return sdkmetric.InstrumentKindHistogram, true
	}
	return 0, false
}

func sumKind(monotonic bool) sdkmetric.InstrumentKind {
	if monotonic {
		return sdkmetric.InstrumentKindObservableCounter
	}
	return sdkmetric.InstrumentKindObservableUpDownCounter
}

// wantsDelta reports whether exp asks delta of any kind of instrument.
func wantsDelta(exp sdkmetric.Exporter) bool {
	for _, k := range []sdkmetric.InstrumentKind{
		sdkmetric.InstrumentKindCounter, sdkmetric.InstrumentKindUpDownCounter, sdkmetric.InstrumentKindHistogram,
		sdkmetric.InstrumentKindObservableCounter, sdkmetric.InstrumentKindObservableUpDownCounter,
	} {
		if exp.Temporality(k) == metricdata.DeltaTemporality {
			return true
		}
	}
	return false
}

// deltaExporter sends the Sums and Histograms its exporter asks delta of
// as deltas of the cumulative data it is handed.
type deltaExporter struct {
	sdkmetric.Exporter
	streams *deltaStreams
}

func (e deltaExporter) Export(ctx context.Context, rm *metricdata.ResourceMetrics) error {
	d := e.streams
	d.mu.Lock()
	defer d.mu.Unlock()
	out := &metricdata.ResourceMetrics{Resource: rm.Resource}
	next := map[streamKey]*sent{}
	present := map[streamKey]bool{}
	for _, sm := range rm.ScopeMetrics {
		scope := metricdata.ScopeMetrics{Scope: sm.Scope}
		for _, m := range sm.Metrics {
			kind, ok := d.kind(sm.Scope.Name, sm.Scope.Version, m)
			if !ok || e.Temporality(kind) != metricdata.DeltaTemporality {
				scope.Metrics = append(scope.Metrics, m)
				continue
			}
			c := deltaConversion{d: d, next: next, present: present, key: streamKey{scope: sm.Scope.Name, version: sm.Scope.Version, metric: m.Name}}
			switch data := m.Data.(type) {
			case metricdata.Sum[int64]:
				m.Data, ok = sumDeltas(c, data)
			case metricdata.Sum[float64]:
				m.Data, ok = sumDeltas(c, data)
			case metricdata.Histogram[int64]:
				m.Data, ok = histogramDeltas(c, data)
			case metricdata.Histogram[float64]:
				m.Data, ok = histogramDeltas(c, data)
			default:
				// A Gauge has no temporality. An ExponentialHistogram
				// (the counts reader makes none: its aggregation is the
				// default, explicit buckets) goes as it is: its deltas
				// would need the last one rescaled to the current scale.
				ok = true
			}
			if ok {
				scope.Metrics = append(scope.Metrics, m)
			}
		}
		if len(scope.Metrics) > 0 || len(sm.Metrics) == 0 {
			out.ScopeMetrics = append(out.ScopeMetrics, scope)
		}
	}
	if err := e.Exporter.Export(ctx, out); err != nil {
		return err
	}
	now := time.Now()
	for k, s := range next {
		d.sent[k] = s
	}
	for k, s := range d.sent {
		switch {
		case present[k]:
			s.absent = time.Time{}
		case s.absent.IsZero():
			s.absent = now
		case now.Sub(s.absent) > d.forgetAfter:
			delete(d.sent, k)
		}
	}
	return nil
}

// deltaConversion is one metric's conversion within an export: the
// state it reads, and the values it will have sent if the export
// succeeds.
type deltaConversion struct {
	d       *deltaStreams
	next    map[streamKey]*sent
	present map[streamKey]bool
	key     streamKey
}

// last is what was sent of the stream with attrs, or nil when it is new
// to the exports (or restarted, as start says).
func (c deltaConversion) last(attrs attribute.Set, start time.Time) (streamKey, *sent) {
	k := c.key
	k.attrs = attrs.Equivalent()
	c.present[k] = true
	s := c.d.sent[k]
	if s != nil && !s.start.Equal(start) {
		s = nil
	}
	return k, s
}

// covered reports whether a point taken at t is no newer than what was
// sent of its stream: another reader's later collection went first.
func covered(s *sent, t time.Time) bool { return s != nil && !t.After(s.time) }

func sumDeltas[N int64 | float64](c deltaConversion, data metricdata.Sum[N]) (metricdata.Aggregation, bool) {
	if data.Temporality != metricdata.CumulativeTemporality {
		return data, true
	}
	out := metricdata.Sum[N]{Temporality: metricdata.DeltaTemporality, IsMonotonic: data.IsMonotonic}
	for _, p := range data.DataPoints {
		k, s := c.last(p.Attributes, p.StartTime)
		if covered(s, p.Time) {
			continue
		}
		var prev N
		if s != nil {
			prev = value[N](s)
		}
		if s != nil && p.Value < prev && data.IsMonotonic {
			s, prev = nil, 0 // reset: the count started again
		}
		dp := metricdata.DataPoint[N]{Attributes: p.Attributes, StartTime: p.StartTime, Time: p.Time, Value: p.Value - prev}
		if s != nil {
			dp.StartTime = s.time
		}
		dp.Exemplars = exemplarsSince(p.Exemplars, dp.StartTime)
		out.DataPoints = append(out.DataPoints, dp)
		next := &sent{start: p.StartTime, time: p.Time}
		keep(next, p.Value)
		c.next[k] = next
	}
	return out, len(out.DataPoints) > 0
}

// histogramDeltas takes the buckets, count and sum since the last export.
// The minimum and maximum since then cannot be told from two cumulative
// ones: they go only with a stream's first delta, which is its whole.
func histogramDeltas[N int64 | float64](c deltaConversion, data metricdata.Histogram[N]) (metricdata.Aggregation, bool) {
	if data.Temporality != metricdata.CumulativeTemporality {
		return data, true
	}
	out := metricdata.Histogram[N]{Temporality: metricdata.DeltaTemporality}
	for _, p := range data.DataPoints {
		k, s := c.last(p.Attributes, p.StartTime)
		if covered(s, p.Time) {
			continue
		}
		if s != nil && (!slices.Equal(s.bounds, p.Bounds) || p.Count < s.count || fewer(p.BucketCounts, s.buckets)) {
			s = nil // reset, or other buckets: start again
		}
		dp := metricdata.HistogramDataPoint[N]{
			Attributes: p.Attributes, StartTime: p.StartTime, Time: p.Time,
			Count: p.Count, Bounds: p.Bounds, BucketCounts: slices.Clone(p.BucketCounts), Sum: p.Sum,
			Min: p.Min, Max: p.Max,
		}
		if s != nil {
			dp.StartTime = s.time
			dp.Count -= s.count
			dp.Sum -= value[N](s)
			for i := range dp.BucketCounts {
				dp.BucketCounts[i] -= s.buckets[i]
			}
			dp.Min, dp.Max = metricdata.Extrema[N]{}, metricdata.Extrema[N]{}
		}
		dp.Exemplars = exemplarsSince(p.Exemplars, dp.StartTime)
		out.DataPoints = append(out.DataPoints, dp)
		next := &sent{start: p.StartTime, time: p.Time, count: p.Count,
			bounds: slices.Clone(p.Bounds), buckets: slices.Clone(p.BucketCounts)}
		keep(next, p.Sum)
		c.next[k] = next
	}
	return out, len(out.DataPoints) > 0
}

// fewer reports whether a bucket counts less than it did, or the buckets
// are not the same.
func fewer(now, then []uint64) bool {
	if len(now) != len(then) {
		return true
	}
	for i := range now {
		if now[i] < then[i] {
			return true
		}
	}
	return false
}

// exemplarsSince keeps the exemplars measured within a delta's interval.
func exemplarsSince[N int64 | float64](ex []metricdata.Exemplar[N], start time.Time) []metricdata.Exemplar[N] {
	var kept []metricdata.Exemplar[N]
	for _, x := range ex {
		if x.Time.After(start) {
			kept = append(kept, x)
		}
	}
	return kept
}

func value[N int64 | float64](s *sent) N {
	var n N
	if _, isInt := any(n).(int64); isInt {
		return N(s.ival)
	}
	return N(s.fval)
}

func keep[N int64 | float64](s *sent, v N) {
	switch v := any(v).(type) {
	case int64:
		s.ival = v
	case float64:
		s.fval = v
	}
}
