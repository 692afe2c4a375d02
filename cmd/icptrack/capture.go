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
	exportFlags
	// appendEvents: the event log is appended to, not cut (trace, which
	// runs as a service and is restarted).
	appendEvents  bool
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
	prometheus    string
	syslog        syslogFlags
	database      databaseFlags
	store         storeFlags
	api           apiFlags

	// compiled is filter, once config has checked it; nil for none.
	compiled *filter.Filter
}

func (f *captureFlags) register(fs *pflag.FlagSet) {
	f.exportFlags.register(fs, exporter.DefaultMaxSpansPerSecond)
	d := probes.DefaultConfig()
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
	fs.StringVar(&f.prometheus, "prometheus", "", "serve Prometheus metrics on this address, such as 127.0.0.1:9464 (path /metrics)")
	f.syslog.register(fs)
	f.database.register(fs)
	f.store.register(fs)
	f.api.register(fs)
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
	take, err := f.exportFlags.loadConfig()
	if err != nil || f.file == nil {
		return err
	}
	file := f.file
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
	take("prometheus", "prometheus", func() { f.prometheus = file.Prometheus })
	f.syslog.take(file, take)
	f.database.fromFile(file, take)
	f.store.take(file, take)
	f.api.take(file, take)
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
	if err := f.syslog.check(f.mode, f.payload); err != nil {
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
	if err := f.exportFlags.check(); err != nil {
		return cfg, err
	}
	if f.prometheus != "" {
		if err := config.CheckListenAddress(f.prometheus); err != nil {
			return cfg, usageError("--prometheus: %v", err)
		}
	}
	if err := f.database.check(f.mode); err != nil {
		return cfg, err
	}
	if err := f.store.check(f.mode); err != nil {
		return cfg, err
	}
	if err := f.api.check(f.mode); err != nil {
		return cfg, err
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

// outputs builds the OpenTelemetry outputs the settings ask for. log is
// where they log.
func (f *captureFlags) outputs(log *zap.Logger) (*outputs, error) {
	o := &outputs{log: log, own: &exporter.OwnAddrs{}, filter: f.compiled}
	t := exportTargets{prometheus: f.prometheus}
	if f.mode == modeMetrics {
		o.kernel = exporter.NewKernelMetrics()
		t.noSpans, t.producer = true, o.kernel
	}
	sys, err := f.syslog.sink(f.file, log, o.own)
	if err != nil {
		return nil, err
	}
	if sys != nil {
		o.setSyslog(sys)
		o.sinks = append(o.sinks, sys)
	}
	return f.build(o, log, t)
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
	events, appending, err := f.openEvents()
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
	if err := f.database.open(out, log); err != nil {
		out.closeSinks()
		_ = out.shutdown()
		release()
		return nil, err
	}
	if err := f.store.open(out, log); err != nil {
		out.closeSinks()
		_ = out.shutdown()
		release()
		return nil, err
	}
	if err := f.api.open(out, &f.store, log); err != nil {
		out.closeSinks()
		_ = out.shutdown()
		release()
		return nil, err
	}
	applyMemoryLimit(f.memLimit)
	tracer, err := probes.Open(cfg)
	if err != nil {
		out.closeSinks()
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
			out.closeSinks()
			_ = out.shutdown()
			tracer.Close()
			release()
			return nil, &exitError{code: exitFailure, err: err}
		}
	}
	var w exporter.OpWriter
	if events != nil {
		format, _ := exporter.ParseFormat(f.format) // checked by config
		w, _ = exporter.NewWriter(format, events, exporter.WriterOptions{Colour: isTerminal(events), Appending: appending})
	}
	return &session{events: events, log: w, out: out, tracer: tracer, close: func() {
		stopProfile()
		tracer.Close()
		release()
	}}, nil
}

// openEvents opens the event log's destination before anything else is
// started, so that a bad path fails fast. appending says it already
// holds a log that the operations follow on.
func (f *captureFlags) openEvents() (w io.WriteCloser, appending bool, err error) {
	switch f.events {
	case "":
		return nil, false, nil
	case "-":
		return nopCloser{os.Stdout}, false, nil
	}
	file, appending, err := openEventLog(f.events, f.appendEvents)
	if err != nil {
		return nil, false, &exitError{code: exitFailure,
			err: fmt.Errorf("%v: choose a writable path for --events, or - for standard output", err)}
	}
	return file, appending, nil
}

// openEventLog opens the event log file: for appending (trace, a reload),
// so that neither a restart nor a reload cuts what it holds, or cut to
// nothing (run). appending says the file already holds a log.
func openEventLog(path string, appendTo bool) (f *os.File, appending bool, err error) {
	flags := os.O_WRONLY | os.O_CREATE | os.O_TRUNC
	if appendTo {
		flags = os.O_WRONLY | os.O_CREATE | os.O_APPEND
	}
	if f, err = os.OpenFile(path, flags, 0o644); err != nil {
		return nil, false, fmt.Errorf("cannot write the event log: %v", err)
	}
	if appendTo {
		if st, err := f.Stat(); err == nil && st.Size() > 0 {
			appending = true
		}
	}
	return f, appending, nil
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
