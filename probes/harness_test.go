package probes

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"sync"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/icptrack/icptrack/flow"
	"github.com/icptrack/icptrack/internal/ipcload"
)

// These tests load the real BPF programs and trace real processes: the
// test binary re-executes itself as the workload (internal/ipcload). They
// need root. Under CI=true a missing BPF fails them: a kernel test skipped
// in CI would hide a broken product.

func TestMain(m *testing.M) {
	ipcload.Main()
	os.Exit(m.Run())
}

// capture traces the test process's children and correlates what it sees.
type capture struct {
	tr     *Tracer
	cancel context.CancelFunc
	done   chan error
	corr   *flow.Correlator
	mu     sync.Mutex
	ops    []*flow.Operation
	events int
	// stopped: stop has taken Run's result.
	stopped bool
}

func (c *capture) Event(ev *flow.Event) {
	c.events++
	c.corr.Add(ev)
}

func (c *capture) Drained() { c.corr.Tick() }

// openTracer opens a tracer or, when BPF cannot be used here, skips the
// test (fails it under CI=true).
func openTracer(t *testing.T, cfg Config) *Tracer {
	t.Helper()
	if cfg.FollowPID == 0 && !cfg.TraceAll {
		cfg.FollowPID = os.Getpid()
	}
	tr, err := Open(cfg)
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("kernel tests must run in CI, but the tracer did not open: %v", err)
		}
		t.Skipf("cannot trace here: %v", err)
	}
	t.Cleanup(func() { tr.Close() })
	return tr
}

// startCapture opens a tracer with cfg and reads it until stop.
func startCapture(t *testing.T, cfg Config) *capture {
	t.Helper()
	c := &capture{tr: openTracer(t, cfg), done: make(chan error, 1)}
	c.corr = flow.New(func(op *flow.Operation) {
		c.mu.Lock()
		c.ops = append(c.ops, op.Clone())
		c.mu.Unlock()
	}, flow.Options{})
	var ctx context.Context
	ctx, c.cancel = context.WithCancel(context.Background())
	go func() { c.done <- c.tr.Run(ctx, c) }()
	// Registered after openTracer's Close, so it runs before it: a test
	// that ends without stop must not close the tracer under Run.
	t.Cleanup(func() {
		c.cancel()
		if !c.stopped {
			<-c.done
		}
	})
	return c
}

// stop stops reading, releases everything held and returns the
// operations, sorted by time.
func (c *capture) stop(t *testing.T) []*flow.Operation {
	t.Helper()
	c.cancel()
	c.stopped = true
	if err := <-c.done; err != nil {
		t.Fatalf("tracer: %v", err)
	}
	c.corr.Flush()
	if st, err := c.tr.Stats(); err == nil && (st.Dropped > 0 || st.DecodeErrors > 0 || st.NoStorage > 0) {
		t.Errorf("the tracer lost records: %+v", st)
	} else if err == nil {
		t.Logf("tracer: %+v, %d events", st, c.events)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	slices.SortStableFunc(c.ops, func(a, b *flow.Operation) int { return a.Time.Compare(b.Time) })
	return c.ops
}

// spawn starts a workload; files become its descriptors 3, 4, ...
func spawn(t *testing.T, mode string, files []*os.File, args ...string) *exec.Cmd {
	t.Helper()
	cmd := newWorkload(mode, args...)
	cmd.ExtraFiles = files
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", mode, err)
	}
	return cmd
}

type execCmd = exec.Cmd

func newWorkload(mode string, args ...string) *exec.Cmd {
	cmd := exec.Command(os.Args[0], args...)
	cmd.Env = append(os.Environ(), ipcload.Env+"="+mode)
	cmd.Stderr = os.Stderr
	return cmd
}

func wait(t *testing.T, cmds ...*exec.Cmd) {
	t.Helper()
	for _, c := range cmds {
		if err := c.Wait(); err != nil {
			t.Fatalf("workload %v: %v", c.Args, err)
		}
	}
}

// pipe makes a blocking pipe: os.Pipe's are non-blocking, and the
// workloads must make plain blocking calls.
func pipe(t *testing.T) (r, w *os.File) {
	t.Helper()
	var p [2]int
	if err := unix.Pipe2(p[:], unix.O_CLOEXEC); err != nil {
		t.Fatal(err)
	}
	return os.NewFile(uintptr(p[0]), "pipe-r"), os.NewFile(uintptr(p[1]), "pipe-w")
}

func socketpair(t *testing.T, typ int) (a, b *os.File) {
	t.Helper()
	fds, err := unix.Socketpair(unix.AF_UNIX, typ|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	return os.NewFile(uintptr(fds[0]), "sock-a"), os.NewFile(uintptr(fds[1]), "sock-b")
}

// closeAll closes the test's copies of descriptors handed to workloads, so
// that end of file reaches the readers.
func closeAll(files ...*os.File) {
	for _, f := range files {
		f.Close()
	}
}

// byPID returns a workload's operations. The workloads are Go programs,
// whose runtime preempts goroutines by signalling its own threads (SIGURG);
// icptrack rightly reports those, and byPID leaves them out. signalsOf
// returns signal operations.
func byPID(ops []*flow.Operation, pid int) []*flow.Operation {
	var out []*flow.Operation
	for _, op := range ops {
		// Go's runtime preempts the workloads with SIGURG, which can
		// also cut a blocked call short (EINTR; the workload retries).
		if int(op.PID) == pid && !(op.Mechanism == flow.Signal && op.Signal == "SIGURG") && op.Error != "EINTR" {
			out = append(out, op)
		}
	}
	return out
}

func withOp(ops []*flow.Operation, kind flow.OpType) []*flow.Operation {
	var out []*flow.Operation
	for _, op := range ops {
		if op.Op == kind {
			out = append(out, op)
		}
	}
	return out
}

func withBytes(ops []*flow.Operation) []*flow.Operation {
	var out []*flow.Operation
	for _, op := range ops {
		if op.Bytes > 0 {
			out = append(out, op)
		}
	}
	return out
}

// transfer says what a writer and a reader must have done.
type transfer struct {
	mech           flow.Mechanism
	writer, reader int
	count, size    int
	sendSyscall    string
	recvSyscall    string
	// eof: the reader's last receive returned 0 bytes (stream end).
	eof bool
}

// checkTransfer asserts the exact operations of a one-way transfer: every
// send and receive, their bytes, one channel shared by both ends, and
// every receive linked to the one send it delivered, naming its writer.
// The workloads also wrote to /dev/null and to a regular file: any
// operation beyond these fails the test.
func checkTransfer(t *testing.T, ops []*flow.Operation, x transfer) (sends, recvs []*flow.Operation) {
	t.Helper()
	wops, rops := byPID(ops, x.writer), byPID(ops, x.reader)
	sends = withOp(wops, flow.Send)
	recvs = withOp(rops, flow.Receive)
	if len(sends) != len(wops) {
		t.Errorf("writer made %d operations, want only its %d sends: %s", len(wops), len(sends), describe(wops))
	}
	if len(recvs) != len(rops) {
		t.Errorf("reader made %d operations, want only its %d receives: %s", len(rops), len(recvs), describe(rops))
	}
	if len(sends) != x.count {
		for i, r := range recvs {
			if len(r.Links) == 0 && r.Bytes > 0 {
				t.Logf("receive %d of %d has no send", i, len(recvs))
			}
		}
		t.Fatalf("%d sends, want %d (the writer made %d operations, the reader %d, everyone %d: %s)",
			len(sends), x.count, len(wops), len(rops), len(ops), describe(ops))
	}
	wantRecvs := x.count
	if x.eof {
		wantRecvs++
	}
	if len(recvs) != wantRecvs {
		t.Fatalf("%d receives, want %d: %s", len(recvs), wantRecvs, describe(recvs))
	}
	channel := sends[0].Channel
	if channel == "" {
		t.Fatalf("send has no channel: %s", describe(sends[:1]))
	}
	for i, s := range sends {
		if s.Mechanism != x.mech || s.Bytes != int64(x.size) || s.Syscall != x.sendSyscall || s.Channel != channel || s.Error != "" {
			t.Errorf("send %d = %s, want %s %d bytes by %s on %s", i, describe([]*flow.Operation{s}), x.mech, x.size, x.sendSyscall, channel)
		}
	}
	data := recvs
	if x.eof {
		data = recvs[:x.count]
		if last := recvs[x.count]; last.Bytes != 0 || len(last.Links) != 0 {
			t.Errorf("last receive = %s, want end of file: 0 bytes, no links", describe([]*flow.Operation{last}))
		}
	}
	for i, r := range data {
		if r.Mechanism != x.mech || r.Bytes != int64(x.size) || r.Syscall != x.recvSyscall || r.Channel != channel {
			t.Errorf("receive %d = %s, want %s %d bytes by %s on %s", i, describe([]*flow.Operation{r}), x.mech, x.size, x.recvSyscall, channel)
		}
		if int(r.Peer.PID) != x.writer {
			t.Errorf("receive %d names peer %d, want the writer %d", i, r.Peer.PID, x.writer)
		}
		if len(r.Links) != 1 || r.Links[0] != sends[i].ID {
			t.Errorf("receive %d links %v, want [%s] (send %d)", i, r.Links, sends[i].ID, i)
		}
	}
	return sends, recvs
}

func describe(ops []*flow.Operation) string {
	s := ""
	for i, op := range ops {
		if i == 8 {
			return s + "\n\t..."
		}
		s += fmt.Sprintf("\n\t%s[%d] %s %s %s %s %s bytes=%d peer=%d links=%d error=%s",
			op.Comm, op.PID, op.Mechanism, op.Op, op.Syscall, op.Channel, op.Endpoint, op.Bytes, op.Peer.PID, len(op.Links), op.Error)
	}
	return s
}
