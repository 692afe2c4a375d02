//go:build linux

package icptrackreceiver

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/consumer/consumererror"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	"go.opentelemetry.io/otel/sdk/metric/metricdata/metricdatatest"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/icptrack/icptrack/receiver/icptrackreceiver/internal/metadatatest"
)

// refusingLogs refuses every batch with err, and counts the offers.
type refusingLogs struct {
	err    error
	offers atomic.Int64
}

func (c *refusingLogs) ConsumeLogs(context.Context, plog.Logs) error {
	c.offers.Add(1)
	return c.err
}

func (c *refusingLogs) Capabilities() consumer.Capabilities { return consumer.Capabilities{} }

// startRefused starts a logs receiver in front of next, has the helper
// send datagrams exchanges times (two log records each), and returns the
// receiver's telemetry, its log and the receiver.
func startRefused(t *testing.T, next consumer.Logs, exchanges int) (*componenttest.Telemetry, *observer.ObservedLogs, func(context.Context) error) {
	t.Helper()
	tel := componenttest.NewTelemetry()
	t.Cleanup(func() { require.NoError(t, tel.Shutdown(context.Background())) })
	set := metadatatest.NewSettings(tel)
	core, logs := observer.New(zap.InfoLevel)
	set.Logger = zap.New(core)
	hooks := &testHooks{retry: backoff{initial: time.Millisecond, max: 10 * time.Millisecond}, batch: 2}
	cfg := contractConfig(hooks)
	r, err := NewFactory().CreateLogs(context.Background(), set, cfg, next)
	require.NoError(t, err)
	require.NoError(t, r.Start(context.Background(), componenttest.NewNopHost()))
	h, err := startIPCHelper(helperBinary(t))
	require.NoError(t, err)
	for n := range exchanges {
		require.NoError(t, h.exchange(fmt.Sprintf("icp-%06d", n)))
	}
	require.NoError(t, h.stop())
	return tel, logs, r.Shutdown
}

func exportDropped(signal, reason string, n int64) metricdata.DataPoint[int64] {
	return metricdata.DataPoint[int64]{
		Attributes: attribute.NewSet(attribute.String("signal", signal), attribute.String("reason", reason)),
		Value:      n,
	}
}

// A pipeline that refuses with a retryable error, for ever, gets its
// batches again and again until shutdown; shutdown ends when its context
// does, and what the pipeline never took is dropped and counted, each
// log record once.
func TestRetryableRefusalsAreRetriedUntilShutdown(t *testing.T) {
	needsBPF(t)
	next := &refusingLogs{err: errors.New("data refused due to high memory usage")}
	tel, logs, shutdown := startRefused(t, next, 5)
	waitFor(t, "the pipeline to be offered a batch again", func() bool { return next.offers.Load() >= 5 })

	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	began := time.Now()
	require.NoError(t, shutdown(ctx))
	if took := time.Since(began); took > 3*time.Second {
		t.Errorf("shutdown took %s with a pipeline that refuses and a 300ms context", took)
	}

	metadatatest.AssertEqualIcptrackExportDropped(t, tel, []metricdata.DataPoint[int64]{exportDropped("logs", "shutdown", 10)},
		metricdatatest.IgnoreTimestamp())
	retries, err := tel.GetMetric("otelcol_icptrack.export.retries")
	require.NoError(t, err)
	got := retries.Data.(metricdata.Sum[int64]).DataPoints[0]
	require.Equal(t, attribute.NewSet(attribute.String("signal", "logs")), got.Attributes)
	require.Positive(t, got.Value)
	// Offers: once per batch, plus each retry.
	require.GreaterOrEqual(t, next.offers.Load(), got.Value+1)
	require.Equal(t, 1, logs.FilterMessageSnippet("dropped data at shutdown").Len(), "one warning for all of it")
}

// A permanent refusal drops the batch at once, counted; the warning is
// not repeated for every batch.
func TestPermanentRefusalsAreDroppedAndCounted(t *testing.T) {
	needsBPF(t)
	next := &refusingLogs{err: consumererror.NewPermanent(errors.New("bad data"))}
	tel, logs, shutdown := startRefused(t, next, 6)
	waitFor(t, "the helper's 12 log records to be refused", func() bool {
		m, err := tel.GetMetric("otelcol_icptrack.export.dropped")
		return err == nil && m.Data.(metricdata.Sum[int64]).DataPoints[0].Value == 12
	})
	offers := next.offers.Load()
	require.NoError(t, shutdown(context.Background()))
	require.Equal(t, offers, next.offers.Load(), "nothing offered again")
	require.GreaterOrEqual(t, offers, int64(2), "batches of two records at most: several offers")
	metadatatest.AssertEqualIcptrackExportDropped(t, tel, []metricdata.DataPoint[int64]{exportDropped("logs", "refused", 12)},
		metricdatatest.IgnoreTimestamp())
	_, err := tel.GetMetric("otelcol_icptrack.export.retries")
	require.Error(t, err, "no retries for a permanent refusal")
	warned := logs.FilterMessageSnippet("refused for good")
	require.Equal(t, 1, warned.Len(), "rate-limited: one warning for %d refusals", offers)
	require.True(t, strings.Contains(fmt.Sprint(warned.All()[0].ContextMap()["error"]), "bad data"))
}
