package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/icptrack/icptrack/exporter"
	"github.com/icptrack/icptrack/flow"
	"github.com/icptrack/icptrack/probes"
)

// outputs are the OpenTelemetry outputs: spans over OTLP, metrics to
// Prometheus and OTLP. Any may be nil.
type outputs struct {
	log     *zap.Logger
	spans   *exporter.Spans
	sender  *exporter.TraceSender
	metrics *exporter.Metrics
	meters  *exporter.MeterProvider
	tracer  *probes.Tracer // for the self-metrics, once open
	// own are the addresses of icptrack's exports and endpoint, whose
	// traffic is left out when the other end is traced.
	own *exporter.OwnAddrs
}

func (o *outputs) selfStats() exporter.SelfStats {
	var s exporter.SelfStats
	if o.tracer != nil {
		if ts, err := o.tracer.Stats(); err == nil {
			s.Processed, s.RingBufferDropped = ts.Captured, ts.Dropped
		}
	}
	if o.sender != nil {
		s.ExportDropped = o.sender.Stats().DroppedSpans
	}
	return s
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
	if o.metrics != nil {
		errs = append(errs, o.metrics.Close())
	}
	if o.meters != nil {
		if err := o.meters.Shutdown(ctx); err != nil {
			if strings.Contains(err.Error(), "404") {
				err = fmt.Errorf("%w (the backend does not take metrics: use --otlp-signals traces)", err)
			}
			errs = append(errs, fmt.Errorf("metrics: %w", err))
		}
	}
	return errors.Join(errs...)
}

// pipeline takes the tracer's events through correlation to the outputs.
// Everything runs on the tracer's goroutine.
type pipeline struct {
	corr        *flow.Correlator
	log         *exporter.EventLog
	summary     *exporter.Summary
	out         *outputs
	lastObserve time.Time
	// ownTraffic counts the operations left out as icptrack's own.
	ownTraffic uint64
}

func newPipeline(events io.Writer, out *outputs) *pipeline {
	p := &pipeline{summary: exporter.NewSummary(), out: out}
	if events != nil {
		p.log = exporter.NewEventLog(events)
	}
	p.corr = flow.New(p.operation, flow.DefaultOptions())
	return p
}

func (p *pipeline) Event(ev *flow.Event) {
	if (ev.Mechanism == flow.TCP || ev.Mechanism == flow.UDP) && p.out.own.Has(ev.Remote) {
		p.ownTraffic++
		return
	}
	p.corr.Add(ev)
}

func (p *pipeline) Drained() {
	p.corr.Tick()
	if p.out.spans == nil && p.out.metrics == nil {
		return
	}
	now := time.Now()
	if p.out.spans != nil {
		p.out.spans.Tick(now)
	}
	if p.out.metrics != nil && now.Sub(p.lastObserve) >= time.Second {
		p.lastObserve = now
		p.out.metrics.Observe(p.corr)
	}
}

func (p *pipeline) operation(op *flow.Operation) {
	if p.log != nil {
		p.log.Write(op)
	}
	p.summary.Add(op)
	if p.out.spans != nil {
		p.out.spans.Add(op)
	}
	if p.out.metrics != nil {
		p.out.metrics.Record(op)
	}
}

// finish releases what the correlator still holds, flushes the log and
// ships what the outputs hold. Call it after the tracer has stopped.
func (p *pipeline) finish() error {
	p.corr.Flush()
	if p.out.metrics != nil {
		p.out.metrics.Observe(p.corr)
	}
	// A backend that is down is reported, and counted in the summary,
	// but is not icptrack failing: the trace is still complete locally.
	if err := p.out.shutdown(); err != nil {
		p.out.log.Warn("exporting at exit", zap.Error(err))
	}
	if p.log != nil {
		return p.log.Flush()
	}
	return nil
}
