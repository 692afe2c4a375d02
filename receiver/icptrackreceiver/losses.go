package icptrackreceiver

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.uber.org/zap"

	"github.com/icptrack/icptrack/receiver/icptrackreceiver/internal/metadata"
)

// lossLogEvery is how often at most the receiver logs, per pipeline and
// reason, that it dropped data: a pipeline that refuses everything would
// otherwise log for every batch.
const lossLogEvery = 10 * time.Second

// losses counts and reports what one pipeline's queue lost or retried:
// in the total the self-metrics show (icptrack.events.dropped), in the
// Collector's own telemetry by reason, and in the log, rate-limited.
type losses struct {
	signal string
	log    *zap.Logger
	tb     *metadata.TelemetryBuilder
	total  *atomic.Uint64
	attrs  [dropShutdown + 1]metric.AddOption
	sig    metric.AddOption
	held   [dropShutdown + 1]throttle
}

func newLosses(signal string, log *zap.Logger, tb *metadata.TelemetryBuilder, total *atomic.Uint64) *losses {
	l := &losses{signal: signal, log: log, tb: tb, total: total}
	s := attribute.String("signal", signal)
	l.sig = metric.WithAttributeSet(attribute.NewSet(s))
	for r := range l.attrs {
		l.attrs[r] = metric.WithAttributeSet(attribute.NewSet(s, attribute.String("reason", dropReason(r).String())))
		l.held[r].every = lossLogEvery
	}
	return l
}

func (l *losses) events() queueEvents {
	return queueEvents{dropped: l.dropped, retried: l.retried}
}

func (l *losses) dropped(reason dropReason, items int, err error) {
	l.total.Add(uint64(items))
	l.tb.IcptrackExportDropped.Add(context.Background(), int64(items), l.attrs[reason])
	n, ok := l.held[reason].pass(time.Now(), items)
	if !ok {
		return
	}
	fields := []zap.Field{zap.String("pipeline", l.signal), zap.Int("dropped", n), zap.Duration("at_most_once_per", lossLogEvery)}
	switch reason {
	case dropQueueFull:
		l.log.Warn("icptrack dropped data: the pipeline's queue is full, because the pipeline refuses or is slow; raise queue_size or give the pipeline more room (memory_limiter, exporters)", fields...)
	case dropRefused:
		l.log.Warn("icptrack dropped data the pipeline refused for good (a permanent error)", append(fields, zap.Error(err))...)
	case dropShutdown:
		l.log.Warn("icptrack dropped data at shutdown: the pipeline had not taken it when the shutdown's time was up", append(fields, zap.NamedError("last_refusal", err))...)
	}
}

func (l *losses) retried(err error) {
	l.tb.IcptrackExportRetries.Add(context.Background(), 1, l.sig)
	l.log.Debug("the pipeline refused a batch with a retryable error; offering it again after a backoff",
		zap.String("pipeline", l.signal), zap.Error(err))
}

// throttle lets a message through at most once per interval and counts
// the items of those it held back, for the next one to report.
type throttle struct {
	mu    sync.Mutex
	every time.Duration
	next  time.Time
	items int
}

// pass adds items and reports whether to log now, and how many items
// the message covers.
func (t *throttle) pass(now time.Time, items int) (int, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.items += items
	if now.Before(t.next) {
		return 0, false
	}
	n := t.items
	t.items, t.next = 0, now.Add(t.every)
	return n, true
}
