package probes

import (
	"bytes"
	"os"
	"strconv"
	"strings"

	lru "github.com/hashicorp/golang-lru/v2"

	"github.com/icptrack/icptrack/flow"
)

// processTable knows, for each traced process, what its operations report
// beyond the kernel's per-operation record: its executable, command line
// (when asked for) and container. The kernel keeps it current with fork,
// exec, exit and rename records; a process icptrack has not seen start is
// read from /proc the first time it shows up.
type processTable struct {
	procs   *lru.Cache[uint32, *processInfo]
	cgroups *cgroupPaths
	cmdline bool
}

type processInfo struct {
	flow.Process
	comm     string
	fromProc bool // read from /proc, not yet confirmed by an exec
}

func newProcessTable(cmdline bool) *processTable {
	procs, _ := lru.New[uint32, *processInfo](1 << 16)
	return &processTable{procs: procs, cgroups: newCgroupPaths(), cmdline: cmdline}
}

// process returns what is known of pid, reading /proc on first sight.
func (t *processTable) process(pid uint32, cgroup uint64) flow.Process {
	if pid == 0 {
		return flow.Process{}
	}
	p, ok := t.procs.Get(pid)
	if !ok {
		p = t.fromProc(pid)
		t.procs.Add(pid, p)
	}
	if cgroup != 0 && cgroup != p.CgroupID {
		p.CgroupID = cgroup
		if path, ok := t.cgroups.path(cgroup); ok {
			p.ContainerID = ContainerIDFromCgroup(path)
		}
	}
	return p.Process
}

// named returns what is known of pid with its name.
func (t *processTable) named(pid uint32) (flow.Process, string) {
	p, ok := t.procs.Get(pid)
	if !ok {
		p = t.fromProc(pid)
		t.procs.Add(pid, p)
	}
	return p.Process, p.comm
}

func (t *processTable) fromProc(pid uint32) *processInfo {
	p := &processInfo{fromProc: true}
	dir := "/proc/" + itoa(pid)
	p.Exe, _ = os.Readlink(dir + "/exe")
	if b, err := os.ReadFile(dir + "/comm"); err == nil {
		p.comm = strings.TrimSuffix(string(b), "\n")
	}
	if t.cmdline {
		if b, err := os.ReadFile(dir + "/cmdline"); err == nil {
			p.Cmdline = cmdline(b)
		}
	}
	p.ContainerID, _ = containerIDFromProc(pid)
	return p
}

// apply takes a record of the kernel's process events.
func (t *processTable) apply(r *ipcProcRecord) {
	switch ipcProcChange(r.Event) {
	case ipcProcChangePROC_FORK:
		// The child runs its parent's program until it execs.
		child := &processInfo{}
		if parent, ok := t.procs.Get(r.Ppid); ok {
			child.Process, child.comm = parent.Process, parent.comm
		} else {
			child = t.fromProc(r.Pid)
		}
		child.CgroupID = 0 // learnt from the child's own records
		t.procs.Add(r.Pid, child)
	case ipcProcChangePROC_EXEC:
		p := &processInfo{comm: cString(r.Comm[:])}
		p.Exe = cString(r.Filename[:min(int(r.FilenameLen), len(r.Filename))])
		if !strings.HasPrefix(p.Exe, "/") {
			// execve was given a relative path: the kernel knows the
			// file, and the process has nearly always not exited yet.
			if abs, err := os.Readlink("/proc/" + itoa(r.Pid) + "/exe"); err == nil {
				p.Exe = abs
			}
		}
		if t.cmdline {
			n := min(int(r.ArgsLen), len(r.Args))
			p.Cmdline = cmdline(int8Bytes(r.Args[:n]))
		}
		if old, ok := t.procs.Get(r.Pid); ok {
			p.ContainerID = old.ContainerID
		}
		if path, ok := t.cgroups.path(r.Cgroup); ok {
			p.ContainerID = ContainerIDFromCgroup(path)
		}
		p.CgroupID = r.Cgroup
		t.procs.Add(r.Pid, p)
	case ipcProcChangePROC_RENAME:
		if p, ok := t.procs.Get(r.Pid); ok {
			p.comm = cString(r.Comm[:])
		}
	case ipcProcChangePROC_EXIT:
		// Records of the process may still be on their way: keep it
		// until the table needs the room.
	}
}

// cmdline turns NUL-separated arguments into one line.
func cmdline(b []byte) string {
	b = bytes.TrimRight(b, "\x00")
	return strings.ReplaceAll(string(b), "\x00", " ")
}

func cString(c []int8) string {
	b := int8Bytes(c)
	if i := bytes.IndexByte(b, 0); i >= 0 {
		b = b[:i]
	}
	return string(b)
}

func int8Bytes(c []int8) []byte {
	b := make([]byte, len(c))
	for i, v := range c {
		b[i] = byte(v)
	}
	return b
}

func itoa(n uint32) string { return strconv.FormatUint(uint64(n), 10) }
