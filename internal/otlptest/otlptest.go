// Package otlptest is an OTLP/HTTP metrics endpoint for tests: it decodes
// each request with the Collector's pdata, as a Collector would, and
// keeps what it accepted.
package otlptest

import (
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/pmetric/pmetricotlp"
	"go.opentelemetry.io/otel/attribute"
)

// Receiver takes OTLP/HTTP metrics on URL + "/v1/metrics".
type Receiver struct {
	URL string
	// Refuse, while set, makes it answer 400 Bad Request, which an OTLP
	// exporter does not retry.
	Refuse atomic.Bool
	mu     sync.Mutex
	got    []pmetric.Metrics
}

// Start serves a Receiver until the test ends.
func Start(t testing.TB) *Receiver {
	t.Helper()
	r := &Receiver{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, err := io.ReadAll(req.Body)
		if err != nil || req.URL.Path != "/v1/metrics" || r.Refuse.Load() {
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
	r.URL = srv.URL
	return r
}

// Point is one data point as it was received: a Sum's value, or a
// Histogram's count (Value), sum and buckets.
type Point struct {
	Delta       bool
	Start, Time time.Time
	Value       float64
	Sum         float64
	Buckets     []uint64
	HasMinMax   bool
}

// Points are the data points of the metric name whose attributes include
// attrs, in the order they were received.
func (r *Receiver) Points(name string, attrs ...attribute.KeyValue) []Point {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []Point
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
					if m := ms.At(k); m.Name() == name {
						out = append(out, points(m, matches)...)
					}
				}
			}
		}
	}
	return out
}

func points(m pmetric.Metric, matches func(pcommon.Map) bool) []Point {
	var out []Point
	switch m.Type() {
	case pmetric.MetricTypeSum:
		delta := m.Sum().AggregationTemporality() == pmetric.AggregationTemporalityDelta
		dps := m.Sum().DataPoints()
		for i := range dps.Len() {
			p := dps.At(i)
			if !matches(p.Attributes()) {
				continue
			}
			v := p.DoubleValue()
			if p.ValueType() == pmetric.NumberDataPointValueTypeInt {
				v = float64(p.IntValue())
			}
			out = append(out, Point{Delta: delta, Start: p.StartTimestamp().AsTime(), Time: p.Timestamp().AsTime(), Value: v})
		}
	case pmetric.MetricTypeHistogram:
		delta := m.Histogram().AggregationTemporality() == pmetric.AggregationTemporalityDelta
		dps := m.Histogram().DataPoints()
		for i := range dps.Len() {
			p := dps.At(i)
			if !matches(p.Attributes()) {
				continue
			}
			out = append(out, Point{Delta: delta, Start: p.StartTimestamp().AsTime(), Time: p.Timestamp().AsTime(),
				Value: float64(p.Count()), Sum: p.Sum(), Buckets: p.BucketCounts().AsRaw(), HasMinMax: p.HasMin() && p.HasMax()})
		}
	}
	return out
}

// Total adds up the points' values.
func Total(ps []Point) float64 {
	var sum float64
	for _, p := range ps {
		sum += p.Value
	}
	return sum
}

// SortByTime puts ps in the order of their times.
func SortByTime(ps []Point) {
	slices.SortStableFunc(ps, func(a, b Point) int { return a.Time.Compare(b.Time) })
}

// ChainBreaks says what breaks the chain of deltas ps: each must start
// where the one before ended, the first where its stream began, no
// earlier than began.
func ChainBreaks(ps []Point, began time.Time) []string {
	var broken []string
	for i, p := range ps {
		switch {
		case !p.Delta:
			broken = append(broken, "point "+p.Time.String()+" is cumulative")
		case !p.Time.After(p.Start):
			broken = append(broken, "point "+p.Time.String()+" ends before it starts")
		case i == 0 && p.Start.Before(began):
			broken = append(broken, "the first delta starts before its stream began")
		case i > 0 && !p.Start.Equal(ps[i-1].Time):
			broken = append(broken, "delta at "+p.Time.String()+" starts at "+p.Start.String()+", not where the one before ended ("+ps[i-1].Time.String()+")")
		}
	}
	return broken
}
