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
	posixMQ        = flow.SetOf(flow.POSIXMQ)
	sysvMQ         = flow.SetOf(flow.SysVMQ)
	sysvShm        = flow.SetOf(flow.SysVShm)
	fileShm        = flow.SetOf(flow.POSIXShm, flow.Memfd)
	anyShm         = sysvShm | fileShm
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
	{unix.SYS_OPENAT, "openat", ipcSyscallClassSC_OPENAT, flow.SetOf(flow.FIFO, flow.POSIXShm)},
	{unix.SYS_OPENAT2, "openat2", ipcSyscallClassSC_OPENAT, flow.SetOf(flow.FIFO)},
	{unix.SYS_MQ_OPEN, "mq_open", ipcSyscallClassSC_MQ_OPEN, posixMQ},
	{unix.SYS_MQ_TIMEDSEND, "mq_timedsend", ipcSyscallClassSC_MQ_SEND, posixMQ},
	{unix.SYS_MQ_TIMEDRECEIVE, "mq_timedreceive", ipcSyscallClassSC_MQ_RECV, posixMQ},
	{unix.SYS_MQ_NOTIFY, "mq_notify", ipcSyscallClassSC_MQ_NOTIFY, posixMQ},
	{unix.SYS_MQ_UNLINK, "mq_unlink", ipcSyscallClassSC_MQ_UNLINK, posixMQ},
	{unix.SYS_MSGGET, "msgget", ipcSyscallClassSC_MSGGET, sysvMQ},
	{unix.SYS_MSGSND, "msgsnd", ipcSyscallClassSC_MSGSND, sysvMQ},
	{unix.SYS_MSGRCV, "msgrcv", ipcSyscallClassSC_MSGRCV, sysvMQ},
	{unix.SYS_MSGCTL, "msgctl", ipcSyscallClassSC_MSGCTL, sysvMQ},
	{unix.SYS_SHMGET, "shmget", ipcSyscallClassSC_SHMGET, sysvShm},
	{unix.SYS_SHMAT, "shmat", ipcSyscallClassSC_SHMAT, sysvShm},
	{unix.SYS_SHMDT, "shmdt", ipcSyscallClassSC_SHMDT, sysvShm},
	{unix.SYS_SHMCTL, "shmctl", ipcSyscallClassSC_SHMCTL, sysvShm},
	{unix.SYS_MMAP, "mmap", ipcSyscallClassSC_MMAP, fileShm},
	{unix.SYS_MUNMAP, "munmap", ipcSyscallClassSC_MUNMAP, anyShm},
	{unix.SYS_UNLINKAT, "unlinkat", ipcSyscallClassSC_UNLINKAT, flow.SetOf(flow.POSIXShm)},
	{unix.SYS_MEMFD_CREATE, "memfd_create", ipcSyscallClassSC_MEMFD, flow.SetOf(flow.Memfd)},
	{unix.SYS_FUTEX, "futex", ipcSyscallClassSC_FUTEX, anyShm},
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
	unix.SYS_SENDFILE:          "sendfile",
	unix.SYS_IO_URING_ENTER:    "io_uring_enter",
	unix.SYS_PWRITE64:          "pwrite64",
	unix.SYS_PREAD64:           "pread64",
	unix.SYS_COPY_FILE_RANGE:   "copy_file_range",
	unix.SYS_KILL:              "kill",
	unix.SYS_TKILL:             "tkill",
	unix.SYS_TGKILL:            "tgkill",
	unix.SYS_RT_SIGQUEUEINFO:   "rt_sigqueueinfo",
	unix.SYS_RT_TGSIGQUEUEINFO: "rt_tgsigqueueinfo",
	unix.SYS_PIDFD_SEND_SIGNAL: "pidfd_send_signal",
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
