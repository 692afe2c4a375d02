package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/pflag"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/icptrack/icptrack/exporter"
	"github.com/icptrack/icptrack/filter"
	"github.com/icptrack/icptrack/flow"
	"github.com/icptrack/icptrack/internal/config"
	"github.com/icptrack/icptrack/probes"
)

// The modes of --mode.
const (
	modeEvents  = "events"
	modeMetrics = "metrics"
)

// defaultCoalesce is --coalesce's default: a burst of a stream's reads or
// writes within a millisecond is one record (README: "Coalescing").
const defaultCoalesce = time.Millisecond

// captureFlags are the flags run and trace share.
type captureFlags struct {
	fs            *pflag.FlagSet
	configPath    string
	mode          string
	mechanisms    string
	filter        string
	payload       int
	events        string
	format        string
	ringBuffer    string
	memoryLimit   string
	memLimit      int64 // memoryLimit in bytes, once config has checked it
	drainInterval time.Duration
	coalesce      time.Duration
	attachOnly    bool
	cpuProfile    string
	cmdline       bool
	otlpEndpoint  string
	otlpProtocol  string
	otlpSignals   string
	prometheus    string
	logLevel      string
	serviceName   string
	causal        bool
	sampleRatio   float64
	maxSpans      float64

	// file is the configuration file read, if any.
	file *config.File
	// compiled is filter, once config has checked it; nil for none.
	compiled *filter.Filter
}

func (f *captureFlags) register(fs *pflag.FlagSet) {
	f.fs = fs
	d := probes.DefaultConfig()
	fs.StringVar(&f.configPath, "config", "",
		"read settings from this YAML file (default "+config.DefaultPath+" when it exists); flags override it")
	fs.StringVar(&f.mode, "mode", modeEvents,
		"events: every operation, matched to its peer, as spans, log and metrics; metrics: only metrics, counted in the kernel (a fraction of the cost)")
	fs.StringVar(&f.mechanisms, "mechanisms", "all",
		"comma-separated mechanisms to trace: "+strings.Join(flow.MechanismNames(), ", "))
	fs.StringVar(&f.filter, "filter", "",
		`keep only the operations that match this expression, such as 'comm glob "nginx*" and bytes > 4KiB' (README: Filters)`)
	fs.IntVar(&f.payload, "payload", 0,
		fmt.Sprintf("copy the first N bytes of each operation's data into the event log and spans (0 to %d; off by default)", probes.MaxPayloadBytes))
	fs.StringVar(&f.events, "events", "", "write the event log to this file; - for standard output")
	fs.StringVar(&f.format, "format", string(exporter.JSONL),
		"the event log's format: jsonl, csv, text (for people), otlp-json or otlp-proto (OTLP logs requests, as the Collector's file exporter writes them)")
	fs.BoolVar(&f.cmdline, "cmdline", false, "add each process's command line to its operations")
	fs.StringVar(&f.otlpEndpoint, "otlp-endpoint", "",
		"send spans and metrics over OTLP to this URL, such as http://localhost:4318 (OTEL_EXPORTER_OTLP_* variables are honoured)")
	fs.StringVar(&f.otlpProtocol, "otlp-protocol", "",
		"OTLP protocol: grpc or http/protobuf (default: grpc for port 4317, else http/protobuf)")
	fs.StringVar(&f.otlpSignals, "otlp-signals", "traces,metrics",
		"what to send over OTLP: traces, metrics, or both (Jaeger takes only traces)")
	fs.StringVar(&f.prometheus, "prometheus", "", "serve Prometheus metrics on this address, such as 127.0.0.1:9464 (path /metrics)")
	fs.StringVar(&f.serviceName, "service-name", exporter.DefaultServiceName,
		"service.name of each traced process's spans: text with {exe}, {comm} or {container}")
	fs.BoolVar(&f.causal, "causal-stitching", true,
		"make a thread's sends children of the receive it made before them, so a request across processes is one trace")
	fs.Float64Var(&f.sampleRatio, "trace-sample-ratio", 1,
		"export this fraction of traces as spans, decided per trace so a request is whole or absent (metrics and the event log stay exact)")
	fs.Float64Var(&f.maxSpans, "max-spans-per-second", exporter.DefaultMaxSpansPerSecond,
		"at most about this many spans a second: under load fewer traces are sampled, counted as sampled out, rather than spans dropped; 0 for no cap")
	fs.StringVar(&f.logLevel, "log-level", "warn", "log level on standard error: debug, info, warn or error")
	fs.StringVar(&f.ringBuffer, "ring-buffer", sizeString(d.RingBufferBytes),
		"size of the kernel's ring buffer of events: a power of two, such as 4MiB or 64MiB")
	fs.StringVar(&f.memoryLimit, "memory-limit", defaultMemoryLimit,
		"soft limit on icptrack's own memory (Go heap and runtime), such as 96MiB; 0 for none (GOMEMLIMIT, if set, wins)")
	fs.DurationVar(&f.drainInterval, "drain-interval", d.DrainInterval,
		"how often to read the ring buffer when it is not filling up")
	fs.DurationVar(&f.coalesce, "coalesce", defaultCoalesce,
		"send a run of one thread's reads or writes on one stream (pipe, FIFO, unix stream, TCP) started within this window as one record with its count; 0 for a record per operation")
	fs.BoolVar(&f.attachOnly, "attach-only", false, "attach the hooks with programs that do nothing (for benchmarks)")
	_ = fs.MarkHidden("attach-only")
	fs.StringVar(&f.cpuProfile, "cpuprofile", "", "write icptrack's CPU profile to this file (for development)")
	_ = fs.MarkHidden("cpuprofile")
}

// loadConfig reads the configuration file, if there is one, and takes
// from it every setting whose flag was not given.
func (f *captureFlags) loadConfig() error {
	path := f.configPath
	if !f.fs.Changed("config") {
		if _, err := os.Stat(config.DefaultPath); err != nil {
			return nil
		}
		path = config.DefaultPath
	}
	file, err := config.Load(path)
	if err != nil {
		return usageError("%v", err)
	}
	f.file = file
	take := func(key, flag string, apply func()) {
		if file.Has(key) && !f.fs.Changed(flag) {
			apply()
		}
	}
	take("mode", "mode", func() { f.mode = file.Mode })
	take("mechanisms", "mechanisms", func() { f.mechanisms = file.Mechanisms })
	take("filter", "filter", func() { f.filter = file.Filter })
	take("payload", "payload", func() { f.payload = file.Payload })
	take("events", "events", func() { f.events = file.Events })
	take("format", "format", func() { f.format = file.Format })
	take("cmdline", "cmdline", func() { f.cmdline = file.Cmdline })
	take("ring_buffer", "ring-buffer", func() { f.ringBuffer = file.RingBuffer })
	take("drain_interval", "drain-interval", func() { f.drainInterval = file.DrainInterval })
	take("coalesce", "coalesce", func() { f.coalesce = file.Coalesce })
	take("memory_limit", "memory-limit", func() { f.memoryLimit = file.MemoryLimit })
	take("log_level", "log-level", func() { f.logLevel = file.LogLevel })
	take("service_name", "service-name", func() { f.serviceName = file.ServiceName })
	take("causal_stitching", "causal-stitching", func() { f.causal = file.CausalStitching })
	take("trace_sample_ratio", "trace-sample-ratio", func() { f.sampleRatio = file.TraceSampleRatio })
	take("max_spans_per_second", "max-spans-per-second", func() { f.maxSpans = file.MaxSpansPerSecond })
	take("prometheus", "prometheus", func() { f.prometheus = file.Prometheus })
	take("otlp.endpoint", "otlp-endpoint", func() { f.otlpEndpoint = file.OTLP.Endpoint })
	take("otlp.protocol", "otlp-protocol", func() { f.otlpProtocol = file.OTLP.Protocol })
	take("otlp.signals", "otlp-signals", func() { f.otlpSignals = strings.Join(file.OTLPSignals, ",") })
	return nil
}

// config turns the flags into a tracer configuration, or a usage error.
func (f *captureFlags) config() (probes.Config, error) {
	cfg := probes.DefaultConfig()
	if err := f.loadConfig(); err != nil {
		return cfg, err
	}
	var err error
	switch f.mode {
	case modeEvents:
	case modeMetrics:
		cfg.MetricsOnly = true
		if f.events != "" {
			return cfg, usageError("--events needs --mode events: metrics mode counts operations in the kernel and sends none")
		}
		if f.payload != 0 {
			return cfg, usageError("--payload needs --mode events: metrics mode sends no data")
		}
	default:
		return cfg, usageError("--mode %q is not a mode: use events or metrics", f.mode)
	}
	if _, err := exporter.ParseFormat(f.format); err != nil {
		return cfg, usageError("--format: %v", err)
	}
	if f.fs.Changed("format") && f.events == "" {
		return cfg, usageError("--format is the event log's: add --events PATH (- for standard output)")
	}
	if cfg.Mechanisms, err = flow.ParseMechanisms(f.mechanisms); err != nil {
		return cfg, usageError("--mechanisms: %v", err)
	}
	if strings.TrimSpace(f.mechanisms) != "all" {
		// Named: icptrack fails rather than run without one of them.
		cfg.Required = cfg.Mechanisms
	}
	if f.payload < 0 || f.payload > probes.MaxPayloadBytes {
		return cfg, usageError("--payload %d is out of range: use 0 (off) to %d bytes", f.payload, probes.MaxPayloadBytes)
	}
	cfg.PayloadBytes = f.payload
	if err := f.checkFilter(&cfg); err != nil {
		return cfg, err
	}
	if cfg.RingBufferBytes, err = config.ParseSize(f.ringBuffer); err != nil {
		return cfg, usageError("--ring-buffer: %v", err)
	}
	if n := cfg.RingBufferBytes; n < os.Getpagesize() || n&(n-1) != 0 {
		return cfg, usageError("--ring-buffer %s is not a power of two of at least %d bytes: try 16MiB", f.ringBuffer, os.Getpagesize())
	}
	if f.memoryLimit == "0" {
		f.memLimit = 0
	} else if n, err := config.ParseSize(f.memoryLimit); err != nil {
		return cfg, usageError("--memory-limit: %v", err)
	} else if n < minMemoryLimit {
		return cfg, usageError("--memory-limit %s is too little to run in: use at least %s, or 0 for no limit", f.memoryLimit, sizeString(minMemoryLimit))
	} else {
		f.memLimit = int64(n)
	}
	if f.drainInterval <= 0 {
		return cfg, usageError("--drain-interval %s must be positive, such as 50ms", f.drainInterval)
	}
	cfg.DrainInterval = f.drainInterval
	if f.coalesce < 0 {
		return cfg, usageError("--coalesce %s is negative: use 0 (a record per operation) or a window such as 1ms", f.coalesce)
	}
	cfg.Coalesce = f.coalesce
	cfg.AttachOnly = f.attachOnly
	cfg.Cmdline = f.cmdline
	if err := exporter.ValidateServiceName(f.serviceName); err != nil {
		return cfg, usageError("--service-name: %v", err)
	}
	if err := exporter.CheckSampleRatio(f.sampleRatio); err != nil {
		return cfg, usageError("--trace-sample-ratio: %v", err)
	}
	if err := exporter.CheckMaxSpansPerSecond(f.maxSpans); err != nil {
		return cfg, usageError("--max-spans-per-second: %v", err)
	}
	if _, err := logLevel(f.logLevel); err != nil {
		return cfg, usageError("--log-level: %v", err)
	}
	if f.prometheus != "" {
		if err := config.CheckListenAddress(f.prometheus); err != nil {
			return cfg, usageError("--prometheus: %v", err)
		}
	}
	if _, err := f.otlp(); err != nil {
		return cfg, usageError("%v", err)
	}
	if _, _, err := f.signals(); err != nil {
		return cfg, usageError("--otlp-signals: %v", err)
	}
	return cfg, nil
}

// checkFilter parses --filter and narrows the mechanisms traced to those
// it can match (README: "Filters", "Pushdown").
func (f *captureFlags) checkFilter(cfg *probes.Config) error {
	if strings.TrimSpace(f.filter) == "" {
		return nil
	}
	if f.mode == modeMetrics {
		return usageError("--filter needs --mode events: metrics mode counts operations in the kernel, where a filter cannot run")
	}
	flt, err := filter.Parse(f.filter)
	if err != nil {
		var fe *filter.Error
		if errors.As(err, &fe) {
			return usageError("--filter: %s", fe.Caret())
		}
		return usageError("--filter: %v", err)
	}
	if flt.UsesPayload() && f.payload == 0 {
		return usageError("--filter tests payload, which needs payload capture: add --payload N, the bytes to capture of each operation (such as --payload 256)")
	}
	if ms := flt.Pushdown().Mechanisms; ms != 0 {
		// Only the mechanisms the filter can match are attached: the
		// others' operations would all be left out.
		if cfg.Mechanisms&ms == 0 {
			return usageError("--filter keeps only %s, which --mechanisms %s leaves out: nothing would match", ms, f.mechanisms)
		}
		cfg.Mechanisms &= ms
		cfg.Required &= ms
	}
	f.compiled = flt
	return nil
}

// otlp is the OTLP configuration: flags, then the file, then the
// OTEL_EXPORTER_OTLP_* variables.
func (f *captureFlags) otlp() (exporter.OTLPConfig, error) {
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
func (f *captureFlags) signals() (traces, metrics bool, err error) {
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
func (f *captureFlags) resourceAttributes() (map[string]string, error) {
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
func (f *captureFlags) logger() *zap.Logger {
	level, _ := logLevel(f.logLevel)
	enc := zap.NewDevelopmentEncoderConfig()
	enc.EncodeTime = zapcore.TimeEncoderOfLayout("15:04:05.000")
	enc.NameKey = "logger"
	core := zapcore.NewCore(zapcore.NewConsoleEncoder(enc), zapcore.Lock(os.Stderr), level)
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

// outputs builds the OpenTelemetry outputs the settings ask for. log is
// where they log.
func (f *captureFlags) outputs(log *zap.Logger) (*outputs, error) {
	o := &outputs{log: log, own: &exporter.OwnAddrs{}, filter: f.compiled}
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
	if f.mode == modeMetrics {
		traces = false // metrics mode makes no spans
		o.kernel = exporter.NewKernelMetrics()
	}
	if otlp.Enabled() && traces {
		if o.sender, err = exporter.NewTraceSender(otlp, log, o.own); err != nil {
			return nil, &exitError{code: exitFailure, err: err}
		}
		opts := exporter.DefaultSpanOptions()
		opts.CausalStitching = f.causal
		opts.Resource = exporter.ResourceOptions{ServiceName: f.serviceName, Attributes: attrs}
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
	if otlp.Enabled() || f.prometheus != "" {
		mo := exporter.MetricOutputs{Prometheus: f.prometheus, OTLP: otlp, Attributes: attrs, Log: log, Own: o.own}
		if o.kernel != nil {
			mo.Producer = o.kernel
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

// session is what run and trace share once their settings are checked:
// the event log, the outputs, and the loaded and attached tracer.
type session struct {
	events io.WriteCloser    // nil without --events
	log    exporter.OpWriter // writes events in --format; nil without --events
	out    *outputs
	tracer *probes.Tracer
	close  func()
}

// start opens the event log (first, so that a bad path fails fast),
// builds the outputs, sets icptrack's memory limit, loads the tracer with
// cfg and starts the CPU profile if asked. The caller runs close when it
// is done with them.
func (f *captureFlags) start(cfg probes.Config) (*session, error) {
	events, err := f.openEvents()
	if err != nil {
		return nil, err
	}
	log := f.logger()
	release := func() {
		_ = log.Sync()
		if events != nil {
			events.Close()
		}
	}
	out, err := f.outputs(log)
	if err != nil {
		release()
		return nil, err
	}
	applyMemoryLimit(f.memLimit)
	tracer, err := probes.Open(cfg)
	if err != nil {
		_ = out.shutdown()
		release()
		return nil, &exitError{code: exitFailure, err: err}
	}
	out.tracer = tracer
	for _, st := range tracer.Unavailable() {
		log.Warn(st.Mechanism.String()+" is not traced on this kernel; the other mechanisms are (icptrack check shows what the kernel offers)",
			zap.String("kernel", probes.KernelRelease()), zap.Error(st.Err))
	}
	stopProfile := func() {}
	if f.cpuProfile != "" {
		if stopProfile, err = startCPUProfile(f.cpuProfile); err != nil {
			_ = out.shutdown()
			tracer.Close()
			release()
			return nil, &exitError{code: exitFailure, err: err}
		}
	}
	var w exporter.OpWriter
	if events != nil {
		format, _ := exporter.ParseFormat(f.format) // checked by config
		w, _ = exporter.NewWriter(format, events, exporter.WriterOptions{Colour: isTerminal(events)})
	}
	return &session{events: events, log: w, out: out, tracer: tracer, close: func() {
		stopProfile()
		tracer.Close()
		release()
	}}, nil
}

// openEvents opens the event log's destination before anything else is
// started, so that a bad path fails fast.
func (f *captureFlags) openEvents() (io.WriteCloser, error) {
	switch f.events {
	case "":
		return nil, nil
	case "-":
		return nopCloser{os.Stdout}, nil
	}
	w, err := os.OpenFile(f.events, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return nil, &exitError{code: exitFailure,
			err: fmt.Errorf("cannot write the event log: %v: choose a writable path for --events, or - for standard output", err)}
	}
	return w, nil
}

type nopCloser struct{ io.Writer }

func (nopCloser) Close() error { return nil }

func sizeString(n int) string {
	switch {
	case n%(1<<30) == 0:
		return strconv.Itoa(n>>30) + "GiB"
	case n%(1<<20) == 0:
		return strconv.Itoa(n>>20) + "MiB"
	case n%(1<<10) == 0:
		return strconv.Itoa(n>>10) + "KiB"
	}
	return strconv.Itoa(n)
}
