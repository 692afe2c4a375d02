package replay

import (
	"fmt"
	"os"
	"os/signal"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/icptrack/icptrack/flow"
)

// StandInMain runs a stand-in when the environment says this process is
// one, and exits; otherwise it returns at once. Call it first in main:
// the replayer starts its stand-ins by executing its own binary again.
func StandInMain() {
	path := os.Getenv(partEnv)
	if path == "" {
		return
	}
	if err := standIn(path); err != nil {
		fmt.Fprintf(os.Stderr, "icptrack: replay stand-in %s: %v\n", strings.Join(os.Args, " "), err)
		os.Exit(1)
	}
	os.Exit(0)
}

// runner is a running stand-in.
type runner struct {
	part  part
	ends  map[int]*endState // by channel
	start time.Time
	pids  map[uint32]int

	mu       sync.Mutex
	counts   map[[2]int]*doneCount
	failures []failure
	first    time.Time
	last     time.Time
	late     time.Duration
	current  []atomic.Value // per thread: the step it is in
	signals  atomic.Int64
}

// endState is a channel end as the stand-in holds it.
type endState struct {
	partEnd
	mu   sync.Mutex
	fd   int // -1 when closed or not yet opened
	uses int // steps left that use it
	// maps are a segment's attachments, the latest last.
	maps [][]byte
}

func standIn(path string) error {
	r := &runner{ends: map[int]*endState{}, counts: map[[2]int]*doneCount{}}
	if err := readJSON(path, &r.part); err != nil {
		return err
	}
	p := &r.part
	for _, e := range p.Ends {
		es := &endState{partEnd: e, fd: -1}
		if e.FD > 0 {
			es.fd = e.FD
			// The replayer's descriptors may have been non-blocking;
			// the stand-in's calls block, as the captured ones did.
			if err := unix.SetNonblock(e.FD, false); err != nil {
				return fmt.Errorf("channel %d: descriptor %d: %v", e.Channel, e.FD, err)
			}
		}
		r.ends[e.Channel] = es
	}
	for _, t := range p.Threads {
		for _, s := range t.Steps {
			if e := r.ends[s.Channel]; e != nil && s.Channel >= 0 {
				e.uses++
			}
		}
	}
	sigs := make(chan os.Signal, 64)
	if len(p.Signals) > 0 {
		list := make([]os.Signal, len(p.Signals))
		for i, s := range p.Signals {
			list[i] = syscall.Signal(s)
		}
		signal.Notify(sigs, list...)
		go func() {
			for range sigs {
				r.signals.Add(1)
			}
		}()
	}
	stop := make(chan os.Signal, 1)
	signal.Notify(stop, unix.SIGTERM)
	go func() {
		<-stop
		r.stalled()
		os.Exit(1)
	}()

	r.current = make([]atomic.Value, len(p.Threads))
	begin := make(chan struct{})
	var wg sync.WaitGroup
	for i, t := range p.Threads {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r.thread(i, t, begin)
		}()
	}
	if err := os.WriteFile(readyFile(p.Dir, p.PID), nil, 0o600); err != nil {
		return err
	}
	var g goSignal
	if err := waitFor(p.Dir+"/"+goFile, time.Minute); err != nil {
		return fmt.Errorf("the replayer never said go: %v", err)
	}
	if err := readJSON(p.Dir+"/"+goFile, &g); err != nil {
		return err
	}
	r.start, r.pids = time.Unix(0, g.Start), g.PIDs
	close(begin)
	wg.Wait()
	if err := os.WriteFile(doneFile(p.Dir, p.PID), nil, 0o600); err != nil {
		return err
	}
	// Stay until every stand-in is done: one may still signal this one.
	_ = waitFor(p.Dir+"/"+stopFile, 24*time.Hour)
	for end := time.Now().Add(200 * time.Millisecond); r.signals.Load() < int64(p.Deliveries) && time.Now().Before(end); {
		time.Sleep(time.Millisecond)
	}
	return writeJSON(resultFile(p.Dir, p.PID), r.result())
}

// waitFor waits until path exists.
func waitFor(path string, limit time.Duration) error {
	pause := 100 * time.Microsecond
	for end := time.Now().Add(limit); ; {
		if exists(path) {
			return nil
		}
		if time.Now().After(end) {
			return fmt.Errorf("%s did not appear within %s", path, limit)
		}
		time.Sleep(pause)
		pause = min(2*pause, 2*time.Millisecond)
	}
}

// thread does one thread's steps in order, each at its time, on an OS
// thread of its own named like the original process.
func (r *runner) thread(i int, t *Thread, begin <-chan struct{}) {
	runtime.LockOSThread()
	setThreadName(r.part.Comm)
	<-begin
	for si := range t.Steps {
		s := &t.Steps[si]
		r.current[i].Store(fmt.Sprintf("thread %d step %d (%s, capture id %s)", t.TID, si+1, s.Action, s.Op))
		for c := 0; c < s.Calls; c++ {
			at := s.At
			if c > 0 {
				at += s.Spread * time.Duration(c) / time.Duration(s.Calls)
			}
			began := r.waitUntil(at)
			n := s.Bytes / int64(s.Calls)
			if int64(c) < s.Bytes%int64(s.Calls) {
				n++
			}
			err := r.do(s, c, n, r.deadline(s, at))
			r.record(s, n, began, err)
			if err != nil {
				break // the rest of the record's calls would fail alike
			}
		}
		r.used(s.Channel)
	}
	r.current[i].Store("")
}

// waitUntil sleeps until step time at, scaled by the speed, and returns
// when it woke.
func (r *runner) waitUntil(at time.Duration) time.Time {
	when := r.start.Add(time.Duration(float64(at) / r.part.Speed))
	if d := time.Until(when); d > 0 {
		time.Sleep(d)
	}
	now := time.Now()
	r.mu.Lock()
	if late := now.Sub(when); late > r.late {
		r.late = late
	}
	r.mu.Unlock()
	return now
}

// deadline is how long a call may wait for its other end: well past when
// it ended in the capture.
func (r *runner) deadline(s *Step, at time.Duration) time.Time {
	when := r.start.Add(time.Duration(float64(at) / r.part.Speed))
	return when.Add(r.part.Grace + 2*time.Duration(float64(s.Spread)/r.part.Speed))
}

func (r *runner) record(s *Step, n int64, began time.Time, err error) {
	now := time.Now()
	r.mu.Lock()
	defer r.mu.Unlock()
	if err != nil {
		r.failures = append(r.failures, failure{Op: s.Op, Err: fmt.Sprintf("%s: %v", s.Action, err)})
		return
	}
	mech := flow.Signal
	if e := r.ends[s.Channel]; e != nil && s.Channel >= 0 {
		mech = e.Mech
	}
	k := [2]int{int(mech), int(s.Action)}
	d := r.counts[k]
	if d == nil {
		d = &doneCount{Mech: mech, Action: s.Action}
		r.counts[k] = d
	}
	d.Calls++
	d.Bytes += n
	if r.first.IsZero() || began.Before(r.first) {
		r.first = began
	}
	if now.After(r.last) {
		r.last = now
	}
}

// used notes that a step on channel ch is over; after the last, the end
// is given up, so that a reader of the other end finds the end of the
// stream as it did in the capture.
func (r *runner) used(ch int) {
	e := r.ends[ch]
	if ch < 0 || e == nil {
		return
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.uses--; e.uses > 0 || e.fd < 0 {
		return
	}
	switch {
	case e.Role == Write && e.Mech.Stream():
		_ = unix.Close(e.fd)
		e.fd = -1
	case (e.Role == EndA || e.Role == EndB) && (e.Mech.Stream() || e.Mech == flow.UnixSeqpacket):
		// Shut down, not closed: a socket closed with bytes unread
		// resets the connection, and the other end would lose what it
		// has not read yet.
		if e.Shared {
			_ = unix.Close(e.fd)
			e.fd = -1
		} else {
			_ = unix.Shutdown(e.fd, unix.SHUT_WR)
		}
	}
}

func (r *runner) result() standInResult {
	r.mu.Lock()
	defer r.mu.Unlock()
	res := standInResult{PID: r.part.PID, Failures: r.failures, Late: r.late, Signals: int(r.signals.Load())}
	if !r.first.IsZero() {
		res.First, res.Last = r.first.UnixNano(), r.last.UnixNano()
	}
	for _, d := range r.counts {
		res.Done = append(res.Done, *d)
	}
	return res
}

// stalled writes the result of a stand-in the replayer stopped, with the
// steps its threads were in.
func (r *runner) stalled() {
	res := r.result()
	for i := range r.current {
		if s, _ := r.current[i].Load().(string); s != "" {
			res.Stalled = append(res.Stalled, s)
		}
	}
	_ = writeJSON(resultFile(r.part.Dir, r.part.PID), res)
}

// setThreadName names the calling thread, which is what a tracer reports
// as the comm of the operations it makes.
func setThreadName(name string) {
	b := make([]byte, 16)
	copy(b[:15], name)
	_ = unix.Prctl(unix.PR_SET_NAME, uintptr(unsafe.Pointer(&b[0])), 0, 0, 0)
}
