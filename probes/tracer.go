package probes

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
	"github.com/cilium/ebpf/ringbuf"
	"github.com/cilium/ebpf/rlimit"
	"golang.org/x/sys/unix"

	"github.com/icptrack/icptrack/flow"
)

// Handler receives what the tracer reads. Both methods are called from the
// goroutine running Tracer.Run.
type Handler interface {
	// Event is called for each completed operation. ev is reused after
	// the call returns; its Payload is not.
	Event(ev *flow.Event)
	// Drained is called after each pass over the ring buffer.
	Drained()
}

// Tracer owns the loaded BPF objects and their attachments.
type Tracer struct {
	cfg Config
	// coll holds the maps; each hook group's programs are loaded on their
	// own against them (load.go).
	coll   *ebpf.Collection
	progs  []*ebpf.Program
	links  []link.Link
	groups []groupResult
	reader *ringbuf.Reader
	dec    *decoder
	stats  *ebpf.Map
	// captured counts operation records read; decodeErrors records that
	// could not be read.
	// Atomic: Stats may be read from any goroutine.
	captured     atomic.Uint64
	decodeErrors atomic.Uint64
	// Metrics mode: processes that exited since the last Aggregates, and
	// what was counted for those already forgotten.
	exited    []uint32
	forgotten uint64
	// The selectors in the kernel (TraceAll), which SetSelector changes,
	// and the generations written with them.
	selMu        sync.Mutex
	sel          *Selector
	selGen       uint32
	selCgroupGen uint32
}

// Open checks that icptrack can run here, loads the BPF programs the
// configured mechanisms need and attaches them. Mechanisms the kernel
// cannot serve are off (Unavailable), unless the configuration requires
// them or none is left: then Open fails.
func Open(cfg Config) (*Tracer, error) {
	t, err := load(cfg)
	if err != nil {
		return nil, err
	}
	if err := t.checkMechanisms(); err != nil {
		t.Close()
		return nil, err
	}
	t.reader, err = ringbuf.NewReader(t.coll.Maps["events"])
	if err != nil {
		t.Close()
		return nil, fmt.Errorf("open the ring buffer: %w", err)
	}
	c, err := monotonicOffset()
	if err != nil {
		t.Close()
		return nil, err
	}
	t.dec = newDecoder(c, newNames(newMountTable("/proc/self/mountinfo")), newProcessTable(cfg.Cmdline), cfg.PayloadBytes > 0)
	return t, nil
}

// load loads and attaches what it can: everything of Open but reading.
func load(cfg Config) (*Tracer, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if err := preflight(); err != nil {
		return nil, err
	}
	if err := rlimit.RemoveMemlock(); err != nil {
		return nil, fmt.Errorf("lift the locked-memory limit for BPF maps: %w", err)
	}
	spec, err := loadIpc()
	if err != nil {
		return nil, err
	}
	cfg.sockSyscalls = cfg.sockets() && (cfg.sockSyscalls || !socketHooksExist()) // tests force it
	if err := configure(spec, &cfg); err != nil {
		return nil, err
	}
	t := &Tracer{cfg: cfg}
	if err := t.loadGroups(spec); err != nil {
		t.Close()
		return nil, err
	}
	t.stats = t.coll.Maps["stats"]
	return t, nil
}

// configure writes the configuration into the object's constants.
func configure(spec *ebpf.CollectionSpec, cfg *Config) error {
	spec.Maps["events"].MaxEntries = uint32(cfg.RingBufferBytes)
	self := uint32(os.Getpid())
	vars := map[string]any{
		"mechanisms":      kernelMechanisms(cfg.Mechanisms),
		"payload_max":     uint32(cfg.PayloadBytes),
		"follow_tgid":     uint32(cfg.FollowPID),
		"self_tgid":       self,
		"syscall_hooks":   boolByte(cfg.syscallHooks()),
		"sock_syscalls":   boolByte(cfg.sockSyscalls),
		"attach_only":     boolByte(cfg.AttachOnly),
		"metrics_only":    boolByte(cfg.MetricsOnly),
		"wakeup_bytes":    uint64(cfg.RingBufferBytes / 4),
		"coalesce_ns":     coalesceNs(cfg),
		"syscall_classes": syscallClasses(cfg.Mechanisms),
		"capture_args":    boolByte(cfg.Cmdline),
		"select_mode":     boolByte(cfg.TraceAll),
	}
	for name, v := range vars {
		vs, ok := spec.Variables[name]
		if !ok {
			return fmt.Errorf("BPF object has no variable %q (rebuild it with make generate)", name)
		}
		if err := vs.Set(v); err != nil {
			return fmt.Errorf("set %s: %w", name, err)
		}
	}
	return nil
}

func coalesceNs(cfg *Config) uint64 {
	if !cfg.coalescing() {
		return 0
	}
	return uint64(cfg.Coalesce.Nanoseconds())
}

func boolByte(b bool) uint8 {
	if b {
		return 1
	}
	return 0
}

// loadError explains a failure to load the programs.
func loadError(err error) error {
	if errors.Is(err, unix.EPERM) {
		return fmt.Errorf("%w: the kernel refused the BPF programs (%v); run as root, or check that "+
			"kernel.unprivileged_bpf_disabled and lockdown allow BPF", ErrPermission, err)
	}
	var ve *ebpf.VerifierError
	if errors.As(err, &ve) {
		return fmt.Errorf("the kernel's verifier rejected icptrack's BPF programs; "+
			"please report this with your kernel version (uname -r): %+v", ve)
	}
	return fmt.Errorf("load BPF programs: %w", err)
}

// monotonicOffset measures realtime minus monotonic time, to put the
// kernel's timestamps on the wall clock.
func monotonicOffset() (clock, error) {
	var mono, real1, real2 unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_REALTIME, &real1); err != nil {
		return clock{}, fmt.Errorf("read the clock: %w", err)
	}
	if err := unix.ClockGettime(unix.CLOCK_MONOTONIC, &mono); err != nil {
		return clock{}, fmt.Errorf("read the clock: %w", err)
	}
	if err := unix.ClockGettime(unix.CLOCK_REALTIME, &real2); err != nil {
		return clock{}, fmt.Errorf("read the clock: %w", err)
	}
	realNs := (real1.Nano() + real2.Nano()) / 2
	return clock{offset: realNs - mono.Nano()}, nil
}

// Run reads records until ctx is done, then reads what is left and
// returns. It calls h from this goroutine only.
func (t *Tracer) Run(ctx context.Context, h Handler) error {
	if t.coll == nil {
		return errors.New("the tracer is closed")
	}
	w, err := newWaker(t.coll.Maps["events"].FD())
	if err != nil {
		return err
	}
	defer w.Close()
	stop := context.AfterFunc(ctx, w.interrupt)
	defer stop()

	var rec ringbuf.Record
	var ev flow.Event
	flushed := false
	for {
		// Checked before draining, so that the last drain sees everything
		// submitted before ctx was done.
		done := ctx.Err() != nil
		if err := t.drain(&rec, &ev, h); err != nil {
			return err
		}
		h.Drained()
		if done {
			if t.cfg.coalescing() && !flushed {
				// Runs the threads still hold: out before the last drain.
				flushed = true
				t.flushRuns(&rec, &ev, h)
				continue
			}
			return nil
		}
		if err := w.wait(t.cfg.DrainInterval); err != nil {
			return fmt.Errorf("wait for the ring buffer: %w", err)
		}
	}
}

// runFlushWait bounds how long stopping waits for threads to send the
// runs of operations they hold: each does at its next traced call or
// sleep. What is still held then is counted (Stats.Held).
const runFlushWait = 200 * time.Millisecond

// flushRuns tells every thread to send its coalesced run and stop
// coalescing, and drains until none holds one or runFlushWait passes.
func (t *Tracer) flushRuns(rec *ringbuf.Record, ev *flow.Event, h Handler) {
	if v, ok := t.coll.Variables["coalesce_stop"]; !ok || v.Set(uint8(1)) != nil {
		return
	}
	deadline := time.Now().Add(runFlushWait)
	for {
		held, err := t.held()
		if err != nil || held <= 0 || time.Now().After(deadline) {
			return
		}
		time.Sleep(time.Millisecond)
		if t.drain(rec, ev, h) != nil {
			return
		}
		h.Drained()
	}
}

// held is the operations threads hold in coalesced runs, not yet sent.
func (t *Tracer) held() (int64, error) {
	var perCPU []uint64
	if err := t.stats.Lookup(uint32(ipcStatIndexSTAT_HELD), &perCPU); err != nil {
		return 0, fmt.Errorf("read BPF statistics: %w", err)
	}
	var s uint64
	for _, v := range perCPU {
		s += v // per-CPU counts go negative where runs end elsewhere
	}
	return int64(s), nil
}

// drain reads every record waiting in the ring buffer, without blocking.
func (t *Tracer) drain(rec *ringbuf.Record, ev *flow.Event, h Handler) error {
	t.reader.SetDeadline(time.Unix(1, 0))
	for {
		err := t.reader.ReadInto(rec)
		if errors.Is(err, os.ErrDeadlineExceeded) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("read the ring buffer: %w", err)
		}
		t.handle(rec.RawSample, ev, h)
	}
}

func (t *Tracer) handle(raw []byte, ev *flow.Event, h Handler) {
	isOp, err := t.dec.decode(raw, ev)
	if err != nil {
		t.decodeErrors.Add(1)
		return
	}
	if isOp {
		switch {
		case ev.Op == flow.Exited && t.cfg.MetricsOnly:
			t.exited = append(t.exited, ev.PID)
		case ev.Op != flow.Delivery && ev.Op != flow.Exited:
			t.captured.Add(uint64(max(ev.Count, 1)))
		}
		h.Event(ev)
	}
}

// Stats are the tracer's counters.
type Stats struct {
	// Captured is the operations read from the kernel (a coalesced
	// record counts its operations).
	Captured uint64
	// Dropped is the operations lost because the ring buffer was full
	// (or, rarely, kernel storage could not be had); in metrics mode, the
	// operations not counted because the counts' map was full.
	Dropped uint64
	// Held is the operations threads hold in coalesced runs not sent yet:
	// after Run returns, those that never reached userspace (a thread that
	// made no traced call and never slept while tracing stopped).
	Held uint64
	// NamesDropped is the socket and FIFO name records lost.
	NamesDropped uint64
	// NoStorage is how often the kernel could not give a task or socket
	// its state (a process that could not be followed, a socket whose
	// operations could not be numbered).
	NoStorage uint64
	// DecodeErrors is the records userspace could not decode.
	DecodeErrors uint64
}

// Stats reads the kernel's counters. It is safe to call from any goroutine.
func (t *Tracer) Stats() (Stats, error) {
	sum := func(i ipcStatIndex) (uint64, error) {
		var perCPU []uint64
		if err := t.stats.Lookup(uint32(i), &perCPU); err != nil {
			return 0, fmt.Errorf("read BPF statistics: %w", err)
		}
		var s uint64
		for _, v := range perCPU {
			s += v
		}
		return s, nil
	}
	var s Stats
	var err error
	s.Captured = t.captured.Load()
	if s.Dropped, err = sum(ipcStatIndexSTAT_OPS_DROPPED); err != nil {
		return s, err
	}
	agg, err := sum(ipcStatIndexSTAT_AGG_DROPPED)
	if err != nil {
		return s, err
	}
	s.Dropped += agg
	if s.NamesDropped, err = sum(ipcStatIndexSTAT_NAMES_DROPPED); err != nil {
		return s, err
	}
	if s.NoStorage, err = sum(ipcStatIndexSTAT_NO_STORAGE); err != nil {
		return s, err
	}
	if t.cfg.coalescing() {
		held, err := t.held()
		if err != nil {
			return s, err
		}
		s.Held = uint64(max(held, 0))
	}
	s.DecodeErrors = t.decodeErrors.Load()
	return s, nil
}

// Close detaches everything and frees the BPF objects, latest first.
func (t *Tracer) Close() error {
	var errs []error
	if t.reader != nil {
		errs = append(errs, t.reader.Close())
	}
	for i := len(t.links) - 1; i >= 0; i-- {
		errs = append(errs, t.links[i].Close())
	}
	t.links = nil
	for _, p := range t.progs {
		p.Close()
	}
	t.progs = nil
	if t.coll != nil {
		t.coll.Close()
		t.coll = nil
	}
	return errors.Join(errs...)
}
