package main

import (
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/pflag"

	"github.com/icptrack/icptrack/flow"
	"github.com/icptrack/icptrack/probes"
)

// captureFlags are the flags run and trace share.
type captureFlags struct {
	mechanisms    string
	payload       int
	events        string
	ringBuffer    string
	drainInterval time.Duration
	attachOnly    bool
	cpuProfile    string
	cmdline       bool
}

func (f *captureFlags) register(fs *pflag.FlagSet) {
	d := probes.DefaultConfig()
	fs.StringVar(&f.mechanisms, "mechanisms", "all",
		"comma-separated mechanisms to trace: "+strings.Join(flow.MechanismNames(), ", "))
	fs.IntVar(&f.payload, "payload", 0,
		fmt.Sprintf("copy the first N bytes of each operation's data into the event log (0 to %d; off by default)", probes.MaxPayloadBytes))
	fs.StringVar(&f.events, "events", "", "write the event log (JSON Lines) to this file; - for standard output")
	fs.BoolVar(&f.cmdline, "cmdline", false, "add each process's command line to its operations")
	fs.StringVar(&f.ringBuffer, "ring-buffer", sizeString(d.RingBufferBytes),
		"size of the kernel's ring buffer of events: a power of two, such as 4MiB or 64MiB")
	fs.DurationVar(&f.drainInterval, "drain-interval", d.DrainInterval,
		"how often to read the ring buffer when it is not filling up")
	fs.BoolVar(&f.attachOnly, "attach-only", false, "attach the hooks with programs that do nothing (for benchmarks)")
	_ = fs.MarkHidden("attach-only")
	fs.StringVar(&f.cpuProfile, "cpuprofile", "", "write icptrack's CPU profile to this file (for development)")
	_ = fs.MarkHidden("cpuprofile")
}

// config turns the flags into a tracer configuration, or a usage error.
func (f *captureFlags) config() (probes.Config, error) {
	cfg := probes.DefaultConfig()
	var err error
	if cfg.Mechanisms, err = flow.ParseMechanisms(f.mechanisms); err != nil {
		return cfg, usageError("--mechanisms: %v", err)
	}
	if f.payload < 0 || f.payload > probes.MaxPayloadBytes {
		return cfg, usageError("--payload %d is out of range: use 0 (off) to %d bytes", f.payload, probes.MaxPayloadBytes)
	}
	cfg.PayloadBytes = f.payload
	if cfg.RingBufferBytes, err = parseSize(f.ringBuffer); err != nil {
		return cfg, usageError("--ring-buffer: %v", err)
	}
	if n := cfg.RingBufferBytes; n < os.Getpagesize() || n&(n-1) != 0 {
		return cfg, usageError("--ring-buffer %s is not a power of two of at least %d bytes: try 16MiB", f.ringBuffer, os.Getpagesize())
	}
	if f.drainInterval <= 0 {
		return cfg, usageError("--drain-interval %s must be positive, such as 50ms", f.drainInterval)
	}
	cfg.DrainInterval = f.drainInterval
	cfg.AttachOnly = f.attachOnly
	cfg.Cmdline = f.cmdline
	return cfg, nil
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

// parseSize reads a byte size: 4096, 64K, 64KiB, 16M, 16MiB, 1G, 1GiB.
func parseSize(s string) (int, error) {
	t := strings.TrimSuffix(strings.TrimSuffix(strings.TrimSpace(s), "B"), "i")
	mult := 1
	if n := len(t); n > 0 {
		switch t[n-1] {
		case 'k', 'K':
			mult, t = 1<<10, t[:n-1]
		case 'm', 'M':
			mult, t = 1<<20, t[:n-1]
		case 'g', 'G':
			mult, t = 1<<30, t[:n-1]
		}
	}
	v, err := strconv.Atoi(t)
	if err != nil || v <= 0 || v > (1<<31)/mult {
		return 0, fmt.Errorf("%q is not a size: use bytes or a number with K, M or G (KiB, MiB, GiB)", s)
	}
	return v * mult, nil
}

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
