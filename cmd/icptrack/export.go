package main

import (
	"context"
	"fmt"
	"os"
	"reflect"
	"strings"

	"github.com/spf13/pflag"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/icptrack/icptrack/exporter"
	"github.com/icptrack/icptrack/internal/config"
)

// exportFlags are the OpenTelemetry settings run, trace and replay share:
// the configuration file, where spans and metrics go over OTLP, and how
// operations become spans.
type exportFlags struct {
	fs           *pflag.FlagSet
	configPath   string
	otlpEndpoint string
	otlpProtocol string
	otlpSignals  string
	logLevel     string
	serviceName  string
	causal       bool
	sampleRatio  float64
	maxSpans     float64

	// file is the configuration file read, if any.
	file *config.File
	// level is the logger's level, once logger made it (a reload
	// changes it).
	level zap.AtomicLevel
}

// register adds the flags; maxSpans is --max-spans-per-second's default.
func (f *exportFlags) register(fs *pflag.FlagSet, maxSpans float64) {
	f.fs = fs
	fs.StringVar(&f.configPath, "config", "",
		"read settings from this YAML file (default "+config.DefaultPath+" when it exists); flags override it")
	fs.StringVar(&f.otlpEndpoint, "otlp-endpoint", "",
		"send spans and metrics over OTLP to this URL, such as http://localhost:4318 (OTEL_EXPORTER_OTLP_* variables are honoured)")
	fs.StringVar(&f.otlpProtocol, "otlp-protocol", "",
		"OTLP protocol: grpc or http/protobuf (default: grpc for port 4317, else http/protobuf)")
	fs.StringVar(&f.otlpSignals, "otlp-signals", "traces,metrics",
		"what to send over OTLP: traces, metrics, or both (Jaeger takes only traces)")
	fs.StringVar(&f.serviceName, "service-name", exporter.DefaultServiceName,
		"service.name of each traced process's spans: text with {exe}, {comm} or {container}")
	fs.BoolVar(&f.causal, "causal-stitching", true,
		"make a thread's sends children of the receive it made before them, so a request across processes is one trace")
	fs.Float64Var(&f.sampleRatio, "trace-sample-ratio", 1,
		"export this fraction of traces as spans, decided per trace so a request is whole or absent (metrics and the event log stay exact)")
	fs.Float64Var(&f.maxSpans, "max-spans-per-second", maxSpans,
		"at most about this many spans a second: under load fewer traces are sampled, counted as sampled out, rather than spans dropped; 0 for no cap")
	fs.StringVar(&f.logLevel, "log-level", "warn", "log level on standard error: debug, info, warn or error")
}

// loadConfig reads the configuration file, if there is one, and takes
// from it every export setting whose flag was not given. take, for the
// caller's own settings, does the same for one key.
func (f *exportFlags) loadConfig() (take func(key, flag string, apply func()), err error) {
	take = func(key, flag string, apply func()) {
		if f.file.Has(key) && !f.fs.Changed(flag) {
			apply()
		}
	}
	file, err := loadConfigFile(f.configPath, f.fs.Changed("config"))
	if err != nil || file == nil {
		return take, err
	}
	f.file = file
	take("log_level", "log-level", func() { f.logLevel = file.LogLevel })
	take("service_name", "service-name", func() { f.serviceName = file.ServiceName })
	take("causal_stitching", "causal-stitching", func() { f.causal = file.CausalStitching })
	take("trace_sample_ratio", "trace-sample-ratio", func() { f.sampleRatio = file.TraceSampleRatio })
	take("max_spans_per_second", "max-spans-per-second", func() { f.maxSpans = file.MaxSpansPerSecond })
	take("otlp.endpoint", "otlp-endpoint", func() { f.otlpEndpoint = file.OTLP.Endpoint })
	take("otlp.protocol", "otlp-protocol", func() { f.otlpProtocol = file.OTLP.Protocol })
	take("otlp.signals", "otlp-signals", func() { f.otlpSignals = strings.Join(file.OTLPSignals, ",") })
	return take, nil
}

// loadConfigFile reads the configuration file: path when --config was
// given, else config.DefaultPath when it exists, else none (nil).
func loadConfigFile(path string, given bool) (*config.File, error) {
	if !given {
		if _, err := os.Stat(config.DefaultPath); err != nil {
			return nil, nil
		}
		path = config.DefaultPath
	}
	file, err := config.Load(path)
	if err != nil {
		return nil, usageError("%v", err)
	}
	return file, nil
}

// check validates the export settings: any mistake is a usage error.
func (f *exportFlags) check() error {
	if err := exporter.ValidateServiceName(f.serviceName); err != nil {
		return usageError("--service-name: %v", err)
	}
	if err := exporter.CheckSampleRatio(f.sampleRatio); err != nil {
		return usageError("--trace-sample-ratio: %v", err)
	}
	if err := exporter.CheckMaxSpansPerSecond(f.maxSpans); err != nil {
		return usageError("--max-spans-per-second: %v", err)
	}
	if _, err := logLevel(f.logLevel); err != nil {
		return usageError("--log-level: %v", err)
	}
	if _, err := f.otlp(); err != nil {
		return usageError("%v", err)
	}
	if _, _, err := f.signals(); err != nil {
		return usageError("--otlp-signals: %v", err)
	}
	return nil
}

// otlp is the OTLP configuration: flags, then the file, then the
// OTEL_EXPORTER_OTLP_* variables.
func (f *exportFlags) otlp() (exporter.OTLPConfig, error) {
	var c exporter.OTLPConfig
	if f.file != nil {
		c = f.file.OTLP
	}
	c.Endpoint, c.Protocol = f.otlpEndpoint, f.otlpProtocol
	if c.Endpoint != "" {
		if _, err := exporter.ParseEndpoint(c.Endpoint); err != nil {
			return c, fmt.Errorf("--otlp-endpoint: %w", err)
		}
	}
	switch c.Protocol {
	case "", exporter.ProtocolGRPC, exporter.ProtocolHTTP:
	default:
		return c, fmt.Errorf("--otlp-protocol %q is not supported: use %s or %s", c.Protocol, exporter.ProtocolGRPC, exporter.ProtocolHTTP)
	}
	c, err := c.WithEnv(os.Getenv)
	if err != nil {
		return c, fmt.Errorf("OTLP settings: %w", err)
	}
	return c, nil
}

// signals reads --otlp-signals.
func (f *exportFlags) signals() (traces, metrics bool, err error) {
	for _, s := range splitList(f.otlpSignals) {
		switch s {
		case "traces":
			traces = true
		case "metrics":
			metrics = true
		default:
			return false, false, fmt.Errorf("%q is not a signal: use traces, metrics or traces,metrics", s)
		}
	}
	if !traces && !metrics {
		return false, false, fmt.Errorf("name traces, metrics or both")
	}
	return traces, metrics, nil
}

// resourceAttributes are OTEL_RESOURCE_ATTRIBUTES with the file's
// resource_attributes over them.
func (f *exportFlags) resourceAttributes() (map[string]string, error) {
	attrs := map[string]string{}
	if v := os.Getenv("OTEL_RESOURCE_ATTRIBUTES"); v != "" {
		env, err := exporter.ParseHeaders(v)
		if err != nil {
			return nil, usageError("OTEL_RESOURCE_ATTRIBUTES: %v: use key=value pairs separated by commas", err)
		}
		attrs = env
	}
	if f.file != nil {
		for k, v := range f.file.ResourceAttributes {
			attrs[k] = v
		}
	}
	return attrs, nil
}

// logger logs to standard error: warnings and errors only, unless
// --log-level asks for more.
func (f *exportFlags) logger() *zap.Logger {
	level, _ := logLevel(f.logLevel)
	f.level = zap.NewAtomicLevelAt(level)
	enc := zap.NewDevelopmentEncoderConfig()
	enc.EncodeTime = zapcore.TimeEncoderOfLayout("15:04:05.000")
	enc.NameKey = "logger"
	core := zapcore.NewCore(zapcore.NewConsoleEncoder(enc), zapcore.Lock(os.Stderr), f.level)
	return zap.New(core).Named("icptrack")
}

func logLevel(s string) (zapcore.Level, error) {
	var l zapcore.Level
	switch s {
	case "debug", "info", "warn", "error":
		return l, l.UnmarshalText([]byte(s))
	}
	return l, fmt.Errorf("%q is not a log level: use debug, info, warn or error", s)
}

// exportTargets say what build makes besides what the flags ask for.
type exportTargets struct {
	// noSpans: metrics mode, which makes no spans.
	noSpans bool
	// prometheus is where to serve /metrics, if anywhere.
	prometheus string
	// producer adds metrics from outside the SDK (metrics mode).
	producer *exporter.KernelMetrics
	// resource adjusts the spans' and metrics' resources (replay).
	resource func(*exporter.ResourceOptions)
}

// build makes the span and metric outputs the settings ask for into o.
func (f *exportFlags) build(o *outputs, log *zap.Logger, t exportTargets) (*outputs, error) {
	spans, err := f.spanSettings(t)
	if err != nil {
		return nil, err
	}
	if spans.enabled() {
		out, err := spans.start(log, o.own)
		if err != nil {
			return nil, &exitError{code: exitFailure, err: err}
		}
		o.sender, o.spans = out.sender, out.spans
	}
	mo, err := f.metricOutputs(t)
	if err != nil {
		return nil, err
	}
	if mo.enabled() {
		if o.meters, o.metrics, err = mo.start(o, log, t); err != nil {
			o.shutdown()
			return nil, &exitError{code: exitFailure, err: err}
		}
		if err := o.observeSampledOut(); err != nil {
			o.shutdown()
			return nil, &exitError{code: exitFailure, err: err}
		}
	}
	return o, nil
}

// resource is the spans' and metrics' resource.
func (f *exportFlags) resource(t exportTargets) (exporter.ResourceOptions, error) {
	attrs, err := f.resourceAttributes()
	if err != nil {
		return exporter.ResourceOptions{}, err
	}
	res := exporter.ResourceOptions{ServiceName: f.serviceName, Attributes: attrs}
	if t.resource != nil {
		t.resource(&res)
	}
	return res, nil
}

// spanSettings are what spans over OTLP are made with; a reload that
// changes them makes new ones (sameSpans).
type spanSettings struct {
	// otlp is where the spans go; not enabled: no spans.
	otlp exporter.OTLPConfig
	opts exporter.SpanOptions
}

// spanSettings reads where spans go and how they are made.
func (f *exportFlags) spanSettings(t exportTargets) (spanSettings, error) {
	otlp, err := f.otlp()
	if err != nil {
		return spanSettings{}, usageError("%v", err)
	}
	traces, _, err := f.signals()
	if err != nil {
		return spanSettings{}, usageError("--otlp-signals: %v", err)
	}
	if !traces || t.noSpans {
		return spanSettings{}, nil
	}
	res, err := f.resource(t)
	if err != nil {
		return spanSettings{}, err
	}
	opts := exporter.DefaultSpanOptions()
	opts.CausalStitching = f.causal
	opts.Resource = res
	if f.file != nil {
		if f.file.Has("otlp.batch_size") {
			opts.BatchSize = f.file.BatchSize
		}
		if f.file.Has("otlp.batch_timeout") {
			opts.BatchTimeout = f.file.BatchTimeout
		}
	}
	opts.SampleRatio, opts.MaxSpansPerSecond = f.sampleRatio, f.maxSpans
	return spanSettings{otlp: otlp, opts: opts}, nil
}

func (s spanSettings) enabled() bool { return s.otlp.Enabled() }

// sameSpans reports whether spans made with a and b are alike but for
// their sampling, which a reload changes in the running spans.
func sameSpans(a, b spanSettings) bool {
	a.opts.SampleRatio, a.opts.MaxSpansPerSecond = 0, 0
	b.opts.SampleRatio, b.opts.MaxSpansPerSecond = 0, 0
	return reflect.DeepEqual(a, b)
}

// spanOutput are spans over OTLP: the sender and the spans that feed it.
type spanOutput struct {
	sender *exporter.TraceSender
	spans  *exporter.Spans
}

// start makes the sender and the spans.
func (s spanSettings) start(log *zap.Logger, own *exporter.OwnAddrs) (*spanOutput, error) {
	sender, err := exporter.NewTraceSender(s.otlp, log, own)
	if err != nil {
		return nil, err
	}
	opts := s.opts
	opts.QueueFill = sender.QueueFill
	log.Info("sending spans over OTLP", zap.String("endpoint", sender.Endpoint()), zap.Bool("causal_stitching", opts.CausalStitching),
		zap.Float64("trace_sample_ratio", opts.SampleRatio), zap.Float64("max_spans_per_second", opts.MaxSpansPerSecond))
	return &spanOutput{sender: sender, spans: exporter.NewEncodedSpans(opts, sender.SendEncoded, sender.Buffer)}, nil
}

// Close shuts the sender down, for spans a reload made and did not use.
func (s *spanOutput) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
	defer cancel()
	return s.sender.Shutdown(ctx)
}

// metricSettings are where metrics go; a reload that changes them makes
// new outputs (exporter.MeterProvider.Prepare).
type metricSettings struct {
	exporter.MetricOutputs
}

// metricOutputs reads where metrics go. Log, Own and Producer are left
// for start, so that two settings compare.
func (f *exportFlags) metricOutputs(t exportTargets) (metricSettings, error) {
	otlp, err := f.otlp()
	if err != nil {
		return metricSettings{}, usageError("%v", err)
	}
	_, metrics, err := f.signals()
	if err != nil {
		return metricSettings{}, usageError("--otlp-signals: %v", err)
	}
	if !metrics {
		otlp = exporter.OTLPConfig{}
	}
	res, err := f.resource(t)
	if err != nil {
		return metricSettings{}, err
	}
	mo := exporter.MetricOutputs{Prometheus: t.prometheus, OTLP: otlp, Attributes: res.Attributes,
		HostName: res.HostName, NoHostName: res.NoHostName}
	if f.file != nil && f.file.Has("otlp.metrics_interval") {
		mo.Interval = f.file.MetricsInterval
	}
	return metricSettings{mo}, nil
}

func (m metricSettings) enabled() bool { return m.OTLP.Enabled() || m.Prometheus != "" }

// outputs are the settings with what they need to start.
func (m metricSettings) outputs(o *outputs, log *zap.Logger, t exportTargets) exporter.MetricOutputs {
	mo := m.MetricOutputs
	mo.Log, mo.Own = log, o.own
	if t.producer != nil {
		mo.Producer = t.producer
	}
	return mo
}

// start makes the metrics and their outputs.
func (m metricSettings) start(o *outputs, log *zap.Logger, t exportTargets) (*exporter.MeterProvider, *exporter.Metrics, error) {
	meters, err := exporter.NewMeterProvider(m.outputs(o, log, t))
	if err != nil {
		return nil, nil, err
	}
	metrics, err := exporter.NewMetrics(meters, o.selfStats)
	if err != nil {
		_ = meters.Shutdown(context.Background())
		return nil, nil, err
	}
	return meters, metrics, nil
}
