package main

import (
	"context"
	"errors"
	"os"
	"os/signal"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"go.uber.org/zap"
	"golang.org/x/sys/unix"

	"github.com/icptrack/icptrack/internal/selector"
	"github.com/icptrack/icptrack/probes"
)

type traceFlags struct {
	captureFlags
	pids      string
	comms     string
	cgroup    string
	container string
	duration  time.Duration
}

func newTraceCommand() *cobra.Command { return traceCommand(&traceFlags{}) }

// traceCommand is trace's command with its flags parsed into f.
func traceCommand(f *traceFlags) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "trace [flags]",
		Short: "Trace the IPC of the whole host, or of the processes the selectors name",
		Long: "Trace IPC on this host until Ctrl-C, SIGTERM or --duration, then print a summary on standard error.\n" +
			"Selectors (--pid, --comm, --cgroup, --container) are applied in the kernel; a process is traced if any\n" +
			"selector names it, and so is everything it forks from then on. icptrack never traces itself unless\n" +
			"--pid names it.\n\n" +
			"SIGHUP (systemctl reload) reads the flags and the configuration file again and applies what changed,\n" +
			"the selectors and the filter included, without losing an operation; a mistake changes nothing.",
		Example: "  icptrack trace --duration 30s\n" +
			"  icptrack trace --comm nginx,php-fpm --events ipc.jsonl\n" +
			"  icptrack trace --container 3f2a9c1e5b7d --mechanisms unix,mq",
		Args: cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error { return traceHost(f) },
	}
	f.register(cmd.Flags())
	fs := cmd.Flags()
	fs.StringVar(&f.pids, "pid", "", "comma-separated process ids to trace, with their future children")
	fs.StringVar(&f.comms, "comm", "", "comma-separated process names to trace (as in ps -o comm, up to 15 characters)")
	fs.StringVar(&f.cgroup, "cgroup", "", "trace processes in this cgroup v2 directory and below it")
	fs.StringVar(&f.container, "container", "", "trace the container with this id (or a unique prefix of it)")
	fs.DurationVar(&f.duration, "duration", 0, "stop after this long, such as 30s or 5m (default: until Ctrl-C)")
	return cmd
}

// fromFile takes the trace section of the configuration file for the
// selector flags that were not given.
func (f *traceFlags) fromFile() {
	file := f.file
	take := func(key, flag string, apply func()) {
		if file.Has(key) && !f.fs.Changed(flag) {
			apply()
		}
	}
	take("trace.pids", "pid", func() {
		ps := make([]string, len(file.Trace.PIDs))
		for i, p := range file.Trace.PIDs {
			ps[i] = strconv.Itoa(p)
		}
		f.pids = strings.Join(ps, ",")
	})
	take("trace.comms", "comm", func() { f.comms = strings.Join(file.Trace.Comms, ",") })
	take("trace.cgroup", "cgroup", func() { f.cgroup = file.Trace.Cgroup })
	take("trace.container", "container", func() { f.container = file.Trace.Container })
	take("trace.duration", "duration", func() { f.duration = file.Trace.Duration })
}

// selector turns the selector flags into what the kernel applies, or a
// usage error that says what is wrong.
func (f *traceFlags) selector() (*probes.Selector, error) {
	var spec selector.Spec
	for _, p := range splitList(f.pids) {
		pid, err := strconv.Atoi(p)
		if err != nil || pid <= 0 {
			return nil, usageError("--pid %q is not a process id: give positive numbers, separated by commas", p)
		}
		spec.PIDs = append(spec.PIDs, pid)
	}
	spec.Comms = splitList(f.comms)
	spec.Cgroup, spec.Container = f.cgroup, f.container
	s, err := probes.ResolveSelector(spec, flagName)
	if err != nil {
		return nil, usageError("%v", err)
	}
	return s, nil
}

// kernelSelector is what the kernel selects: the selector flags, or with
// none, the pids the filter requires (pushed), which select as --pid
// would: only they (and what they fork) are traced. Comms are not pushed:
// the kernel matches a process's name when it first makes a call, a
// thread's own name or a later rename never (README: "Pushdown"). Pid 0
// is the kernel's, which raises signals: not selectable. nil is the whole
// host.
func (f *traceFlags) kernelSelector() (sel *probes.Selector, pushed []int, err error) {
	if sel, err = f.selector(); err != nil || sel != nil || f.compiled == nil {
		return sel, nil, err
	}
	pids := f.compiled.Pushdown().PIDs
	if len(pids) == 0 || slices.Contains(pids, 0) {
		return nil, nil, nil
	}
	sel = &probes.Selector{}
	for _, p := range pids {
		sel.PIDs = append(sel.PIDs, int(p))
	}
	return sel, sel.PIDs, nil
}

// flagName is the trace flag of a selector field.
func flagName(field string) string {
	return map[string]string{
		selector.FieldPIDs: "--pid", selector.FieldComms: "--comm", selector.FieldCgroup: "--cgroup", selector.FieldContainer: "--container",
	}[field]
}

func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

func traceHost(f *traceFlags) error {
	// SIGHUP re-reads the configuration (README: "Reloading the
	// configuration"); caught from the start, since by default it would
	// end icptrack.
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, unix.SIGHUP)
	defer signal.Stop(hup)
	cfg, err := f.config()
	if err != nil {
		return err
	}
	f.fromFile()
	if f.duration < 0 {
		return usageError("--duration %s must be positive, such as 30s", f.duration)
	}
	var pushed []int
	if cfg.Select, pushed, err = f.kernelSelector(); err != nil {
		return err
	}
	cfg.TraceAll = true
	// A service's log: a restart must not cut what it holds.
	f.appendEvents = true
	s, err := f.start(cfg)
	if err != nil {
		return err
	}
	defer s.close()
	tracer := s.tracer
	// The programs are attached: from here on nothing the selectors name
	// is missed. Said at info level, so that a script (the benchmark
	// harness) can start its workload then.
	s.out.log.Info("icptrack is tracing", zap.Strings("mechanisms", tracedMechanisms(tracer)),
		zap.String("pids", f.pids), zap.String("comms", f.comms), zap.String("cgroup", f.cgroup), zap.String("container", f.container),
		zap.Ints("filter_pids", pushed))

	ctx, stop := signal.NotifyContext(context.Background(), unix.SIGINT, unix.SIGTERM)
	defer stop()
	if f.duration > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, f.duration)
		defer cancel()
	}
	p := newPipeline(s.log, s.out)
	p.reloads = make(chan *reloadRequest, 1)
	r := &reloader{running: f, log: s.out.log, out: s.out, requests: p.reloads, attached: cfg.Mechanisms, level: f.level,
		tracer: tracer, selector: cfg.Select}
	stopReloads, reloadsDone := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(reloadsDone)
		for {
			select {
			case <-hup:
				r.reload(stopReloads)
			case <-stopReloads:
				return
			}
		}
	}()
	runErr := tracer.Run(ctx, p)
	close(stopReloads)
	<-reloadsDone
	finishErr := p.finish()
	if err := report(p, tracer); err != nil {
		return &exitError{code: exitFailure, err: err}
	}
	if err := errors.Join(runErr, finishErr); err != nil {
		return &exitError{code: exitFailure, err: err}
	}
	return nil
}

// tracedMechanisms names the mechanisms the tracer serves.
func tracedMechanisms(t *probes.Tracer) []string {
	var names []string
	for _, st := range t.Mechanisms() {
		if st.Err == nil {
			names = append(names, st.Mechanism.String())
		}
	}
	return names
}
