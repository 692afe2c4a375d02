package main

import (
	"errors"
	"io"
	"os"
	"reflect"
	"slices"
	"strings"

	"github.com/spf13/pflag"
	"go.uber.org/zap"

	"github.com/icptrack/icptrack/exporter"
	"github.com/icptrack/icptrack/exporter/postgres"
	"github.com/icptrack/icptrack/flow"
	"github.com/icptrack/icptrack/internal/config"
	"github.com/icptrack/icptrack/probes"
)

// What SIGHUP (systemctl reload) re-reads, and what it cannot change
// while icptrack runs (README: "Reloading the configuration").
//
// The settings are read again exactly as at the start: the command
// line's flags, then the configuration file for what they leave. A file
// with a mistake changes nothing. The reloadable settings are handed to
// the pipeline, which applies them between two operations on its own
// goroutine, so that each operation goes wholly to the outputs before or
// wholly to those after; the kernel's side is not touched, so nothing is
// missed while it happens. The outputs taken out are flushed and closed
// in the background.

// reloadableFields are the configuration file's settings a reload
// applies; every other one takes effect at the next start.
var reloadableFields = []string{"Filter", "Events", "Format", "TraceSampleRatio", "MaxSpansPerSecond", "Syslog", "Database", "LogLevel",
	"OTLP", "OTLPSignals", "BatchSize", "BatchTimeout", "MetricsInterval", "ServiceName", "CausalStitching", "ResourceAttributes", "Prometheus",
	"Store", "MemoryLimit"}

// partlyReloadable are the file's settings of which a reload applies only
// some; each func names those of the others that changed. The API's
// credentials are reloaded, its listener is not.
var partlyReloadable = map[string]func(a, b *config.File) []string{"API": apiRestartOnly}

// reloadRequest is a reload on its way to the pipeline's goroutine.
type reloadRequest struct {
	reload changeSet
	// kernel, if set, changes what the kernel traces (the selectors). It
	// runs on the pipeline's goroutine just before the outputs change,
	// right after a drain, so that the kernel and the outputs change at
	// nearly the same point; if it fails, nothing changes.
	kernel func() error
	// apply puts in place, with reload, what is not a sink (the API's
	// credentials, the store's new settings); they cannot fail.
	apply []func()
	// done is closed once the pipeline has applied it, or err says why
	// it could not.
	done chan struct{}
	err  error
}

// reloader re-reads the settings on SIGHUP.
type reloader struct {
	running  *traceFlags
	log      *zap.Logger
	out      *outputs
	requests chan *reloadRequest
	// attached are the mechanisms the tracer was started with.
	attached flow.MechanismSet
	// level is the logger's level, which log_level changes.
	level zap.AtomicLevel
	// tracer takes the new selectors, and selector is what it runs with
	// (nil: the whole host).
	tracer   selectorSetter
	selector *probes.Selector
}

// selectorSetter changes the kernel's selectors (probes.Tracer).
type selectorSetter interface {
	SetSelector(*probes.Selector) error
}

// reload reads the settings again and hands what changed to the
// pipeline; it logs what it did, or why it kept the running settings.
func (r *reloader) reload(stop <-chan struct{}) {
	next, cfg, err := rereadTraceFlags(r.running)
	if err != nil {
		r.log.Error("reload: the configuration has a mistake, so icptrack keeps running as it was; fix it and reload again", zap.Error(err))
		return
	}
	sel, pushed, err := next.kernelSelector()
	if err != nil {
		var ee *exitError
		if errors.As(err, &ee) && ee.err != nil {
			err = ee.err
		}
		r.log.Error("reload: the selectors have a mistake, so icptrack keeps running as it was; fix them and reload again", zap.Error(err))
		return
	}
	rel, built, err := r.changes(next)
	var apply []func()
	if err == nil {
		apply, err = r.apiAndStore(next, &rel, &built)
	}
	closeBuilt := func() {
		for _, s := range built {
			_ = s.Close()
		}
	}
	if err != nil {
		closeBuilt()
		r.log.Error("reload: an output could not be set up, so icptrack keeps running as it was", zap.Error(err))
		return
	}
	req := &reloadRequest{reload: rel, apply: apply, done: make(chan struct{})}
	if !sameSelector(r.selector, sel) {
		req.kernel = func() error { return r.tracer.SetSelector(sel) }
	}
	select {
	case r.requests <- req:
	case <-stop: // icptrack is stopping: the running outputs finish the run
		closeBuilt()
		return
	}
	select {
	case <-req.done:
	case <-stop:
		return
	}
	if req.err != nil {
		closeBuilt()
		r.log.Error("reload: the kernel did not take the new selectors, so icptrack keeps running as it was", zap.Error(req.err))
		return
	}
	r.selector = sel
	if lvl, err := logLevel(next.logLevel); err == nil {
		r.level.SetLevel(lvl)
	}
	if next.memLimit != r.running.memLimit {
		reapplyMemoryLimit(next.memLimit)
	}
	if later := restartOnlyChanges(r.running.file, next.file); len(later) > 0 {
		r.log.Warn("reload: these settings changed but take effect only when icptrack restarts (systemctl restart icptrack)",
			zap.Strings("settings", later))
	}
	if missing := cfg.Mechanisms &^ r.attached; missing != 0 {
		r.log.Warn("reload: the new filter or mechanisms can match mechanisms that are not attached; they are traced from the next start",
			zap.Stringer("not_attached", missing), zap.Stringer("attached", r.attached))
	}
	r.log.Info("reloaded the configuration", zap.String("filter", next.filter), zap.String("events", next.events),
		zap.String("pids", next.pids), zap.String("comms", next.comms), zap.String("cgroup", next.cgroup),
		zap.String("container", next.container), zap.Ints("filter_pids", pushed),
		zap.Float64("trace_sample_ratio", next.sampleRatio), zap.Float64("max_spans_per_second", next.maxSpans),
		zap.String("syslog", next.syslog.url), zap.Bool("database", next.database.url != ""))
	r.running = next
}

// changes builds what a reload to next changes: the filter always, the
// event log opened again (so that a rotated log is let go of), and the
// outputs whose settings changed. built are the outputs it opened, for
// the caller to close if it fails.
func (r *reloader) changes(next *traceFlags) (rel changeSet, built []io.Closer, err error) {
	cur := r.running
	rel.Filter = next.compiled
	if next.sampleRatio != cur.sampleRatio || next.maxSpans != cur.maxSpans {
		rel.Sampling = &exporter.Sampling{Ratio: next.sampleRatio, MaxSpansPerSecond: next.maxSpans}
	}
	switch {
	case next.events != "":
		sink, err := reopenEvents(next.events, next.format)
		if err != nil {
			return rel, built, err
		}
		rel.Events = sink
		built = append(built, sink)
	case cur.events != "":
		rel.Remove = append(rel.Remove, "events")
	}
	rel.Sinks = map[string]exporter.Sink{}
	if next.syslog.url != cur.syslog.url || next.syslog.filter != cur.syslog.filter || !sameSection(cur.file, next.file, "Syslog") {
		if next.syslog.url == "" {
			rel.Remove = append(rel.Remove, "syslog")
		} else {
			s, err := next.syslog.sink(next.file, r.log, r.out.own)
			if err != nil {
				return rel, built, err
			}
			rel.Sinks["syslog"] = s
			built = append(built, s)
		}
	}
	if next.database.url != cur.database.url || !sameSection(cur.file, next.file, "Database") {
		if next.database.url == "" {
			rel.Remove = append(rel.Remove, postgres.Name)
		} else {
			tmp := &outputs{own: r.out.own}
			if err := next.database.open(tmp, r.log); err != nil {
				return rel, built, err
			}
			rel.Sinks[postgres.Name] = tmp.sinks[0]
			built = append(built, tmp.sinks[0])
		}
	}
	made, err := r.otelChanges(next, &rel)
	return rel, append(built, made...), err
}

// sameSelector reports whether a and b select the same processes (nil is
// the whole host).
func sameSelector(a, b *probes.Selector) bool {
	if a == nil || b == nil {
		return a == b
	}
	return slices.Equal(a.PIDs, b.PIDs) && slices.Equal(a.Comms, b.Comms) && a.Cgroup == b.Cgroup
}

// reopenEvents opens the event log for appending: a reload must not cut
// what the log already holds, and a log that logrotate moved away is
// made again.
func reopenEvents(path, format string) (exporter.Sink, error) {
	f, appending := os.Stdout, false
	if path != "-" {
		var err error
		if f, appending, err = openEventLog(path, true); err != nil {
			return nil, err
		}
	}
	fm, _ := exporter.ParseFormat(format) // checked by config
	w, err := exporter.NewWriter(fm, f, exporter.WriterOptions{Colour: isTerminal(f), Appending: appending})
	if err != nil {
		return nil, err
	}
	closeFile := f.Close
	if f == os.Stdout {
		closeFile = nil
	}
	return exporter.EventLogSink(w, closeFile), nil
}

// rereadTraceFlags reads trace's settings again as at the start: the
// same command-line flags, then the configuration file (read again) for
// the rest, checked the same way.
func rereadTraceFlags(cur *traceFlags) (*traceFlags, probes.Config, error) {
	next := &traceFlags{}
	cmd := traceCommand(next)
	var errs []error
	cur.fs.Visit(func(fl *pflag.Flag) {
		if err := cmd.Flags().Set(fl.Name, fl.Value.String()); err != nil {
			errs = append(errs, err)
		}
	})
	if err := errors.Join(errs...); err != nil {
		return nil, probes.Config{}, err
	}
	cfg, err := next.config()
	if err != nil {
		var ee *exitError
		if errors.As(err, &ee) && ee.err != nil {
			err = ee.err
		}
		return nil, cfg, err
	}
	next.fromFile()
	return next, cfg, nil
}

// restartOnlyChanges names the file's settings that differ between a and
// b and that a reload does not apply.
func restartOnlyChanges(a, b *config.File) []string {
	var out []string
	ta := reflect.TypeOf(config.File{})
	for i := range ta.NumField() {
		name := ta.Field(i).Name
		if f := partlyReloadable[name]; f != nil {
			out = append(out, f(a, b)...)
			continue
		}
		if name == "Path" || name == "Keys" || slices.Contains(reloadableFields, name) {
			continue
		}
		if name == "Trace" {
			// The selectors are reloaded; the duration is the run's.
			if traceOf(a).Duration != traceOf(b).Duration {
				out = append(out, "trace.duration")
			}
			continue
		}
		if !sameSection(a, b, name) {
			out = append(out, settingName(name))
		}
	}
	return out
}

// sameSection reports whether field (of config.File) is the same in a and
// b; a nil file has every field unset.
func sameSection(a, b *config.File, field string) bool {
	va, vb := reflect.ValueOf(config.File{}), reflect.ValueOf(config.File{})
	if a != nil {
		va = reflect.ValueOf(*a)
	}
	if b != nil {
		vb = reflect.ValueOf(*b)
	}
	return reflect.DeepEqual(va.FieldByName(field).Interface(), vb.FieldByName(field).Interface())
}

func traceOf(f *config.File) config.Trace {
	if f == nil {
		return config.Trace{}
	}
	return f.Trace
}

// settingName is the file's key for a config.File field.
func settingName(field string) string {
	if n, ok := map[string]string{
		"OTLP": "otlp", "OTLPSignals": "otlp.signals", "RingBuffer": "ring_buffer", "MemoryLimit": "memory_limit",
		"DrainInterval": "drain_interval", "ServiceName": "service_name", "CausalStitching": "causal_stitching",
		"ResourceAttributes": "resource_attributes", "MetricsInterval": "metrics_interval", "BatchSize": "batch_size",
		"BatchTimeout": "batch_timeout", "API": "api",
	}[field]; ok {
		return n
	}
	return strings.ToLower(field)
}
