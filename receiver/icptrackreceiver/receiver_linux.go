package icptrackreceiver

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/receiver/receiverhelper"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	"go.opentelemetry.io/otel/sdk/resource"
	"go.uber.org/zap"

	"github.com/icptrack/icptrack/exporter"
	"github.com/icptrack/icptrack/internal/config"
	"github.com/icptrack/icptrack/probes"
	"github.com/icptrack/icptrack/receiver/icptrackreceiver/internal/metadata"
	"github.com/icptrack/icptrack/semconv"
)

func supported() error { return nil }

// running is a started instance: the tracer, the shared pipeline, and a
// queue per Collector pipeline so that a slow one never stalls capture.
type running struct {
	log    *zap.Logger
	tracer *probes.Tracer
	// degraded names the mechanisms the kernel could not serve, for the
	// component status; nil when all are traced.
	degraded  error
	pipeline  *exporter.Pipeline
	cancel    context.CancelFunc
	traced    chan error
	traces    *queue[ptrace.Traces]
	logs      *queue[plog.Logs]
	metrics   *queue[pmetric.Metrics]
	collector *metricsCollector
	telemetry *metadata.TelemetryBuilder
	// dropped counts what the queues or the next consumers lost.
	dropped atomic.Uint64
}

func (i *instance) start(_ context.Context, _ component.Host) (*running, error) {
	cfg := i.cfg
	pcfg, err := cfg.probes()
	if err != nil {
		return nil, err
	}
	if pcfg.Select, err = probes.ResolveSelector(cfg.Include.spec(), includeKey); err != nil {
		return nil, err
	}

	r := &running{log: i.set.Logger, traced: make(chan error, 1)}
	if r.telemetry, err = metadata.NewTelemetryBuilder(i.set.TelemetrySettings); err != nil {
		return nil, err
	}
	obs, err := receiverhelper.NewObsReport(receiverhelper.ObsReportSettings{
		ReceiverID: i.set.ID, Transport: "ebpf", ReceiverCreateSettings: i.set,
	})
	if err != nil {
		r.telemetry.Shutdown()
		return nil, err
	}
	retry, hooks := defaultBackoff, cfg.test
	if hooks != nil && hooks.retry != (backoff{}) {
		retry = hooks.retry
	}
	lost := func(signal string) queueEvents {
		return newLosses(signal, r.log, r.telemetry, &r.dropped).events()
	}
	res := exporter.ResourceOptions{ServiceName: cfg.ServiceName}
	out := exporter.Outputs{}
	if out.Filter, err = cfg.filter(); err != nil {
		r.telemetry.Shutdown()
		return nil, fmt.Errorf("filter: %w", err)
	}
	var kernel *exporter.KernelMetrics
	if pcfg.MetricsOnly {
		kernel = exporter.NewKernelMetrics()
		if i.traces != nil || i.logs != nil {
			r.log.Warn("mode is metrics: the traces and logs pipelines of this receiver get nothing")
		}
	}
	if i.traces != nil && kernel == nil {
		r.traces = newQueue(cfg.QueueSize, retry, lost("traces"), ptrace.Traces.SpanCount, func(ctx context.Context, td ptrace.Traces) error {
			ctx = obs.StartTracesOp(ctx)
			err := i.traces.ConsumeTraces(ctx, td)
			obs.EndTracesOp(ctx, "icptrack", td.SpanCount(), err)
			return err
		})
		opts := exporter.DefaultSpanOptions()
		opts.Resource, opts.CausalStitching = res, cfg.CausalStitching
		if n := hooks.batchSize(); n > 0 {
			opts.BatchSize = n
		}
		out.Spans = exporter.NewSpans(opts, seen(hooks.tracesHook(), r.traces.put))
	}
	if i.logs != nil && kernel == nil {
		r.logs = newQueue(cfg.QueueSize, retry, lost("logs"), plog.Logs.LogRecordCount, func(ctx context.Context, ld plog.Logs) error {
			ctx = obs.StartLogsOp(ctx)
			err := i.logs.ConsumeLogs(ctx, ld)
			obs.EndLogsOp(ctx, "icptrack", ld.LogRecordCount(), err)
			return err
		})
		out.Logs = exporter.NewLogs(exporter.LogOptions{Resource: res, BatchSize: hooks.batchSize()}, seen(hooks.logsHook(), r.logs.put))
	}
	if i.metrics != nil {
		r.metrics = newQueue(cfg.QueueSize, retry, lost("metrics"), pmetric.Metrics.DataPointCount, func(ctx context.Context, md pmetric.Metrics) error {
			ctx = obs.StartMetricsOp(ctx)
			err := i.metrics.ConsumeMetrics(ctx, md)
			obs.EndMetricsOp(ctx, "icptrack", md.DataPointCount(), err)
			return err
		})
		if r.collector, err = newMetricsCollector(cfg.MetricsInterval, seen(hooks.metricsHook(), r.metrics.put), r.selfStats, kernel); err != nil {
			r.closeQueues(context.Background())
			r.telemetry.Shutdown()
			return nil, err
		}
		if kernel == nil {
			out.Metrics = r.collector.metrics
		}
	}

	if r.tracer, err = probes.Open(pcfg); err != nil {
		r.closeQueues(context.Background())
		if r.collector != nil {
			_ = r.collector.provider.Shutdown(context.Background())
		}
		r.telemetry.Shutdown()
		return nil, err
	}
	if off := r.tracer.Unavailable(); off != nil {
		names := make([]string, len(off))
		for n, st := range off {
			names[n] = st.Mechanism.String()
			r.log.Warn("mechanism not traced on this kernel; the others are (icptrack check shows what the kernel offers)",
				zap.String("mechanism", names[n]), zap.String("kernel", probes.KernelRelease()), zap.Error(st.Err))
		}
		r.degraded = fmt.Errorf("not traced on this kernel (%s): %s; see the log for why, or run icptrack check",
			probes.KernelRelease(), strings.Join(names, ", "))
	}
	if err = r.selfTelemetry(); err != nil {
		_ = r.tracer.Close()
		r.closeQueues(context.Background())
		r.telemetry.Shutdown()
		return nil, err
	}
	if kernel != nil {
		out.Kernel, out.Aggregates = kernel, r.tracer.Aggregates
	}
	r.pipeline = exporter.NewPipeline(out)
	ctx, cancel := context.WithCancel(context.Background())
	r.cancel = cancel
	go func() { r.traced <- r.tracer.Run(ctx, r.pipeline) }()
	if r.collector != nil {
		r.collector.start()
	}
	r.log.Info("icptrack is tracing", zap.String("mode", cfg.Mode), zap.Strings("mechanisms", cfg.Mechanisms),
		zap.Bool("traces", i.traces != nil), zap.Bool("metrics", i.metrics != nil), zap.Bool("logs", i.logs != nil))
	return r, nil
}

// probes is what the tracer is to do, but the processes to trace, which
// start resolves on the host.
func (c *Config) probes() (probes.Config, error) {
	pcfg := probes.DefaultConfig()
	var err error
	if pcfg.Mechanisms, err = c.mechanisms(); err != nil {
		return pcfg, fmt.Errorf("mechanisms: %w", err)
	}
	if !(len(c.Mechanisms) == 1 && strings.TrimSpace(c.Mechanisms[0]) == "all") {
		// Named: the receiver fails to start rather than run without one.
		pcfg.Required = pcfg.Mechanisms
	}
	pcfg.PayloadBytes = c.PayloadBytes
	if pcfg.RingBufferBytes, err = config.ParseSize(c.RingBufferSize); err != nil {
		return pcfg, fmt.Errorf("ring_buffer_size: %w", err)
	}
	pcfg.DrainInterval = c.DrainInterval
	pcfg.Coalesce = c.Coalesce
	pcfg.Cmdline = c.Cmdline
	pcfg.TraceAll = true
	pcfg.MetricsOnly = c.Mode == modeMetrics
	return pcfg, nil
}

func (r *running) selfStats() exporter.SelfStats {
	s := exporter.SelfStats{ExportDropped: r.dropped.Load()}
	if ts, err := r.tracer.Stats(); err == nil {
		s.Processed, s.RingBufferDropped = ts.Captured, ts.Dropped+ts.Held
	}
	return s
}

// selfTelemetry reports what the receiver processed and lost through the
// Collector's own telemetry.
func (r *running) selfTelemetry() error {
	ringBuffer := metric.WithAttributeSet(attribute.NewSet(attribute.String(semconv.AttrIPCDropReason, semconv.IPCDropReasonRingBuffer)))
	exportQueue := metric.WithAttributeSet(attribute.NewSet(attribute.String(semconv.AttrIPCDropReason, semconv.IPCDropReasonExportQueue)))
	return errors.Join(
		r.telemetry.RegisterIcptrackEventsProcessedCallback(func(_ context.Context, o metric.Int64Observer) error {
			o.Observe(int64(r.selfStats().Processed))
			return nil
		}),
		r.telemetry.RegisterIcptrackEventsDroppedCallback(func(_ context.Context, o metric.Int64Observer) error {
			s := r.selfStats()
			o.Observe(int64(s.RingBufferDropped), ringBuffer)
			o.Observe(int64(s.ExportDropped), exportQueue)
			return nil
		}),
	)
}

// shutdownDrain bounds how long shutdown waits for pipelines that keep
// refusing when its context sets no deadline (the Collector's own
// shutdown sets none): a pipeline that refuses forever must not keep the
// Collector from stopping.
const shutdownDrain = 5 * time.Second

// stop detaches the programs, flushes what the pipeline holds and lets the
// queues drain, retries included, until ctx is done; then drops and
// counts what is left.
func (r *running) stop(ctx context.Context) error {
	r.cancel()
	runErr := <-r.traced
	errs := []error{runErr, r.pipeline.Finish()}
	if r.collector != nil {
		errs = append(errs, r.collector.stop(ctx))
	}
	drain := ctx
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		drain, cancel = context.WithTimeout(ctx, shutdownDrain)
		defer cancel()
	}
	r.closeQueues(drain)
	r.telemetry.Shutdown()
	errs = append(errs, r.tracer.Close())
	if st, err := r.tracer.Stats(); err == nil && (st.Dropped+st.Held > 0 || r.dropped.Load() > 0) {
		r.log.Warn("icptrack lost operations", zap.Uint64("ring_buffer", st.Dropped), zap.Uint64("held_at_stop", st.Held), zap.Uint64("export_queue", r.dropped.Load()))
	}
	return errors.Join(errs...)
}

func (r *running) closeQueues(ctx context.Context) {
	if r.traces != nil {
		r.traces.close(ctx)
	}
	if r.logs != nil {
		r.logs.close(ctx)
	}
	if r.metrics != nil {
		r.metrics.close(ctx)
	}
}

// seen has hook, when there is one, see each batch before put takes it.
func seen[T any](hook func(T), put func(T)) func(T) {
	if hook == nil {
		return put
	}
	return func(v T) {
		hook(v)
		put(v)
	}
}

// metricsCollector records operations with the same instruments as the
// standalone agent, into a reader of its own, and hands what it collects
// to the pipeline every interval.
type metricsCollector struct {
	interval time.Duration
	provider *sdkmetric.MeterProvider
	reader   *sdkmetric.ManualReader
	metrics  *exporter.Metrics
	put      func(pmetric.Metrics)
	quit     chan struct{}
	done     chan struct{}
}

func newMetricsCollector(interval time.Duration, put func(pmetric.Metrics), self func() exporter.SelfStats, kernel *exporter.KernelMetrics) (*metricsCollector, error) {
	var ropts []sdkmetric.ManualReaderOption
	if kernel != nil {
		ropts = append(ropts, sdkmetric.WithProducer(kernel))
	}
	c := &metricsCollector{interval: interval, put: put, reader: sdkmetric.NewManualReader(ropts...), quit: make(chan struct{}), done: make(chan struct{})}
	host, _ := os.Hostname()
	c.provider = sdkmetric.NewMeterProvider(
		sdkmetric.WithReader(c.reader),
		sdkmetric.WithResource(resource.NewSchemaless(attribute.String(semconv.AttrHostName, host))),
		sdkmetric.WithCardinalityLimit(exporter.MaxMetricStreams),
	)
	var err error
	if c.metrics, err = exporter.NewMetrics(c.provider, self); err != nil {
		_ = c.provider.Shutdown(context.Background())
		return nil, err
	}
	return c, nil
}

func (c *metricsCollector) start() {
	go func() {
		defer close(c.done)
		t := time.NewTicker(c.interval)
		defer t.Stop()
		for {
			select {
			case <-t.C:
				c.collect()
			case <-c.quit:
				return
			}
		}
	}()
}

func (c *metricsCollector) collect() {
	var rm metricdata.ResourceMetrics
	if err := c.reader.Collect(context.Background(), &rm); err == nil {
		c.put(exporter.MetricsToPdata(&rm))
	}
}

// stop collects one last time, after the pipeline has finished.
func (c *metricsCollector) stop(ctx context.Context) error {
	close(c.quit)
	<-c.done
	c.collect()
	return errors.Join(c.metrics.Close(), c.provider.Shutdown(ctx))
}

// unavailable is why some mechanisms are not traced, or nil.
func (r *running) unavailable() error { return r.degraded }
