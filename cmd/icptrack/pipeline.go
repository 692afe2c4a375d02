package main

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/icptrack/icptrack/exporter"
	"github.com/icptrack/icptrack/exporter/syslog"
	"github.com/icptrack/icptrack/filter"
	"github.com/icptrack/icptrack/probes"
	"github.com/icptrack/icptrack/semconv"
	"github.com/icptrack/icptrack/store"
)

// outputs are the OpenTelemetry outputs: spans over OTLP, metrics to
// Prometheus and OTLP. Any may be nil.
type outputs struct {
	log *zap.Logger
	// spans and sender are the spans over OTLP; a reload replaces them on
	// the pipeline's goroutine (swapSpans), under spansMu, which the
	// other goroutines that read them take.
	spans    *exporter.Spans
	sender   *exporter.TraceSender
	spansMu  sync.Mutex
	replaced replacedSpans
	metrics  *exporter.Metrics
	meters   *exporter.MeterProvider
	// sampledOutObserved is set once icptrack.spans.sampled_out is.
	sampledOutObserved bool
	tracer             *probes.Tracer // for the self-metrics, once open
	// own are the addresses of icptrack's exports and endpoint, whose
	// traffic is left out when the other end is traced.
	own *exporter.OwnAddrs
	// kernel takes metrics mode's counts.
	kernel *exporter.KernelMetrics
	// filter, if set, decides which operations reach the outputs.
	filter *filter.Filter
	// sinks are the outputs beyond OpenTelemetry and the event log (the
	// store, syslog, the database); the pipeline flushes and closes them.
	sinks []exporter.Sink
	// syslog is the syslog output among sinks, if asked for.
	syslog *syslog.Sink
	// checkpoints is syslog too, for the store's writer, which sends its
	// checkpoints on its own goroutine while a reload changes syslog on
	// the pipeline's (setSyslog).
	checkpoints atomic.Pointer[syslog.Sink]
	// store is the store among sinks, if asked for; api the API, if
	// served. A reload changes them (reloader.apiAndStore).
	store *store.Sink
	api   *runningAPI
	// pipeline, once made, for the sinks' self-metrics.
	pipeline *exporter.Pipeline
	// running is set once the tracer and the pipeline are made: the
	// API's goroutines read them only then.
	running atomic.Bool
}

func (o *outputs) selfStats() exporter.SelfStats {
	var s exporter.SelfStats
	if o.tracer != nil {
		if ts, err := o.tracer.Stats(); err == nil {
			s.Processed, s.RingBufferDropped = ts.Captured, ts.Dropped
		}
	}
	if st, ok := o.senderStats(); ok {
		s.ExportDropped = st.DroppedSpans
	}
	if o.pipeline != nil {
		s.Sinks = o.pipeline.SinkStats()
	}
	return s
}

// losses are what was lost before the pipeline and in the span export,
// per reason, for the sinks that keep a record of drops (the store).
func (o *outputs) losses() map[string]uint64 {
	m := map[string]uint64{}
	if o.tracer != nil {
		if ts, err := o.tracer.Stats(); err == nil {
			m[semconv.IPCDropReasonRingBuffer] = ts.Dropped
		}
	}
	if st, ok := o.senderStats(); ok {
		m[semconv.IPCDropReasonExportQueue] = st.DroppedSpans
	}
	return m
}

// setSyslog makes s the syslog output (nil: none).
func (o *outputs) setSyslog(s *syslog.Sink) {
	o.syslog = s
	o.checkpoints.Store(s)
}

// closeSinks closes the added sinks when no pipeline took them: icptrack
// failed before tracing.
func (o *outputs) closeSinks() {
	for _, s := range o.sinks {
		_ = s.Close()
	}
	o.sinks = nil
}

// shutdownTimeout bounds how long icptrack waits at exit for a backend.
const shutdownTimeout = 5 * time.Second

// shutdown flushes and stops the outputs.
func (o *outputs) shutdown() error {
	ctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
	defer cancel()
	var errs []error
	if o.spans != nil {
		o.spans.Flush()
	}
	if o.sender != nil {
		errs = append(errs, o.sender.Shutdown(ctx))
	}
	// The meters' last collection first: it still needs the metrics'
	// callbacks, which hold every message and byte count (a command
	// shorter than the export interval has no other).
	if o.meters != nil {
		if err := o.meters.Shutdown(ctx); err != nil {
			if strings.Contains(err.Error(), "404") {
				err = fmt.Errorf("%w (the backend does not take metrics: use --otlp-signals traces)", err)
			}
			errs = append(errs, fmt.Errorf("metrics: %w", err))
		}
	}
	if o.metrics != nil {
		errs = append(errs, o.metrics.Close())
	}
	return errors.Join(errs...)
}

// pipeline is the shared pipeline plus the agent's summary and outputs.
type pipeline struct {
	*exporter.Pipeline
	summary *exporter.Summary
	out     *outputs
	// reloads bring SIGHUP's new settings to the pipeline's goroutine
	// (trace only; nil otherwise).
	reloads chan *reloadRequest
}

// Drained applies a reload waiting, between two operations, then does
// the pipeline's own work.
func (p *pipeline) Drained() {
	if p.reloads != nil {
		select {
		case req := <-p.reloads:
			p.applyReload(req)
		default:
		}
	}
	p.Pipeline.Drained()
}

// applyReload hands the pipeline the new settings and retires the outputs
// they replace, in the background.
func (p *pipeline) applyReload(req *reloadRequest) {
	if req.kernel != nil {
		if err := req.kernel(); err != nil {
			req.err = err
			close(req.done)
			return
		}
	}
	p.out.prepareSpans(&req.reload)
	retired := p.Reload(req.reload.Reload)
	p.out.finishOTel(&req.reload)
	for _, s := range req.reload.Sinks {
		if ss, ok := s.(*syslog.Sink); ok {
			p.out.setSyslog(ss)
		}
	}
	if slices.Contains(req.reload.Remove, "syslog") {
		p.out.setSyslog(nil)
	}
	// Before the old outputs close: the old store's last checkpoint goes
	// to the syslog output that is running now.
	for _, apply := range req.apply {
		apply()
	}
	p.Retire(retired, func(name string, err error) {
		p.out.log.Warn("reload: closing the replaced output", zap.String("output", name), zap.Error(err))
	})
	close(req.done)
}

func newPipeline(events exporter.OpWriter, out *outputs) *pipeline {
	p := &pipeline{summary: exporter.NewSummary(), out: out}
	o := exporter.Outputs{Events: events, Summary: p.summary, Spans: out.spans, Metrics: out.metrics, Own: out.own, Filter: out.filter,
		Sinks: out.sinks, Losses: out.losses}
	if out.kernel != nil {
		// The kernel counts; out.metrics keeps only the self-metrics.
		o.Kernel, o.Aggregates, o.Metrics = out.kernel, out.tracer.Aggregates, nil
	}
	p.Pipeline = exporter.NewPipeline(o)
	out.pipeline = p.Pipeline
	out.running.Store(true)
	return p
}

// finish releases what the correlator still holds, flushes the log and
// ships what the outputs hold. Call it after the tracer has stopped.
func (p *pipeline) finish() error {
	err := p.Finish()
	// A backend that is down is reported, and counted in the summary,
	// but is not icptrack failing: the trace is still complete locally.
	if err := p.out.shutdown(); err != nil {
		p.out.log.Warn("exporting at exit", zap.Error(err))
	}
	return err
}
