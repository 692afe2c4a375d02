package main

import (
	"fmt"
	"os"
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
	otlp, err := f.otlp()
	if err != nil {
		return nil, usageError("%v", err)
	}
	attrs, err := f.resourceAttributes()
	if err != nil {
		return nil, err
	}
	traces, metrics, err := f.signals()
	if err != nil {
		return nil, usageError("--otlp-signals: %v", err)
	}
	res := exporter.ResourceOptions{ServiceName: f.serviceName, Attributes: attrs}
	if t.resource != nil {
		t.resource(&res)
	}
	if otlp.Enabled() && traces && !t.noSpans {
		if o.sender, err = exporter.NewTraceSender(otlp, log, o.own); err != nil {
			return nil, &exitError{code: exitFailure, err: err}
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
		opts.SampleRatio, opts.MaxSpansPerSecond, opts.QueueFill = f.sampleRatio, f.maxSpans, o.sender.QueueFill
		o.spans = exporter.NewEncodedSpans(opts, o.sender.SendEncoded, o.sender.Buffer)
		log.Info("sending spans over OTLP", zap.String("endpoint", o.sender.Endpoint()), zap.Bool("causal_stitching", f.causal),
			zap.Float64("trace_sample_ratio", f.sampleRatio), zap.Float64("max_spans_per_second", f.maxSpans))
	}
	if !metrics {
		otlp = exporter.OTLPConfig{}
	}
	if otlp.Enabled() || t.prometheus != "" {
		mo := exporter.MetricOutputs{Prometheus: t.prometheus, OTLP: otlp, Attributes: res.Attributes, Log: log, Own: o.own,
			HostName: res.HostName, NoHostName: res.NoHostName}
		if t.producer != nil {
			mo.Producer = t.producer
		}
		if f.file != nil && f.file.Has("otlp.metrics_interval") {
			mo.Interval = f.file.MetricsInterval
		}
		if o.meters, err = exporter.NewMeterProvider(mo); err != nil {
			o.shutdown()
			return nil, &exitError{code: exitFailure, err: err}
		}
		if o.metrics, err = exporter.NewMetrics(o.meters, o.selfStats); err != nil {
			o.shutdown()
			return nil, &exitError{code: exitFailure, err: err}
		}
		if o.spans != nil {
			if _, err = exporter.ObserveSampledOut(o.meters, o.spans.SampledOut); err != nil {
				o.shutdown()
				return nil, &exitError{code: exitFailure, err: err}
			}
		}
	}
	return o, nil
}
