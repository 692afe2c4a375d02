package probes

import (
	"strconv"

	"golang.org/x/sys/unix"

	"github.com/icptrack/icptrack/flow"
)

// syscallTableSize matches SYSCALL_MAX in bpf/common.h.
const syscallTableSize = 512

// A syscall the entry hook looks at, and how. Numbers come from x/sys/unix
// for the architecture this binary runs on, so the BPF code needs none.
type hookedSyscall struct {
	nr    int
	name  string
	class ipcSyscallClass
	// needs: the entry hook sees the call only if one of these is traced.
	needs flow.MechanismSet
}

var (
	pipes          = flow.SetOf(flow.Pipe, flow.FIFO)
	sockets        = flow.SetOf(flow.UnixStream, flow.UnixDgram, flow.UnixSeqpacket, flow.TCP, flow.UDP)
	pipesOrSockets = pipes | sockets
)

var hookedSyscalls = append([]hookedSyscall{
	{unix.SYS_WRITE, "write", ipcSyscallClassSC_WRITE, pipesOrSockets},
	{unix.SYS_WRITEV, "writev", ipcSyscallClassSC_WRITEV, pipesOrSockets},
	{unix.SYS_PWRITEV2, "pwritev2", ipcSyscallClassSC_WRITEV, pipesOrSockets},
	{unix.SYS_READ, "read", ipcSyscallClassSC_READ, pipesOrSockets},
	{unix.SYS_READV, "readv", ipcSyscallClassSC_READV, pipesOrSockets},
	{unix.SYS_PREADV2, "preadv2", ipcSyscallClassSC_READV, pipesOrSockets},
	{unix.SYS_SPLICE, "splice", ipcSyscallClassSC_SPLICE, pipes},
	{unix.SYS_TEE, "tee", ipcSyscallClassSC_TEE, pipes},
	{unix.SYS_VMSPLICE, "vmsplice", ipcSyscallClassSC_VMSPLICE, pipes},
	{unix.SYS_OPENAT, "openat", ipcSyscallClassSC_OPEN, flow.SetOf(flow.FIFO)},
	{unix.SYS_OPENAT2, "openat2", ipcSyscallClassSC_OPEN, flow.SetOf(flow.FIFO)},
	{unix.SYS_SENDTO, "sendto", ipcSyscallClassSC_SENDTO, sockets},
	{unix.SYS_RECVFROM, "recvfrom", ipcSyscallClassSC_RECVFROM, sockets},
	{unix.SYS_SENDMSG, "sendmsg", ipcSyscallClassSC_SENDMSG, sockets},
	{unix.SYS_RECVMSG, "recvmsg", ipcSyscallClassSC_RECVMSG, sockets},
	{unix.SYS_SENDMMSG, "sendmmsg", ipcSyscallClassSC_SENDMMSG, sockets},
	{unix.SYS_RECVMMSG, "recvmmsg", ipcSyscallClassSC_RECVMMSG, sockets},
}, archSyscalls...)

// Syscalls that reach a socket's send or receive without being hooked,
// named in records taken without syscall hooks.
var otherSyscalls = map[int]string{
	unix.SYS_SENDFILE:        "sendfile",
	unix.SYS_IO_URING_ENTER:  "io_uring_enter",
	unix.SYS_PWRITE64:        "pwrite64",
	unix.SYS_PREAD64:         "pread64",
	unix.SYS_COPY_FILE_RANGE: "copy_file_range",
}

// syscallClasses is the table the entry hook indexes by syscall number.
// Without syscall hooks, sched_switch and sk_data_ready read it too, to
// tell whether a task is inside a send or a receive.
func syscallClasses(m flow.MechanismSet) [syscallTableSize]uint8 {
	var t [syscallTableSize]uint8
	for _, s := range hookedSyscalls {
		if s.needs&m != 0 {
			t[s.nr] = uint8(s.class)
		}
	}
	return t
}

var syscallNames [syscallTableSize]string

func init() {
	for nr, name := range otherSyscalls {
		syscallNames[nr] = name
	}
	for _, s := range hookedSyscalls {
		syscallNames[s.nr] = s.name
	}
}

// syscallName names a syscall number as the kernel reported it; 0xffff
// means the kernel did not know it.
func syscallName(nr uint16) string {
	if int(nr) < len(syscallNames) && syscallNames[nr] != "" {
		return syscallNames[nr]
	}
	if nr == 0xffff {
		return ""
	}
	return "syscall_" + strconv.Itoa(int(nr))
}
