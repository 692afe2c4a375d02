package main

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"os/signal"
	"slices"
	"strings"
	"syscall"

	"github.com/spf13/cobra"
	"golang.org/x/sys/unix"

	"github.com/icptrack/icptrack/exporter"
	"github.com/icptrack/icptrack/probes"
)

func newRunCommand() *cobra.Command {
	var f captureFlags
	cmd := &cobra.Command{
		Use:   "run [flags] [--] COMMAND [ARGS...]",
		Short: "Run a command and trace the IPC of it and every process it starts",
		Long: "Run COMMAND and trace the IPC of it and of every process it forks, from the first instruction.\n" +
			"When it exits, icptrack prints a summary on standard error and exits with its exit code.",
		Example: "  icptrack run -- make test\n" +
			"  icptrack run --events ipc.jsonl --payload 64 -- ./server --port 8080",
		Args: func(_ *cobra.Command, args []string) error {
			if len(args) == 0 {
				return usageError("run needs a command to trace: icptrack run [flags] -- COMMAND [ARGS...]")
			}
			return nil
		},
		RunE: func(_ *cobra.Command, args []string) error { return runCommand(&f, args) },
	}
	// Flags after COMMAND are COMMAND's.
	cmd.Flags().SetInterspersed(false)
	f.register(cmd.Flags())
	return cmd
}

func runCommand(f *captureFlags, argv []string) error {
	cfg, err := f.config()
	if err != nil {
		return err
	}
	path, err := exec.LookPath(argv[0])
	if err != nil {
		return commandError(argv[0], err)
	}
	cfg.FollowPID = os.Getpid()
	s, err := f.start(cfg)
	if err != nil {
		return err
	}
	defer s.close()
	tracer := s.tracer

	p := newPipeline(s.log, s.out)
	ctx, stopTracing := context.WithCancel(context.Background())
	defer stopTracing()
	traced := make(chan error, 1)
	go func() { traced <- tracer.Run(ctx, p) }()

	// Signals meant for icptrack go to the command; icptrack stops when
	// the command does.
	sigs := make(chan os.Signal, 8)
	signal.Notify(sigs, unix.SIGINT, unix.SIGTERM, unix.SIGHUP, unix.SIGQUIT)
	defer signal.Stop(sigs)

	cmd := exec.Command(path, argv[1:]...)
	cmd.Args[0] = argv[0]
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	if err := cmd.Start(); err != nil {
		stopTracing()
		<-traced
		return commandError(argv[0], err)
	}
	waited := make(chan struct{})
	go forwardSignals(sigs, cmd.Process, waited)
	_ = cmd.Wait()
	close(waited)
	code := exitCode(cmd.ProcessState)

	stopTracing()
	runErr := <-traced
	finishErr := p.finish()
	if err := report(p, tracer); err != nil {
		return &exitError{code: exitFailure, err: err}
	}
	if err := errors.Join(runErr, finishErr); err != nil {
		return &exitError{code: exitFailure, err: err}
	}
	if code != 0 {
		return &exitError{code: code}
	}
	return nil
}

// report prints the summary on standard error, so that the command's
// standard output stays clean for pipelines.
func report(p *pipeline, tracer *probes.Tracer) error {
	stats, err := tracer.Stats()
	if err != nil {
		return err
	}
	losses := exporter.Losses{Dropped: stats.Dropped + stats.Held, Other: stats.NamesDropped + stats.DecodeErrors + stats.NoStorage}
	if p.out.kernel != nil {
		err = p.out.kernel.PrintSummary(os.Stderr, losses)
	} else {
		err = p.summary.Print(os.Stderr, losses)
	}
	if err != nil {
		return err
	}
	if off := tracer.Unavailable(); off != nil {
		names := make([]string, len(off))
		for i, st := range off {
			names[i] = st.Mechanism.String()
		}
		fmt.Fprintf(os.Stderr, "icptrack: not traced on this kernel (%s): %s; icptrack check says why\n",
			probes.KernelRelease(), strings.Join(names, ", "))
	}
	if st, ok := p.out.senderStats(); ok {
		// Sampled out is not lost: those operations are in the numbers
		// above, only not in the traces. The counts are the run's, with
		// those of the senders a reload replaced.
		fmt.Fprintf(os.Stderr, "icptrack: OTLP %s: %d spans sent, %d dropped, %d failed exports, %d retries; %d operations sampled out%s\n",
			p.out.spanEndpoint(), st.SentSpans, st.DroppedSpans, st.FailedExports, st.Retries, p.out.sampledOut(), samplingNote(p.out.spans, p.out.sampledOut()))
	}
	for _, k := range p.SinkStats() {
		if slices.Contains(builtInSinks, k.Name) {
			continue // the summary and OTLP lines say what those did
		}
		warning := ""
		if k.Dropped > 0 {
			warning = "WARNING: "
		}
		fmt.Fprintf(os.Stderr, "icptrack: %s%s: %d operations written, %d dropped\n", warning, k.Name, k.Written, k.Dropped)
	}
	reportSyslog(p.out.syslog)
	if n := p.OwnTraffic(); n > 0 {
		fmt.Fprintf(os.Stderr, "icptrack: %d operations of traced processes with icptrack's own exports left out\n", n)
	}
	if m := p.out.meters; m != nil && m.PrometheusAddr() != nil {
		fmt.Fprintf(os.Stderr, "icptrack: Prometheus metrics were served on http://%s/metrics\n", m.PrometheusAddr())
	}
	return nil
}

// builtInSinks are the outputs whose counts other lines of the summary
// give.
var builtInSinks = []string{"events", "summary", "spans", "metrics", "logs"}

// samplingNote says why operations were sampled out, when any were.
func samplingNote(s *exporter.Spans, sampledOut uint64) string {
	if sampledOut == 0 || s == nil {
		return ""
	}
	return fmt.Sprintf(" (--trace-sample-ratio, --max-spans-per-second; %.3g of new traces exported at the end)", s.Probability())
}

// forwardSignals passes icptrack's signals to the command until it exits.
// A Ctrl-C typed at a terminal already reached the command, which shares
// icptrack's process group, so it is not sent twice.
func forwardSignals(sigs <-chan os.Signal, proc *os.Process, done <-chan struct{}) {
	for {
		select {
		case <-done:
			return
		case s := <-sigs:
			if s == unix.SIGINT && terminalForeground() {
				continue
			}
			_ = proc.Signal(s)
		}
	}
}

func terminalForeground() bool {
	pgrp, err := unix.IoctlGetInt(int(os.Stdin.Fd()), unix.TIOCGPGRP)
	return err == nil && pgrp == unix.Getpgrp()
}

// exitCode is the command's exit code, or 128 plus the signal that
// killed it, as a shell reports it.
func exitCode(ps *os.ProcessState) int {
	if ps == nil {
		return exitFailure
	}
	if ws, ok := ps.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		return 128 + int(ws.Signal())
	}
	return ps.ExitCode()
}

func commandError(name string, err error) error {
	switch {
	case errors.Is(err, exec.ErrNotFound), errors.Is(err, fs.ErrNotExist):
		return &exitError{code: exitNotFound, err: fmt.Errorf("command not found: %s (check the name, or give its path)", name)}
	case errors.Is(err, fs.ErrPermission):
		return &exitError{code: exitNotExec, err: fmt.Errorf("cannot execute %s: permission denied", name)}
	}
	return &exitError{code: exitNotExec, err: fmt.Errorf("cannot run %s: %v", name, err)}
}
