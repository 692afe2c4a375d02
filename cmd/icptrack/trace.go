package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/sys/unix"

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

func newTraceCommand() *cobra.Command {
	var f traceFlags
	cmd := &cobra.Command{
		Use:   "trace [flags]",
		Short: "Trace the IPC of the whole host, or of the processes the selectors name",
		Long: "Trace IPC on this host until Ctrl-C, SIGTERM or --duration, then print a summary on standard error.\n" +
			"Selectors (--pid, --comm, --cgroup, --container) are applied in the kernel; a process is traced if any\n" +
			"selector names it, and so is everything it forks from then on. icptrack never traces itself unless\n" +
			"--pid names it.",
		Example: "  icptrack trace --duration 30s\n" +
			"  icptrack trace --comm nginx,php-fpm --events ipc.jsonl\n" +
			"  icptrack trace --container 3f2a9c1e5b7d --mechanisms unix,mq",
		Args: cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error { return traceHost(&f) },
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
	var s probes.Selector
	for _, p := range splitList(f.pids) {
		pid, err := strconv.Atoi(p)
		if err != nil || pid <= 0 {
			return nil, usageError("--pid %q is not a process id: give positive numbers, separated by commas", p)
		}
		if _, err := os.Stat("/proc/" + p); err != nil {
			return nil, usageError("--pid %d: no such process", pid)
		}
		s.PIDs = append(s.PIDs, pid)
	}
	for _, c := range splitList(f.comms) {
		if len(c) > 15 {
			return nil, usageError("--comm %q is longer than the 15 characters the kernel keeps of a name: use %q", c, c[:15])
		}
		s.Comms = append(s.Comms, c)
	}
	if f.cgroup != "" && f.container != "" {
		return nil, usageError("--cgroup and --container both name a cgroup: give one of them")
	}
	if f.cgroup != "" {
		dir, err := cgroupDir(f.cgroup)
		if err != nil {
			return nil, usageError("--cgroup %s: %v", f.cgroup, err)
		}
		s.Cgroup = dir
	}
	if f.container != "" {
		dir, err := containerCgroup(f.container)
		if err != nil {
			return nil, usageError("--container %s: %v", f.container, err)
		}
		s.Cgroup = dir
	}
	if len(s.PIDs) == 0 && len(s.Comms) == 0 && s.Cgroup == "" {
		return nil, nil // the whole host
	}
	return &s, nil
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

// cgroupDir finds a cgroup v2 directory: an absolute path, or a path
// relative to the cgroup2 mount.
func cgroupDir(p string) (string, error) {
	root := probes.Cgroup2Mount()
	if root == "" {
		return "", errors.New("no cgroup v2 hierarchy is mounted (mount -t cgroup2 none /sys/fs/cgroup)")
	}
	dir := p
	if !strings.HasPrefix(p, root) {
		dir = filepath.Join(root, p)
	}
	if st, err := os.Stat(dir); err != nil || !st.IsDir() {
		return "", fmt.Errorf("no such cgroup (looked for %s)", dir)
	}
	return dir, nil
}

// containerCgroup finds the one cgroup whose name carries the container id.
func containerCgroup(id string) (string, error) {
	if len(id) < 4 {
		return "", errors.New("give at least 4 characters of the container id")
	}
	root := probes.Cgroup2Mount()
	if root == "" {
		return "", errors.New("no cgroup v2 hierarchy is mounted")
	}
	var found []string
	_ = filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
		if err == nil && d.IsDir() {
			if c := probes.ContainerIDFromCgroup(p); c != "" && strings.HasPrefix(c, id) {
				found = append(found, p)
				return filepath.SkipDir
			}
		}
		return nil
	})
	switch len(found) {
	case 0:
		return "", errors.New("no running container has this id")
	case 1:
		return found[0], nil
	}
	return "", fmt.Errorf("%d containers' ids start with it: give more of the id", len(found))
}

func traceHost(f *traceFlags) error {
	cfg, err := f.config()
	if err != nil {
		return err
	}
	f.fromFile()
	if f.duration < 0 {
		return usageError("--duration %s must be positive, such as 30s", f.duration)
	}
	if cfg.Select, err = f.selector(); err != nil {
		return err
	}
	events, err := f.openEvents()
	if err != nil {
		return err
	}
	if events != nil {
		defer events.Close()
	}
	log := f.logger()
	defer log.Sync()
	cfg.TraceAll = true
	out, err := f.outputs(log)
	if err != nil {
		return err
	}
	tracer, err := probes.Open(cfg)
	if err != nil {
		_ = out.shutdown()
		return &exitError{code: exitFailure, err: err}
	}
	defer tracer.Close()
	out.tracer = tracer
	if f.cpuProfile != "" {
		stop, err := startCPUProfile(f.cpuProfile)
		if err != nil {
			return &exitError{code: exitFailure, err: err}
		}
		defer stop()
	}

	ctx, stop := signal.NotifyContext(context.Background(), unix.SIGINT, unix.SIGTERM)
	defer stop()
	if f.duration > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, f.duration)
		defer cancel()
	}
	p := newPipeline(events, out)
	runErr := tracer.Run(ctx, p)
	finishErr := p.finish()
	if err := report(p, tracer); err != nil {
		return &exitError{code: exitFailure, err: err}
	}
	if err := errors.Join(runErr, finishErr); err != nil {
		return &exitError{code: exitFailure, err: err}
	}
	return nil
}
