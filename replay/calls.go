package replay

import (
	"errors"
	"fmt"
	"strings"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// The calls a stand-in makes. Each is one syscall per captured call, as
// far as the kernel allows: a read waits until all its bytes are there
// before it reads, so that it takes in one call what one call took.

var errTimedOut = errors.New("timed out")

// waitReadable waits until fd holds at least n bytes; or as much as it
// can hold, when that is less (a capture's pipe may have been larger);
// or until the other end is gone, or has sent nothing more for a second
// (then the read takes what there is, in more calls than the capture's).
func waitReadable(fd int, n int, deadline time.Time) error {
	capacity, err := unix.FcntlInt(uintptr(fd), unix.F_GETPIPE_SZ, 0)
	if err != nil {
		capacity = 0 // a socket: its buffers grow as they need
	}
	pause := 20 * time.Microsecond
	last, since := -1, time.Now()
	for {
		// SIOCINQ is FIONREAD: bytes waiting, in a pipe as in a socket.
		avail, err := unix.IoctlGetInt(fd, unix.SIOCINQ)
		if err != nil {
			return fmt.Errorf("FIONREAD: %w", err)
		}
		if avail >= n || (capacity > 0 && avail >= capacity) {
			return nil
		}
		left := time.Until(deadline)
		if left <= 0 {
			return fmt.Errorf("%w with %d of %d bytes there", errTimedOut, avail, n)
		}
		wait := min(left, 100*time.Millisecond)
		if avail > 0 {
			// Some bytes are there, the rest on their way.
			if avail != last {
				last, since = avail, time.Now()
			} else if time.Since(since) > time.Second {
				return nil
			}
			wait = 0
		}
		gone, err := pollIn(fd, wait)
		if err != nil || gone {
			return err
		}
		if avail > 0 {
			time.Sleep(pause)
			pause = min(2*pause, time.Millisecond)
		}
	}
}

// pollIn waits up to d for fd to be readable; gone is set when the other
// end has closed or shut down its side.
func pollIn(fd int, d time.Duration) (gone bool, err error) {
	fds := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN | unix.POLLRDHUP}}
	ms := 0
	if d > 0 {
		ms = int(d.Milliseconds()) + 1
	}
	for {
		_, err = unix.Poll(fds, ms)
		if err != unix.EINTR {
			break
		}
	}
	if err != nil {
		return false, fmt.Errorf("poll: %w", err)
	}
	return fds[0].Revents&(unix.POLLHUP|unix.POLLRDHUP) != 0, nil
}

// waitIn waits until fd is readable (a message, or the end), at most
// until deadline.
func waitIn(fd int, deadline time.Time) error {
	for {
		left := time.Until(deadline)
		if left <= 0 {
			return errTimedOut
		}
		fds := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
		n, err := unix.Poll(fds, int(min(left, time.Second).Milliseconds())+1)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return fmt.Errorf("poll: %w", err)
		}
		if n > 0 {
			return nil
		}
	}
}

// writeAll writes b in one call, or in more if a signal cuts it short.
func writeAll(fd int, b []byte) error {
	for {
		n, err := unix.Write(fd, b)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return err
		}
		if n == len(b) {
			return nil
		}
		b = b[n:]
	}
}

// readStream reads len(b) bytes once they are all there.
func readStream(fd int, b []byte, deadline time.Time) error {
	for len(b) > 0 {
		if err := waitReadable(fd, len(b), deadline); err != nil {
			return err
		}
		n, err := unix.Read(fd, b)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return err
		}
		if n == 0 {
			return fmt.Errorf("the other end closed with %d bytes still to read", len(b))
		}
		b = b[n:]
	}
	return nil
}

// readMessage reads one message (a datagram, a seqpacket record) into b.
func readMessage(fd int, b []byte, deadline time.Time) (int, error) {
	for {
		if err := waitIn(fd, deadline); err != nil {
			return 0, err
		}
		n, err := unix.Read(fd, b)
		if err == unix.EINTR {
			continue
		}
		return n, err
	}
}

// readEnd reads at the end of a stream: it must find nothing.
func readEnd(fd int, deadline time.Time) error {
	var b [64]byte
	for {
		if err := waitIn(fd, deadline); err != nil {
			return err
		}
		n, err := unix.Read(fd, b[:])
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return err
		}
		if n > 0 {
			return fmt.Errorf("expected the end of the stream, read %d bytes", n)
		}
		return nil
	}
}

// POSIX message queues: Go's standard library does not wrap them.

type mqAttr struct {
	flags, maxmsg, msgsize, curmsgs int64
	_                               [4]int64
}

func mqOpen(name string, flags int, maxmsg, msgsize int64) (int, error) {
	p, err := unix.BytePtrFromString(strings.TrimPrefix(name, "/"))
	if err != nil {
		return -1, err
	}
	attr := mqAttr{maxmsg: maxmsg, msgsize: msgsize}
	var ap uintptr
	if flags&unix.O_CREAT != 0 {
		ap = uintptr(unsafe.Pointer(&attr))
	}
	fd, _, e := unix.Syscall6(unix.SYS_MQ_OPEN, uintptr(unsafe.Pointer(p)), uintptr(flags|unix.O_CLOEXEC), 0o600, ap, 0, 0)
	if e != 0 {
		return -1, e
	}
	return int(fd), nil
}

func mqUnlink(name string) error {
	p, err := unix.BytePtrFromString(strings.TrimPrefix(name, "/"))
	if err != nil {
		return err
	}
	if _, _, e := unix.Syscall(unix.SYS_MQ_UNLINK, uintptr(unsafe.Pointer(p)), 0, 0); e != 0 {
		return e
	}
	return nil
}

func mqSend(fd int, msg []byte, prio int64, deadline time.Time) error {
	ts := unix.NsecToTimespec(deadline.UnixNano())
	var p *byte
	if len(msg) > 0 {
		p = &msg[0]
	}
	for {
		_, _, e := unix.Syscall6(unix.SYS_MQ_TIMEDSEND, uintptr(fd), uintptr(unsafe.Pointer(p)), uintptr(len(msg)),
			uintptr(prio), uintptr(unsafe.Pointer(&ts)), 0)
		if e == unix.EINTR {
			continue
		}
		if e == unix.ETIMEDOUT {
			return errTimedOut
		}
		if e != 0 {
			return e
		}
		return nil
	}
}

func mqReceive(fd int, buf []byte, deadline time.Time) (int, error) {
	ts := unix.NsecToTimespec(deadline.UnixNano())
	var prio uint32
	for {
		n, _, e := unix.Syscall6(unix.SYS_MQ_TIMEDRECEIVE, uintptr(fd), uintptr(unsafe.Pointer(&buf[0])), uintptr(len(buf)),
			uintptr(unsafe.Pointer(&prio)), uintptr(unsafe.Pointer(&ts)), 0)
		if e == unix.EINTR {
			continue
		}
		if e == unix.ETIMEDOUT {
			return 0, errTimedOut
		}
		if e != 0 {
			return 0, e
		}
		return int(n), nil
	}
}

// SysV message queues.

func msgGet(key, flags int) (int, error) {
	id, _, e := unix.Syscall(unix.SYS_MSGGET, uintptr(key), uintptr(flags), 0)
	if e != 0 {
		return -1, e
	}
	return int(id), nil
}

func msgRemove(id int) error {
	if _, _, e := unix.Syscall(unix.SYS_MSGCTL, uintptr(id), uintptr(unix.IPC_RMID), 0); e != 0 {
		return e
	}
	return nil
}

// msgSend sends text as a message of type mtype; buf has room for the
// type in front of it.
func msgSend(id int, mtype int64, text []byte, buf []byte) error {
	buf = buf[:8+len(text)]
	*(*int64)(unsafe.Pointer(&buf[0])) = mtype
	copy(buf[8:], text)
	for {
		_, _, e := unix.Syscall6(unix.SYS_MSGSND, uintptr(id), uintptr(unsafe.Pointer(&buf[0])), uintptr(len(text)), 0, 0, 0)
		if e == unix.EINTR {
			continue
		}
		if e != 0 {
			return e
		}
		return nil
	}
}

// msgReceive takes the oldest message of type mtype (any type when 0)
// into buf, which has room for the type in front of the text.
func msgReceive(id int, mtype int64, buf []byte) (int, error) {
	for {
		n, _, e := unix.Syscall6(unix.SYS_MSGRCV, uintptr(id), uintptr(unsafe.Pointer(&buf[0])), uintptr(len(buf)-8),
			uintptr(mtype), 0, 0)
		if e == unix.EINTR {
			continue
		}
		if e != 0 {
			return 0, e
		}
		return int(n), nil
	}
}
