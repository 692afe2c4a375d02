package probes

import (
	"fmt"
	"maps"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"syscall"
	"testing"

	"github.com/icptrack/icptrack/flow"
	"github.com/icptrack/icptrack/internal/ipcload"
)

// tree is a writer and a reader on a pipe, started before tracing, that
// wait a while before they move any bytes.
type tree struct{ writer, reader *exec.Cmd }

func startTree(t *testing.T, delay string, argv0 string) tree {
	t.Helper()
	r, w := pipe(t)
	start := func(mode string, f *os.File, args ...string) *exec.Cmd {
		cmd := newWorkload(mode, args...)
		if argv0 != "" {
			cmd.Path = argv0
		}
		cmd.Env = append(cmd.Env, ipcload.DelayEnv+"="+delay)
		cmd.ExtraFiles = []*os.File{f}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		return cmd
	}
	tr := tree{
		writer: start("write", w, "3", strconv.Itoa(msgCount), strconv.Itoa(msgSize), "write"),
		reader: start("read", r, "3", strconv.Itoa(msgSize), "read"),
	}
	closeAll(r, w)
	return tr
}

// gate holds workloads back until tracing has started, however long
// loading takes (seconds under emulation).
type gate struct {
	path  string
	delay string
}

func startGate(t *testing.T) gate {
	p := filepath.Join(t.TempDir(), "go")
	return gate{path: p, delay: "until:" + p}
}

func (g gate) open(t *testing.T) {
	t.Helper()
	if err := os.WriteFile(g.path, nil, 0o644); err != nil {
		t.Fatal(err)
	}
}

func (tr tree) pids() []int { return []int{tr.writer.Process.Pid, tr.reader.Process.Pid} }

func (tr tree) check(t *testing.T, ops []*flow.Operation) {
	t.Helper()
	checkTransfer(t, ops, transfer{mech: flow.Pipe, writer: tr.writer.Process.Pid, reader: tr.reader.Process.Pid,
		count: msgCount, size: msgSize, sendSyscall: "write", recvSyscall: "read", eof: true})
}

func traced(ops []*flow.Operation, pids []int) bool {
	for _, op := range ops {
		for _, p := range pids {
			if int(op.PID) == p {
				return true
			}
		}
	}
	return false
}

// Two unrelated process trees, both already running with their pipe open
// when tracing starts: only the one selected by pid appears, and its
// receives still find their writer.
func TestPIDSelectorTracesOnlyItsTree(t *testing.T) {
	gate := startGate(t)
	a := startTree(t, gate.delay, "")
	b := startTree(t, gate.delay, "")
	cfg := DefaultConfig()
	cfg.TraceAll = true
	cfg.Select = &Selector{PIDs: a.pids()}
	c := startCapture(t, cfg)
	gate.open(t)
	wait(t, a.writer, a.reader, b.writer, b.reader)
	ops := c.stop(t)
	a.check(t, ops)
	if traced(ops, b.pids()) {
		t.Errorf("the unselected tree %v was traced", b.pids())
	}
}

func TestNameSelector(t *testing.T) {
	dir := t.TempDir()
	named := filepath.Join(dir, "icpt-selected")
	if err := os.Symlink(os.Args[0], named); err != nil {
		t.Fatal(err)
	}
	cfg := DefaultConfig()
	cfg.TraceAll = true
	cfg.Select = &Selector{Comms: []string{"icpt-selected"}}
	c := startCapture(t, cfg)
	a := startTree(t, "0s", named)
	b := startTree(t, "0s", "")
	wait(t, a.writer, a.reader, b.writer, b.reader)
	ops := c.stop(t)
	a.check(t, ops)
	if traced(ops, b.pids()) {
		t.Errorf("processes not named icpt-selected were traced")
	}
}

// A real cgroup, named the way Docker's systemd driver names a container's:
// a process in it is selected by the cgroup, and its operations carry the
// container id and the cgroup id.
func TestCgroupSelectorAndContainerID(t *testing.T) {
	root := Cgroup2Mount()
	if root == "" {
		t.Skip("no cgroup v2 hierarchy is mounted")
	}
	id := fmt.Sprintf("%016x%016x%016x%016x", rand.Uint64(), rand.Uint64(), rand.Uint64(), rand.Uint64())
	dir := filepath.Join(root, "docker-"+id+".scope")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatalf("create a cgroup: %v", err)
	}
	t.Cleanup(func() { os.Remove(dir) })
	var st syscall.Stat_t
	if err := syscall.Stat(dir, &st); err != nil {
		t.Fatal(err)
	}

	gate := startGate(t)
	a := startTree(t, gate.delay, "")
	b := startTree(t, gate.delay, "")
	for _, pid := range a.pids() {
		if err := os.WriteFile(filepath.Join(dir, "cgroup.procs"), []byte(strconv.Itoa(pid)), 0o644); err != nil {
			t.Fatalf("move %d into the cgroup: %v", pid, err)
		}
	}
	cfg := DefaultConfig()
	cfg.TraceAll = true
	cfg.Select = &Selector{Cgroup: dir}
	c := startCapture(t, cfg)
	gate.open(t)
	wait(t, a.writer, a.reader, b.writer, b.reader)
	ops := c.stop(t)
	a.check(t, ops)
	if traced(ops, b.pids()) {
		t.Errorf("processes outside the cgroup were traced")
	}
	for _, op := range ops {
		if op.ContainerID != id || op.CgroupID != st.Ino {
			t.Fatalf("operation in container %q cgroup %d, want %s and %d", op.ContainerID, op.CgroupID, id, st.Ino)
		}
	}
}

func TestContainerIDFromCgroupPaths(t *testing.T) {
	id := "3f2a9c1e5b7d4a6093f2a9c1e5b7d4a6093f2a9c1e5b7d4a6093f2a9c1e5b7d4"
	for path, want := range map[string]string{
		"/docker/" + id:                         id,
		"/system.slice/docker-" + id + ".scope": id,
		"/kubepods/burstable/pod0b8a1b1e-1f7e-4c5c-9a2e-1c2d3e4f5a6b/" + id:                                        id,
		"/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-podx.slice/cri-containerd-" + id + ".scope": id,
		"/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pody.slice/crio-" + id + ".scope":             id,
		"/machine.slice/libpod-" + id + ".scope":                                                                   id,
		"/user.slice/user-1000.slice/user@1000.service/user.slice/libpod-" + id + ".scope/container":               id,
		"/machine.slice/libpod-conmon-" + id + ".scope":                                                            "",
		"/kubepods.slice/crio-conmon-" + id + ".scope":                                                             "",
		"/user.slice/user-1000.slice/session-2.scope":                                                              "",
		"/": "",
		"":  "",
	} {
		if got := ContainerIDFromCgroup(path); got != want {
			t.Errorf("ContainerIDFromCgroup(%q) = %q, want %q", path, got, want)
		}
	}
}

// Every operation names its process's executable; with Cmdline, its
// arguments too.
func TestOperationsNameTheirProcess(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Cmdline = true
	c := startCapture(t, cfg)
	r, w := pipe(t)
	wc := spawn(t, "write", []*os.File{w}, "3", "3", "8", "write")
	rc := spawn(t, "read", []*os.File{r}, "3", "8", "read")
	closeAll(r, w)
	wait(t, wc, rc)
	ops := c.stop(t)
	exe, _ := os.Executable()
	sends := withOp(byPID(ops, wc.Process.Pid), flow.Send)
	if len(sends) == 0 {
		t.Fatal("no sends")
	}
	for _, op := range sends {
		if op.Exe != exe || op.Cmdline != exe+" 3 3 8 write" || op.PPID != uint32(os.Getpid()) {
			t.Fatalf("operation of %q (%q), parent %d; want %q (%q), parent %d", op.Exe, op.Cmdline, op.PPID, exe, exe+" 3 3 8 write", os.Getpid())
		}
	}
}

// The selectors change while the same processes run, as a reload changes
// them: each process is judged again at its next call, and one forked
// from a traced process stays traced while the selector that named that
// ancestor still names it. Two trees move a phase of pipe messages after
// each change; phase P's messages are msgSize+P bytes.
func TestSelectorsChangeWhileTracing(t *testing.T) {
	dir := t.TempDir()
	named := filepath.Join(dir, "icpt-tree-b")
	if err := os.Symlink(os.Args[0], named); err != nil {
		t.Fatal(err)
	}
	const count = 20
	phased := func(mode, name string, f *os.File, argv0 string, wrap ...string) *exec.Cmd {
		args := []string{"3", strconv.Itoa(msgSize), strconv.Itoa(count), dir, name, "5"}
		cmd := newWorkload(mode, args...)
		if len(wrap) > 0 {
			// Tree a's writer is forked by a parent once tracing runs.
			cmd = newWorkload("spawn", append([]string{"1", mode}, args...)...)
			cmd.Env = append(cmd.Env, ipcload.DelayEnv+"=until:"+ipcload.PhaseGate(dir, 0))
		}
		if argv0 != "" {
			cmd.Path = argv0
		}
		cmd.ExtraFiles = []*os.File{f}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		return cmd
	}
	ar, aw := pipe(t)
	br, bw := pipe(t)
	aParent := phased("phased-write", "a-writer", aw, "", "spawn")
	aReader := phased("phased-read", "a-reader", ar, "")
	bWriter := phased("phased-write", "b-writer", bw, named)
	bReader := phased("phased-read", "b-reader", br, named)
	closeAll(ar, aw, br, bw)
	parent := aParent.Process.Pid

	cfg := DefaultConfig()
	cfg.TraceAll = true
	cfg.Select = &Selector{PIDs: []int{parent}}
	c := startCapture(t, cfg)
	names := []string{"a-writer", "a-reader", "b-writer", "b-reader"}
	phases := []struct {
		sel    *Selector
		traced []string
	}{
		// a's writer, forked by the selected parent.
		{cfg.Select, []string{"a-writer"}},
		// Still a's writer, for the parent still named; and tree b by name.
		{&Selector{PIDs: []int{parent}, Comms: []string{"icpt-tree-b"}}, []string{"a-writer", "b-writer", "b-reader"}},
		// The parent is no longer named: its child is let go too.
		{&Selector{Comms: []string{"icpt-tree-b"}}, []string{"b-writer", "b-reader"}},
		// The whole host.
		{nil, names},
		// One process by pid, after the whole host.
		{&Selector{PIDs: []int{aReader.Process.Pid}}, []string{"a-reader"}},
	}
	pids := map[string]int{}
	for p, ph := range phases {
		if p > 0 {
			if err := c.tr.SetSelector(ph.sel); err != nil {
				t.Fatalf("phase %d: %v", p, err)
			}
		}
		got, err := ipcload.RunPhase(dir, p, names...)
		if err != nil {
			t.Fatal(err)
		}
		maps.Copy(pids, got)
	}
	wait(t, aParent, aReader, bWriter, bReader)
	ops := c.stop(t)
	if pids["a-writer"] == parent {
		t.Fatal("tree a's writer is its parent, not a child of it")
	}
	for p, ph := range phases {
		for _, name := range names {
			n := 0
			for _, op := range ops {
				if int(op.PID) == pids[name] && op.Mechanism == flow.Pipe && op.Bytes == int64(msgSize+p) {
					n++
				}
			}
			want := 0
			if slices.Contains(ph.traced, name) {
				want = count
			}
			if n != want {
				t.Errorf("phase %d (selectors %+v): %s made %d traced operations, want %d", p, ph.sel, name, n, want)
			}
		}
	}
}

// A process judged outside the selected cgroup is judged again once it is
// moved into it, as a container runtime moves its container's first
// process after that process has already made calls of its own.
func TestCgroupSelectorTakesAProcessMovedIntoIt(t *testing.T) {
	root := Cgroup2Mount()
	if root == "" {
		t.Skip("no cgroup v2 hierarchy is mounted")
	}
	cg := filepath.Join(root, fmt.Sprintf("icptrack-test-%x.scope", rand.Uint64()))
	if err := os.Mkdir(cg, 0o755); err != nil {
		t.Fatalf("create a cgroup: %v", err)
	}
	t.Cleanup(func() { os.Remove(cg) })
	dir := t.TempDir()
	const count = 20
	r, w := pipe(t)
	args := []string{"3", strconv.Itoa(msgSize), strconv.Itoa(count), dir}
	writer := spawn(t, "phased-write", []*os.File{w}, append(args, "writer", "2")...)
	reader := spawn(t, "phased-read", []*os.File{r}, append(args, "reader", "2")...)
	closeAll(r, w)

	cfg := DefaultConfig()
	cfg.TraceAll = true
	cfg.Select = &Selector{Cgroup: cg}
	c := startCapture(t, cfg)
	for p := range 2 {
		if p == 1 {
			for _, pid := range []int{writer.Process.Pid, reader.Process.Pid} {
				if err := os.WriteFile(filepath.Join(cg, "cgroup.procs"), []byte(strconv.Itoa(pid)), 0o644); err != nil {
					t.Fatalf("move %d into the cgroup: %v", pid, err)
				}
			}
		}
		if _, err := ipcload.RunPhase(dir, p, "writer", "reader"); err != nil {
			t.Fatal(err)
		}
	}
	wait(t, writer, reader)
	ops := c.stop(t)
	for p, want := range []int{0, count} {
		for _, cmd := range []*exec.Cmd{writer, reader} {
			n := 0
			for _, op := range ops {
				if int(op.PID) == cmd.Process.Pid && op.Mechanism == flow.Pipe && op.Bytes == int64(msgSize+p) {
					n++
				}
			}
			if n != want {
				t.Errorf("phase %d (in the cgroup: %t): pid %d made %d traced operations, want %d", p, p == 1, cmd.Process.Pid, n, want)
			}
		}
	}
}
