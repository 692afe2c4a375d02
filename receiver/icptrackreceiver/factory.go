package icptrackreceiver

import (
	"context"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/receiver"

	"github.com/icptrack/icptrack/receiver/icptrackreceiver/internal/metadata"
)

// NewFactory creates the icptrack receiver's factory.
func NewFactory() receiver.Factory {
	return receiver.NewFactory(
		metadata.Type,
		func() component.Config { return createDefaultConfig() },
		receiver.WithTraces(createTraces, metadata.TracesStability),
		receiver.WithMetrics(createMetrics, metadata.MetricsStability),
		receiver.WithLogs(createLogs, metadata.LogsStability),
	)
}

func createTraces(_ context.Context, set receiver.Settings, cfg component.Config, next consumer.Traces) (receiver.Traces, error) {
	if err := supported(); err != nil {
		return nil, err
	}
	return join(cfg.(*Config), set, func(i *instance) { i.traces = next }), nil
}

func createMetrics(_ context.Context, set receiver.Settings, cfg component.Config, next consumer.Metrics) (receiver.Metrics, error) {
	if err := supported(); err != nil {
		return nil, err
	}
	return join(cfg.(*Config), set, func(i *instance) { i.metrics = next }), nil
}

func createLogs(_ context.Context, set receiver.Settings, cfg component.Config, next consumer.Logs) (receiver.Logs, error) {
	if err := supported(); err != nil {
		return nil, err
	}
	return join(cfg.(*Config), set, func(i *instance) { i.logs = next }), nil
}
