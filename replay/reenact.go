package replay

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/icptrack/icptrack/flow"
)

// Options tune a re-enactment.
type Options struct {
	// Speed divides every time of the capture: 2 is twice as fast.
	Speed float64
	// Binary is the executable the stand-ins run (it must call
	// StandInMain first); the running one when empty.
	Binary string
	// Stderr takes the stand-ins' own error messages.
	Stderr io.Writer
	// Grace is how long past its time a step may wait for its other end,
	// and the re-enactment past its end (with a quarter of its length)
	// before stuck stand-ins are stopped; DefaultGrace when 0.
	Grace time.Duration
}

// DefaultGrace is Options.Grace's default.
const DefaultGrace = 10 * time.Second

// ErrNothing is returned for a plan with nothing to re-enact.
var ErrNothing = errors.New("nothing in the capture can be re-enacted")

// Result is what a re-enactment did.
type Result struct {
	// Done counts calls and bytes per mechanism and action.
	Done []doneCount
	// Failures are steps that did not go as in the capture.
	Failures []Failure
	// Took is from the first step's start to the last one's end; Late
	// the most a step started behind its time.
	Took time.Duration
	Late time.Duration
	// Signals counts the signals the stand-ins' handlers took, of
	// Deliveries the capture saw.
	Signals, Deliveries int
	// Stalled names what stand-ins were stuck in when they were stopped.
	Stalled []string
}

// Failure is a step that did not go as in the capture.
type Failure struct {
	PID  uint32
	Comm string
	Op   flow.OpID
	Err  string
}

// Reenact runs the plan: it recreates its channels, starts a stand-in
// per process, lets them go at once and waits until all are done, or
// stops them when they are stuck well past the plan's end.
func Reenact(ctx context.Context, p *Plan, opts Options) (*Result, error) {
	if len(p.StandIns) == 0 {
		return nil, ErrNothing
	}
	if opts.Speed <= 0 {
		opts.Speed = 1
	}
	if opts.Binary == "" {
		exe, err := os.Executable()
		if err != nil {
			return nil, fmt.Errorf("find icptrack's own binary for the stand-ins: %w", err)
		}
		opts.Binary = exe
	}
	if opts.Stderr == nil {
		opts.Stderr = os.Stderr
	}
	if opts.Grace <= 0 {
		opts.Grace = DefaultGrace
	}
	dir, err := os.MkdirTemp("", "icptrack-replay-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)

	chans := make([]*made, len(p.Channels))
	var res *Result
	defer func() {
		for i, m := range chans {
			if m != nil {
				m.close()
				if !unlinked(p, i, res) {
					m.remove()
				}
			}
		}
	}()
	for i, c := range p.Channels {
		if chans[i], err = makeChannel(dir, i, c); err != nil {
			return nil, fmt.Errorf("recreate channel %s (%s in the capture): %w", c.Mech, c.Name, err)
		}
	}
	holders := map[End]int{}
	for _, s := range p.StandIns {
		for _, e := range s.Ends {
			holders[e]++
		}
	}
	var procs []*exec.Cmd
	exited := make(chan int, len(p.StandIns))
	var waiting sync.WaitGroup
	defer func() {
		// Whatever happened, no stand-in outlives the replayer.
		for _, cmd := range procs {
			_ = cmd.Process.Kill()
		}
		waiting.Wait()
	}()
	for i, s := range p.StandIns {
		cmd, err := startStandIn(dir, s, p, chans, holders, opts)
		if err != nil {
			return nil, err
		}
		procs = append(procs, cmd)
		waiting.Add(1)
		go func() {
			defer waiting.Done()
			_ = cmd.Wait()
			exited <- i
		}()
	}
	// The stand-ins hold the ends now: the replayer's copies would keep
	// a stream from ever reaching its end.
	for _, m := range chans {
		m.close()
	}
	if err := waitAll(ctx, p, dir, readyFile, exited, 30*time.Second, "get ready"); err != nil {
		return nil, err
	}
	g := goSignal{Start: time.Now().Add(50 * time.Millisecond).UnixNano(), PIDs: map[uint32]int{}}
	for i, s := range p.StandIns {
		g.PIDs[s.PID] = procs[i].Process.Pid
	}
	if err := writeJSON(filepath.Join(dir, goFile), g); err != nil {
		return nil, err
	}
	limit := 50*time.Millisecond + time.Duration(float64(p.Duration)/opts.Speed)*5/4 + opts.Grace
	runErr := waitAll(ctx, p, dir, doneFile, exited, limit, "finish")
	if runErr != nil {
		// Stopped, each writes what it was stuck in. One already gone
		// is not signalled: os.Process knows it was waited for.
		for _, cmd := range procs {
			_ = cmd.Process.Signal(unix.SIGTERM)
		}
	} else if err := os.WriteFile(filepath.Join(dir, stopFile), nil, 0o600); err != nil {
		return nil, err
	}
	all := make(chan struct{})
	go func() {
		waiting.Wait()
		close(all)
	}()
	select {
	case <-all:
	case <-time.After(5 * time.Second):
	}
	res = collect(dir, p)
	if runErr != nil {
		return res, runErr
	}
	return res, nil
}

// startStandIn starts the stand-in for s, under the original's name.
func startStandIn(dir string, s *StandIn, p *Plan, chans []*made, holders map[End]int, opts Options) (*exec.Cmd, error) {
	exe, err := nameBinary(dir, opts.Binary, s.Comm)
	if err != nil {
		return nil, err
	}
	pt := part{PID: s.PID, Comm: s.Comm, Dir: dir, Speed: opts.Speed, Grace: opts.Grace, Threads: s.Threads, Signals: s.Signals, Deliveries: s.Deliveries}
	cmd := exec.Command(exe)
	for _, e := range s.Ends {
		m := chans[e.Channel]
		pe := partEnd{Channel: e.Channel, Role: e.Role, Mech: p.Channels[e.Channel].Mech, Shared: holders[e] > 1,
			Name: m.name, Key: m.key, MaxMsg: m.maxMsg, Depth: m.depth, Existed: m.existed}
		if f := m.files[e.Role]; f != nil {
			cmd.ExtraFiles = append(cmd.ExtraFiles, f)
			pe.FD = 2 + len(cmd.ExtraFiles)
		}
		pt.Ends = append(pt.Ends, pe)
	}
	path := filepath.Join(dir, fmt.Sprintf("part-%d.json", s.PID))
	if err := writeJSON(path, pt); err != nil {
		return nil, err
	}
	// No asynchronous preemption: Go's runtime would signal the
	// stand-in's own threads (SIGURG), which a trace would show.
	cmd.Env = append(os.Environ(), partEnv+"="+path, "GODEBUG=asyncpreemptoff=1")
	cmd.Stderr = opts.Stderr
	// A replayer killed outright takes its stand-ins with it.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start the stand-in for %s[%d]: %w", s.Comm, s.PID, err)
	}
	return cmd, nil
}

// nameBinary gives the stand-ins' binary the original process's name: a
// process's comm, which tracers report, is the name of the file it
// executed. A hard link when it can be, else a copy; not a symlink, which
// the kernel would follow to icptrack's own name.
func nameBinary(dir, binary, comm string) (string, error) {
	name := strings.Map(func(r rune) rune {
		if r == '/' || r == 0 {
			return '_'
		}
		return r
	}, comm)
	if name == "" || name == "." || name == ".." {
		name = "stand-in"
	}
	path := filepath.Join(dir, "bin", name)
	if exists(path) {
		return path, nil
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return "", err
	}
	if os.Link(binary, path) == nil {
		return path, nil
	}
	in, err := os.Open(binary)
	if err != nil {
		return "", err
	}
	defer in.Close()
	out, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o700)
	if err != nil {
		return "", err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return "", err
	}
	return path, out.Close()
}

// waitAll waits until every stand-in has made its file (ready, done), or
// one has exited first, or limit has passed.
func waitAll(ctx context.Context, p *Plan, dir string, file func(string, uint32) string, exited <-chan int, limit time.Duration, what string) error {
	deadline := time.Now().Add(limit)
	pause := 200 * time.Microsecond
	for {
		waiting := 0
		for _, s := range p.StandIns {
			if !exists(file(dir, s.PID)) {
				waiting++
			}
		}
		if waiting == 0 {
			return nil
		}
		select {
		case i := <-exited:
			s := p.StandIns[i]
			return fmt.Errorf("the stand-in for %s[%d] exited before the others could %s", s.Comm, s.PID, what)
		case <-ctx.Done():
			return ctx.Err()
		default:
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%d of %d stand-ins did not %s within %s", waiting, len(p.StandIns), what, limit.Round(time.Millisecond))
		}
		time.Sleep(pause)
		pause = min(2*pause, 5*time.Millisecond)
	}
}

// collect reads the stand-ins' results.
func collect(dir string, p *Plan) *Result {
	res := &Result{}
	var first, last int64
	counts := map[[2]int]*doneCount{}
	for _, s := range p.StandIns {
		res.Deliveries += s.Deliveries
		var r standInResult
		if err := readJSON(resultFile(dir, s.PID), &r); err != nil {
			res.Stalled = append(res.Stalled, fmt.Sprintf("%s[%d]: ended without saying what it did (killed, or failed as said above)", s.Comm, s.PID))
			continue
		}
		for _, d := range r.Done {
			k := [2]int{int(d.Mech), int(d.Action)}
			if counts[k] == nil {
				counts[k] = &doneCount{Mech: d.Mech, Action: d.Action}
			}
			counts[k].Calls += d.Calls
			counts[k].Bytes += d.Bytes
		}
		for _, f := range r.Failures {
			res.Failures = append(res.Failures, Failure{PID: s.PID, Comm: s.Comm, Op: f.Op, Err: f.Err})
		}
		for _, st := range r.Stalled {
			res.Stalled = append(res.Stalled, fmt.Sprintf("%s[%d] %s", s.Comm, s.PID, st))
		}
		if r.First != 0 && (first == 0 || r.First < first) {
			first = r.First
		}
		last = max(last, r.Last)
		res.Late = max(res.Late, r.Late)
		res.Signals += r.Signals
	}
	if first != 0 {
		res.Took = time.Duration(last - first)
	}
	for _, d := range counts {
		res.Done = append(res.Done, *d)
	}
	slices.SortFunc(res.Done, func(a, b doneCount) int {
		if a.Mech != b.Mech {
			return int(a.Mech) - int(b.Mech)
		}
		return int(a.Action) - int(b.Action)
	})
	return res
}

// unlinked reports whether a stand-in removed queue i as the capture's
// process did, so that the replayer need not (and its trace shows no
// failed removal).
func unlinked(p *Plan, i int, res *Result) bool {
	if res == nil || len(res.Stalled) > 0 {
		return false
	}
	failed := map[flow.OpID]bool{}
	for _, f := range res.Failures {
		failed[f.Op] = true
	}
	for _, s := range p.StandIns {
		for _, t := range s.Threads {
			for _, st := range t.Steps {
				if st.Channel == i && st.Action == Unlink && !failed[st.Op] {
					return true
				}
			}
		}
	}
	return false
}

// remove takes away a queue or segment the replayer made, or one the
// stand-ins made and left: they outlive their processes.
func (m *made) remove() {
	switch m.mech {
	case flow.POSIXMQ:
		if exists("/dev/mqueue"+m.name) || !exists("/dev/mqueue") {
			_ = mqUnlink(m.name)
		}
	case flow.SysVMQ:
		if id, ok := sysvObjects("msg")[m.key]; ok {
			_ = msgRemove(id)
		}
	case flow.SysVShm:
		if id, ok := sysvObjects("shm")[m.key]; ok {
			_, _ = unix.SysvShmCtl(id, unix.IPC_RMID, nil)
		}
	case flow.POSIXShm:
		if exists(shmDir + m.name) {
			_ = unix.Unlink(shmDir + m.name)
		}
	}
}
