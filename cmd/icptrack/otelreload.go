package main

import (
	"context"
	"errors"
	"io"
	"reflect"
	"slices"

	"go.uber.org/zap"

	"github.com/icptrack/icptrack/exporter"
)

// A reload makes again the OpenTelemetry outputs whose settings changed
// (README: "Reloading the configuration"). Spans over OTLP are made anew,
// sender and spans, and swapped in between two operations; the old ones
// send their last batch and shut down in the background, and what they
// sent, dropped and sampled out goes on counting in the summary and the
// self-metrics. The metrics are never made anew: their instruments, and
// so every cumulative count, last the whole run, and a reload only
// changes where they go (exporter.MeterProvider.Prepare, Use).

// changeSet is what a reload changes: the pipeline's settings and sinks,
// and the OpenTelemetry outputs made again.
type changeSet struct {
	exporter.Reload
	// spans take the place of the spans over OTLP when spansChanged;
	// nil then: no more spans.
	spans        *spanOutput
	spansChanged bool
	// metricOutputs take the place of the metric outputs, when set.
	metricOutputs *exporter.PreparedOutputs
	// meters and metrics are metrics asked for where there were none.
	meters  *exporter.MeterProvider
	metrics *exporter.Metrics
}

// targets are what build made the outputs for, besides the settings: in
// metrics mode, no spans and the kernel's counts.
func (o *outputs) targets(prometheus string) exportTargets {
	t := exportTargets{prometheus: prometheus}
	if o.kernel != nil {
		t.noSpans, t.producer = true, o.kernel
	}
	return t
}

// otelChanges makes the spans and metric outputs whose settings next
// changes into c. built are what it made, for the caller to close if the
// reload fails; on an error it closes them itself.
func (r *reloader) otelChanges(next *traceFlags, c *changeSet) (built []io.Closer, err error) {
	defer func() {
		if err != nil {
			for _, b := range built {
				_ = b.Close()
			}
			built = nil
		}
	}()
	cur := r.running
	ct, nt := r.out.targets(cur.prometheus), r.out.targets(next.prometheus)
	nextSpans, err := next.spanSettings(nt)
	if err != nil {
		return built, err
	}
	curSpans, err := cur.spanSettings(ct)
	if err != nil || !sameSpans(curSpans, nextSpans) {
		c.spansChanged = true
		if nextSpans.enabled() {
			if c.spans, err = nextSpans.start(r.log, r.out.own); err != nil {
				return built, err
			}
			built = append(built, c.spans)
		}
	}
	nextMetrics, err := next.metricOutputs(nt)
	if err != nil {
		return built, err
	}
	if curMetrics, err := cur.metricOutputs(ct); err == nil && reflect.DeepEqual(curMetrics, nextMetrics) {
		return built, nil
	}
	switch {
	case r.out.meters != nil:
		if c.metricOutputs, err = r.out.meters.Prepare(nextMetrics.outputs(r.out, r.log, nt)); err != nil {
			return built, err
		}
		built = append(built, c.metricOutputs)
	case nextMetrics.enabled():
		if c.meters, c.metrics, err = nextMetrics.start(r.out, r.log, nt); err != nil {
			return built, err
		}
		if r.out.kernel == nil {
			// In metrics mode the kernel counts, and these keep only the
			// self-metrics.
			c.Reload.Metrics = c.metrics
		}
		built = append(built, closer(func() error {
			ctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
			defer cancel()
			return errors.Join(c.meters.Shutdown(ctx), c.metrics.Close())
		}))
	}
	return built, nil
}

// closer is a function as an io.Closer.
type closer func() error

func (c closer) Close() error { return c() }

// prepareSpans adds c's new spans to the pipeline's reload, on the
// pipeline's goroutine before it is applied: the old sender is shut down
// once the old spans' last batch is flushed.
func (o *outputs) prepareSpans(c *changeSet) {
	if !c.spansChanged {
		return
	}
	if c.spans != nil {
		c.Reload.Spans = c.spans.spans
	} else if !slices.Contains(c.Reload.Remove, "spans") {
		c.Reload.Remove = append(c.Reload.Remove, "spans")
	}
	if old := o.sender; old != nil {
		c.Reload.RetireSpans = func() error { return o.retireSender(old) }
	}
}

// finishOTel records the new spans and puts the new metric outputs in
// use, once the pipeline has the reload.
func (o *outputs) finishOTel(c *changeSet) {
	if c.spansChanged {
		if c.spans != nil {
			o.swapSpans(c.spans.sender, c.spans.spans)
		} else {
			o.swapSpans(nil, nil)
		}
	}
	if c.metricOutputs != nil {
		o.meters.Use(c.metricOutputs)
	}
	if c.meters != nil {
		o.meters, o.metrics = c.meters, c.metrics
	}
	if err := o.observeSampledOut(); err != nil {
		o.log.Warn("reload: cannot observe icptrack.spans.sampled_out", zap.Error(err))
	}
}

// replacedSpans are what the senders and spans a reload replaced counted:
// the counts of the summary, the self-metrics and the store's losses go
// on from them, and never go back.
type replacedSpans struct {
	// retiring are the senders replaced and still shutting down; sent
	// is what those shut down did, for good.
	retiring   []*exporter.TraceSender
	sent       exporter.SenderStats
	sampledOut uint64
	// endpoint is the last one's, for the summary when none is left.
	endpoint string
	any      bool
}

// swapSpans makes sender and spans the spans over OTLP, on the pipeline's
// goroutine, once the pipeline has them. The old spans add no more
// operations, so what they sampled out is final.
func (o *outputs) swapSpans(sender *exporter.TraceSender, spans *exporter.Spans) {
	o.spansMu.Lock()
	defer o.spansMu.Unlock()
	if o.spans != nil {
		o.replaced.sampledOut += o.spans.SampledOut()
	}
	if o.sender != nil {
		o.replaced.retiring = append(o.replaced.retiring, o.sender)
		o.replaced.endpoint, o.replaced.any = o.sender.Endpoint(), true
	}
	o.sender, o.spans = sender, spans
}

// retireSender shuts down a sender a reload replaced, once its spans'
// last batch is queued (Reload.RetireSpans), and keeps what it did.
func (o *outputs) retireSender(s *exporter.TraceSender) error {
	ctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
	defer cancel()
	err := s.Shutdown(ctx)
	o.spansMu.Lock()
	defer o.spansMu.Unlock()
	if i := slices.Index(o.replaced.retiring, s); i >= 0 {
		o.replaced.retiring = slices.Delete(o.replaced.retiring, i, i+1)
		o.replaced.sent = addSenderStats(o.replaced.sent, s.Stats())
	}
	return err
}

// senderStats are what every sender of the run did, the one running and
// those reloads replaced; ok is false when there was none.
func (o *outputs) senderStats() (st exporter.SenderStats, ok bool) {
	o.spansMu.Lock()
	defer o.spansMu.Unlock()
	st = o.replaced.sent
	for _, s := range o.replaced.retiring {
		st = addSenderStats(st, s.Stats())
	}
	if o.sender != nil {
		st = addSenderStats(st, o.sender.Stats())
	}
	return st, o.sender != nil || o.replaced.any
}

func addSenderStats(a, b exporter.SenderStats) exporter.SenderStats {
	return exporter.SenderStats{SentSpans: a.SentSpans + b.SentSpans, DroppedSpans: a.DroppedSpans + b.DroppedSpans,
		Retries: a.Retries + b.Retries, FailedExports: a.FailedExports + b.FailedExports}
}

// spanEndpoint is where spans go, or went last.
func (o *outputs) spanEndpoint() string {
	o.spansMu.Lock()
	defer o.spansMu.Unlock()
	if o.sender != nil {
		return o.sender.Endpoint()
	}
	return o.replaced.endpoint
}

// sampledOut is what every spans of the run sampled out; safe from any
// goroutine.
func (o *outputs) sampledOut() uint64 {
	o.spansMu.Lock()
	defer o.spansMu.Unlock()
	n := o.replaced.sampledOut
	if o.spans != nil {
		n += o.spans.SampledOut()
	}
	return n
}

// observeSampledOut reports sampledOut as a self-metric, once there are
// both metrics and spans.
func (o *outputs) observeSampledOut() error {
	if o.sampledOutObserved || o.meters == nil {
		return nil
	}
	if _, ok := o.senderStats(); !ok {
		return nil
	}
	if _, err := exporter.ObserveSampledOut(o.meters, o.sampledOut); err != nil {
		return err
	}
	o.sampledOutObserved = true
	return nil
}
