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
	// pipes: the call can move bytes through a pipe; sockets: through a
	// socket. The entry hook sees it only if a traced mechanism needs it.
	pipes, sockets bool
}

var hookedSyscalls = []hookedSyscall{
	{unix.SYS_WRITE, "write", ipcSyscallClassSC_WRITE, true, true},
	{unix.SYS_WRITEV, "writev", ipcSyscallClassSC_WRITEV, true, true},
	{unix.SYS_PWRITEV2, "pwritev2", ipcSyscallClassSC_WRITEV, true, true},
	{unix.SYS_READ, "read", ipcSyscallClassSC_READ, true, true},
	{unix.SYS_READV, "readv", ipcSyscallClassSC_READV, true, true},
	{unix.SYS_PREADV2, "preadv2", ipcSyscallClassSC_READV, true, true},
	{unix.SYS_SPLICE, "splice", ipcSyscallClassSC_SPLICE, true, false},
	{unix.SYS_TEE, "tee", ipcSyscallClassSC_TEE, true, false},
	{unix.SYS_VMSPLICE, "vmsplice", ipcSyscallClassSC_VMSPLICE, true, false},
	{unix.SYS_SENDTO, "sendto", ipcSyscallClassSC_SENDTO, false, true},
	{unix.SYS_RECVFROM, "recvfrom", ipcSyscallClassSC_RECVFROM, false, true},
	{unix.SYS_SENDMSG, "sendmsg", ipcSyscallClassSC_SENDMSG, false, true},
	{unix.SYS_RECVMSG, "recvmsg", ipcSyscallClassSC_RECVMSG, false, true},
	{unix.SYS_SENDMMSG, "sendmmsg", ipcSyscallClassSC_SENDMMSG, false, true},
	{unix.SYS_RECVMMSG, "recvmmsg", ipcSyscallClassSC_RECVMMSG, false, true},
}

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
func syscallClasses(m flow.MechanismSet, sockets bool) [syscallTableSize]uint8 {
	var t [syscallTableSize]uint8
	pipes := m.Has(flow.Pipe) || m.Has(flow.FIFO)
	for _, s := range hookedSyscalls {
		if (s.pipes && pipes) || (s.sockets && sockets) {
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
