package main

import (
	"fmt"
	"os"
	"unsafe"

	"golang.org/x/sys/unix"
)

// mqConn is a pair of POSIX message queues, one each way.
type mqConn struct{ in, out int }

func (c mqConn) send(msg []byte) error {
	_, _, e := unix.Syscall6(unix.SYS_MQ_TIMEDSEND, uintptr(c.out), uintptr(unsafe.Pointer(&msg[0])), uintptr(len(msg)), 0, 0, 0)
	if e != 0 {
		return fmt.Errorf("mq_timedsend: %w", e)
	}
	return nil
}

func (c mqConn) recv(msg []byte) error {
	n, _, e := unix.Syscall6(unix.SYS_MQ_TIMEDRECEIVE, uintptr(c.in), uintptr(unsafe.Pointer(&msg[0])), uintptr(len(msg)), 0, 0, 0)
	if e != 0 {
		return fmt.Errorf("mq_timedreceive: %w", e)
	}
	if int(n) != len(msg) {
		return fmt.Errorf("mq_timedreceive: %d bytes, want %d", n, len(msg))
	}
	return nil
}

// mqAttr is the kernel's struct mq_attr.
type mqAttr struct {
	flags, maxmsg, msgsize, curmsgs int64
	_                               [4]int64
}

// mqCreate creates a queue of msgSize-byte messages and unlinks it at
// once: it lives as long as a descriptor of it does, and a crashed run
// leaves nothing behind. The syscall takes the name without the leading
// slash that mq_open(3) wants.
func mqCreate(name string) (int, error) {
	p, err := unix.BytePtrFromString(name)
	if err != nil {
		return -1, err
	}
	attr := mqAttr{maxmsg: 10, msgsize: msgSize}
	fd, _, e := unix.Syscall6(unix.SYS_MQ_OPEN, uintptr(unsafe.Pointer(p)),
		unix.O_RDWR|unix.O_CREAT|unix.O_EXCL|unix.O_CLOEXEC, 0o600, uintptr(unsafe.Pointer(&attr)), 0, 0)
	if e != 0 {
		return -1, fmt.Errorf("mq_open %s: %w (is /proc/sys/fs/mqueue/queues_max reached?)", name, e)
	}
	if _, _, e := unix.Syscall(unix.SYS_MQ_UNLINK, uintptr(unsafe.Pointer(p)), 0, 0); e != 0 {
		unix.Close(int(fd))
		return -1, fmt.Errorf("mq_unlink %s: %w", name, e)
	}
	return int(fd), nil
}

func mqPingPong(n int) error {
	prefix := fmt.Sprintf("icptrack-bench-%d-", os.Getpid())
	to, err := mqCreate(prefix + "to")
	if err != nil {
		return err
	}
	from, err := mqCreate(prefix + "from")
	if err != nil {
		return err
	}
	peerTo, err := unix.FcntlInt(uintptr(to), unix.F_DUPFD_CLOEXEC, 0)
	if err != nil {
		return err
	}
	peerFrom, err := unix.FcntlInt(uintptr(from), unix.F_DUPFD_CLOEXEC, 0)
	if err != nil {
		return err
	}
	peer, err := partner("mq-echo", count(n), peerTo, peerFrom)
	if err != nil {
		return err
	}
	return pingPong(mqConn{in: from, out: to}, n, peer)
}
