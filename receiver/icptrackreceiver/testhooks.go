package icptrackreceiver

import (
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/ptrace"
)

// testHooks let this package's tests mark what the receiver emits, as
// receivertest.CheckConsumeContract needs (a test_id attribute on every
// span, log record and data point), and shorten its waits. They hang off
// an unexported field of Config, so no configuration can set them.
type testHooks struct {
	// traces, logs and metrics see each batch before it is queued for
	// its pipeline, and may change it.
	traces  func(ptrace.Traces)
	logs    func(plog.Logs)
	metrics func(pmetric.Metrics)
	// retry, when not zero, replaces the backoff between offers of a
	// refused batch.
	retry backoff
	// batch, when positive, is the most spans or log records in a batch.
	batch int
}

// The hooks of h, which may be nil.

func (h *testHooks) tracesHook() func(ptrace.Traces) {
	if h == nil {
		return nil
	}
	return h.traces
}

func (h *testHooks) logsHook() func(plog.Logs) {
	if h == nil {
		return nil
	}
	return h.logs
}

// batchSize is the batch size h sets, or 0 for the default.
func (h *testHooks) batchSize() int {
	if h == nil {
		return 0
	}
	return h.batch
}

func (h *testHooks) metricsHook() func(pmetric.Metrics) {
	if h == nil {
		return nil
	}
	return h.metrics
}
