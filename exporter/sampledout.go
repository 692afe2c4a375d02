package exporter

import (
	"context"

	"go.opentelemetry.io/otel/metric"

	"github.com/icptrack/icptrack/semconv"
)

// ObserveSampledOut reports sampledOut (Spans.SampledOut) as the
// self-metric icptrack.spans.sampled_out on mp: operations that made no
// span because their trace was sampled out. It is kept apart from
// icptrack.events.dropped, which counts what was lost. sampledOut must
// be safe to call from any goroutine.
func ObserveSampledOut(mp metric.MeterProvider, sampledOut func() uint64) (metric.Registration, error) {
	meter := mp.Meter(ScopeName, metric.WithInstrumentationVersion(Version()))
	c, err := meter.Int64ObservableCounter(semconv.MetricIcptrackSpansSampledOut,
		metric.WithUnit(semconv.MetricIcptrackSpansSampledOutUnit),
		metric.WithDescription(semconv.MetricIcptrackSpansSampledOutDescription))
	if err != nil {
		return nil, err
	}
	return meter.RegisterCallback(func(_ context.Context, o metric.Observer) error {
		o.ObserveInt64(c, int64(sampledOut()))
		return nil
	}, c)
}
