package exporter

import (
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
)

// MetricsToPdata converts what an sdk/metric reader collected into pdata,
// for a Collector pipeline: the receiver records with the same instruments
// as the standalone agent and hands the result on this way. It converts
// the aggregations icptrack's instruments produce (sums, gauges and
// explicit-bucket histograms).
func MetricsToPdata(rm *metricdata.ResourceMetrics) pmetric.Metrics {
	md := pmetric.NewMetrics()
	rms := md.ResourceMetrics().AppendEmpty()
	if rm.Resource != nil {
		putAttributes(rms.Resource().Attributes(), *rm.Resource.Set())
		rms.SetSchemaUrl(rm.Resource.SchemaURL())
	}
	for _, sm := range rm.ScopeMetrics {
		sms := rms.ScopeMetrics().AppendEmpty()
		sms.Scope().SetName(sm.Scope.Name)
		sms.Scope().SetVersion(sm.Scope.Version)
		sms.SetSchemaUrl(sm.Scope.SchemaURL)
		for _, m := range sm.Metrics {
			pm := sms.Metrics().AppendEmpty()
			pm.SetName(m.Name)
			pm.SetDescription(m.Description)
			pm.SetUnit(m.Unit)
			switch d := m.Data.(type) {
			case metricdata.Sum[int64]:
				sum := pm.SetEmptySum()
				sum.SetIsMonotonic(d.IsMonotonic)
				sum.SetAggregationTemporality(temporality(d.Temporality))
				numberPoints(sum.DataPoints(), d.DataPoints, func(p pmetric.NumberDataPoint, v int64) { p.SetIntValue(v) })
			case metricdata.Sum[float64]:
				sum := pm.SetEmptySum()
				sum.SetIsMonotonic(d.IsMonotonic)
				sum.SetAggregationTemporality(temporality(d.Temporality))
				numberPoints(sum.DataPoints(), d.DataPoints, func(p pmetric.NumberDataPoint, v float64) { p.SetDoubleValue(v) })
			case metricdata.Gauge[int64]:
				numberPoints(pm.SetEmptyGauge().DataPoints(), d.DataPoints, func(p pmetric.NumberDataPoint, v int64) { p.SetIntValue(v) })
			case metricdata.Gauge[float64]:
				numberPoints(pm.SetEmptyGauge().DataPoints(), d.DataPoints, func(p pmetric.NumberDataPoint, v float64) { p.SetDoubleValue(v) })
			case metricdata.Histogram[float64]:
				histogram(pm.SetEmptyHistogram(), d, func(v float64) float64 { return v })
			case metricdata.Histogram[int64]:
				histogram(pm.SetEmptyHistogram(), d, func(v int64) float64 { return float64(v) })
			}
		}
	}
	return md
}

func temporality(t metricdata.Temporality) pmetric.AggregationTemporality {
	if t == metricdata.DeltaTemporality {
		return pmetric.AggregationTemporalityDelta
	}
	return pmetric.AggregationTemporalityCumulative
}

func numberPoints[N int64 | float64](out pmetric.NumberDataPointSlice, in []metricdata.DataPoint[N], set func(pmetric.NumberDataPoint, N)) {
	out.EnsureCapacity(len(in))
	for _, dp := range in {
		p := out.AppendEmpty()
		putAttributes(p.Attributes(), dp.Attributes)
		p.SetStartTimestamp(pcommon.NewTimestampFromTime(dp.StartTime))
		p.SetTimestamp(pcommon.NewTimestampFromTime(dp.Time))
		set(p, dp.Value)
	}
}

func histogram[N int64 | float64](h pmetric.Histogram, d metricdata.Histogram[N], f func(N) float64) {
	h.SetAggregationTemporality(temporality(d.Temporality))
	h.DataPoints().EnsureCapacity(len(d.DataPoints))
	for _, dp := range d.DataPoints {
		p := h.DataPoints().AppendEmpty()
		putAttributes(p.Attributes(), dp.Attributes)
		p.SetStartTimestamp(pcommon.NewTimestampFromTime(dp.StartTime))
		p.SetTimestamp(pcommon.NewTimestampFromTime(dp.Time))
		p.SetCount(dp.Count)
		p.SetSum(f(dp.Sum))
		if v, ok := dp.Min.Value(); ok {
			p.SetMin(f(v))
		}
		if v, ok := dp.Max.Value(); ok {
			p.SetMax(f(v))
		}
		p.ExplicitBounds().FromRaw(dp.Bounds)
		p.BucketCounts().FromRaw(dp.BucketCounts)
	}
}

func putAttributes(m pcommon.Map, set attribute.Set) {
	m.EnsureCapacity(set.Len())
	for _, kv := range set.ToSlice() {
		k := string(kv.Key)
		switch kv.Value.Type() {
		case attribute.BOOL:
			m.PutBool(k, kv.Value.AsBool())
		case attribute.INT64:
			m.PutInt(k, kv.Value.AsInt64())
		case attribute.FLOAT64:
			m.PutDouble(k, kv.Value.AsFloat64())
		default:
			m.PutStr(k, kv.Value.String())
		}
	}
}
