package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/sys/unix"

	"github.com/icptrack/icptrack/capture"
	"github.com/icptrack/icptrack/exporter"
	"github.com/icptrack/icptrack/flow"
	"github.com/icptrack/icptrack/replay"
	"github.com/icptrack/icptrack/semconv"
)

// replayFlags are replay's settings: the export flags run and trace use,
// and its own.
type replayFlags struct {
	exportFlags
	shift   bool
	filter  string
	reenact bool
	speed   float64
	// keep selects the operations replayed (--filter); nil keeps all.
	keep func(*flow.Operation) bool
}

func newReplayCommand() *cobra.Command {
	var f replayFlags
	cmd := &cobra.Command{
		Use:   "replay (--otlp-endpoint URL | --reenact) [flags] [FILE...]",
		Short: "Send a capture as spans and metrics again, or re-enact its IPC with stand-in processes",
		Long: `replay reads captures (jsonl, csv, otlp-json or otlp-proto, detected from the first bytes)
from each FILE in turn, or from standard input when there is none or it is -.

With --otlp-endpoint it sends their operations as spans and metrics, as run and trace would
have, with the capture's own timestamps, or moved so that the last operation ends now
(--shift-to-now). Every operation is sent: sampling is off unless --trace-sample-ratio or
--max-spans-per-second ask for it.

With --reenact it recreates their IPC: a stand-in process per traced process, named like
it, does the same operations on fresh channels of the same mechanisms, with the same sizes
and payloads, in the same order and at the same times (--speed divides them). What cannot
be re-enacted is listed, with why, and left out. The report goes to standard output.`,
		Example: `  icptrack replay --otlp-endpoint http://localhost:4318 ipc.jsonl
  icptrack replay --otlp-endpoint localhost:4317 --shift-to-now --filter 'comm == nginx' ipc.otlp
  icptrack replay --reenact ipc.jsonl
  sudo icptrack run --events again.jsonl -- icptrack replay --reenact --speed 2 ipc.jsonl`,
		RunE: func(_ *cobra.Command, args []string) error {
			if err := f.check(); err != nil {
				return err
			}
			if len(args) == 0 {
				args = []string{"-"}
			}
			if f.reenact {
				return reenact(&f, args)
			}
			return replayOTLP(&f, args)
		},
	}
	fs := cmd.Flags()
	// Sending a capture again is not live capture: nothing is sampled
	// unless asked.
	f.exportFlags.register(fs, 0)
	fs.BoolVar(&f.shift, "shift-to-now", false, "move every timestamp by the same amount, so that the capture's last operation ends now")
	fs.StringVar(&f.filter, "filter", "", "replay only the operations this filter matches (README: Filters)")
	fs.BoolVar(&f.reenact, "reenact", false, "recreate the capture's IPC with a stand-in process for each traced process, instead of sending it")
	fs.Float64Var(&f.speed, "speed", 1, "with --reenact: how many times faster than the capture to go (0.5 is half as fast)")
	return cmd
}

// check validates the flags: any mistake is a usage error.
func (f *replayFlags) check() error {
	if _, err := f.exportFlags.loadConfig(); err != nil {
		return err
	}
	if err := f.exportFlags.check(); err != nil {
		return err
	}
	var err error
	if f.keep, err = parseFilter(f.filter, "--filter: "); err != nil {
		return err
	}
	if f.reenact {
		switch {
		case f.fs.Changed("otlp-endpoint"):
			return usageError("--reenact and --otlp-endpoint are two ways to replay: choose one (trace the re-enactment with icptrack run to send it)")
		case f.shift:
			return usageError("--shift-to-now is for --otlp-endpoint: a re-enactment happens now anyway")
		case !(f.speed > 0) || math.IsInf(f.speed, 0):
			return usageError("--speed %v is not a speed: use a positive number, such as 2 (twice as fast) or 0.5", f.speed)
		}
		return nil
	}
	if f.fs.Changed("speed") {
		return usageError("--speed is for --reenact: sending spans keeps the capture's times")
	}
	if c, _ := f.otlp(); !c.Enabled() {
		return usageError("replay needs --otlp-endpoint URL (send the capture as spans and metrics) or --reenact (recreate its IPC)")
	}
	return nil
}

// replayOTLP sends the captures' operations as spans and metrics.
func replayOTLP(f *replayFlags, files []string) error {
	var stdin io.Reader = os.Stdin
	var shift time.Duration
	if f.shift {
		if containsStdin(files) {
			// Read twice: once for the end, once to send.
			b, err := io.ReadAll(os.Stdin)
			if err != nil {
				return &exitError{code: exitFailure, err: fmt.Errorf("standard input: %v", err)}
			}
			stdin = bytes.NewReader(b)
		}
		var last time.Time
		for _, name := range files {
			err := readCapture(name, stdin, keeping(f.keep, func(op *flow.Operation) {
				if e := op.Time.Add(op.Duration); e.After(last) {
					last = e
				}
			}))
			if err != nil {
				return err
			}
			if r, ok := stdin.(*bytes.Reader); ok && name == "-" {
				_, _ = r.Seek(0, io.SeekStart)
			}
		}
		if !last.IsZero() {
			shift = time.Since(last)
		}
	}

	log := f.logger()
	defer func() { _ = log.Sync() }()
	var (
		out      *outputs
		buildErr error
		host     string
		hosts    = map[string]bool{}
		sent     int
		lastTick time.Time
	)
	add := func(op *flow.Operation, r capture.Reader) {
		h := ""
		if hr, ok := r.(capture.Hosted); ok {
			h = hr.Host()
		}
		hosts[h] = true
		if out == nil && buildErr == nil {
			host = h
			out, buildErr = f.build(&outputs{log: log, own: &exporter.OwnAddrs{}}, log, exportTargets{
				resource: func(res *exporter.ResourceOptions) { replayResource(res, files, host) },
			})
		}
		if out == nil {
			return
		}
		op.Time = op.Time.Add(shift)
		if out.spans != nil {
			// Wait for the sender rather than drop: a replay is not in a
			// hurry, and every span is wanted.
			for out.sender.QueueFill() > 0.5 {
				time.Sleep(time.Millisecond)
			}
			out.spans.Add(op)
			if now := time.Now(); now.Sub(lastTick) > 50*time.Millisecond {
				out.spans.Tick(now)
				lastTick = now
			}
		}
		if out.metrics != nil {
			out.metrics.Record(op)
		}
		sent++
	}
	var readErr error
	for _, name := range files {
		if readErr = readCaptureFrom(name, stdin, keepingFrom(f.keep, add)); readErr != nil || buildErr != nil {
			break
		}
	}
	if buildErr != nil {
		return buildErr
	}
	if out == nil {
		if readErr != nil {
			return readErr
		}
		fmt.Fprintln(os.Stderr, "icptrack: the capture has no operations to replay")
		return nil
	}
	shutdownErr := out.shutdown()
	if len(hosts) > 1 {
		fmt.Fprintf(os.Stderr, "icptrack: the capture names several hosts; the spans say host.name %q, the first one's\n", host)
	}
	report := fmt.Sprintf("icptrack: replayed %d operations", sent)
	if shift != 0 {
		report += fmt.Sprintf(", shifted by %s", shift.Round(time.Millisecond))
	}
	fmt.Fprintln(os.Stderr, report)
	var dropped uint64
	if s := out.sender; s != nil {
		st := s.Stats()
		dropped = st.DroppedSpans
		fmt.Fprintf(os.Stderr, "icptrack: OTLP %s: %d spans sent, %d dropped, %d failed exports, %d retries; %d operations sampled out%s\n",
			s.Endpoint(), st.SentSpans, st.DroppedSpans, st.FailedExports, st.Retries, out.spans.SampledOut(), samplingNote(out.spans, out.spans.SampledOut()))
	}
	if out.meters != nil && shutdownErr == nil {
		fmt.Fprintf(os.Stderr, "icptrack: metrics of %d operations sent over OTLP\n", sent)
	}
	switch {
	case readErr != nil:
		return readErr
	case shutdownErr != nil:
		return &exitError{code: exitFailure, err: shutdownErr}
	case dropped > 0:
		return &exitError{code: exitFailure, err: fmt.Errorf("%d spans were not delivered: is the OTLP endpoint up and taking traces?", dropped)}
	}
	return nil
}

// replayResource says, on every replayed span and metric, that it is a
// replay and of what, and names the host the capture was taken on when
// the capture says it (its OTLP formats do), never the replaying one.
func replayResource(res *exporter.ResourceOptions, files []string, host string) {
	names := make([]string, len(files))
	for i, f := range files {
		names[i] = filepath.Base(f)
	}
	attrs := map[string]string{semconv.AttrIPCReplayCapture: strings.Join(names, ",")}
	for k, v := range res.Attributes {
		attrs[k] = v
	}
	res.Attributes = attrs
	res.HostName, res.NoHostName = host, host == ""
}

func containsStdin(files []string) bool {
	for _, f := range files {
		if f == "-" {
			return true
		}
	}
	return false
}

// reenact re-enacts the captures' IPC with stand-in processes.
func reenact(f *replayFlags, files []string) error {
	var ops []*flow.Operation
	for _, name := range files {
		if err := readCapture(name, os.Stdin, keeping(f.keep, func(op *flow.Operation) { ops = append(ops, op) })); err != nil {
			return err
		}
	}
	plan := replay.NewPlan(ops)
	replay.PrintPlan(os.Stdout, plan, f.speed)
	if len(plan.StandIns) == 0 {
		return &exitError{code: exitFailure, err: fmt.Errorf("%v: see the list above for why", replay.ErrNothing)}
	}
	ctx, stop := signal.NotifyContext(context.Background(), unix.SIGINT, unix.SIGTERM)
	defer stop()
	res, err := replay.Reenact(ctx, plan, replay.Options{Speed: f.speed})
	if res != nil {
		res.Print(os.Stdout, plan, f.speed)
	}
	if errors.Is(err, context.Canceled) {
		return &exitError{code: exitFailure, err: errors.New("the re-enactment was interrupted")}
	}
	if err != nil {
		return &exitError{code: exitFailure, err: fmt.Errorf("re-enactment: %v", err)}
	}
	if n := len(res.Failures); n > 0 {
		return &exitError{code: exitFailure, err: fmt.Errorf("%d steps of the re-enactment did not go as in the capture (listed above)", n)}
	}
	return nil
}
