package ipcload

import (
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"strconv"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// The mix workload: a parent and a child (the parent's binary run again
// as mix-child from the same directory, so the two have different names)
// that talk over eight mechanisms at once, in rounds:
//
//	parent ──pipe 100B──▶ child ──seqpacket 50B──▶ parent ──TCP 1000B──▶ child
//	child ──UDP 64B──▶ parent ──UDP 32B──▶ child ──unix dgram 10B──▶ parent
//	parent ──SysV mq 20B, mtype 1 or 2──▶ child ──FIFO 7B──▶ parent
//	parent ──SIGUSR1──▶ child ──SIGUSR2──▶ parent
//
// Every call blocks, as a C program's would, on one thread per process.

// Mix sizes, for tests to check what was moved.
const (
	MixPipe, MixSeqpacket, MixTCP, MixUDPUp, MixUDPDown, MixDgram, MixMQ, MixFIFO = 100, 50, 1000, 64, 32, 10, 20, 7
)

// mixParent runs rounds rounds, interval apart.
func mixParent(rounds int, interval time.Duration) error {
	runtime.LockOSThread()
	dir, err := os.MkdirTemp("", "ipcload-mix")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	usr2 := make(chan os.Signal, rounds)
	signal.Notify(usr2, unix.SIGUSR2)

	var pipe [2]int
	if err := unix.Pipe2(pipe[:], unix.O_CLOEXEC); err != nil {
		return err
	}
	sp, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return err
	}
	fifo := filepath.Join(dir, "fifo")
	if err := unix.Mkfifo(fifo, 0o600); err != nil {
		return err
	}
	ln, tcpPort, err := bound(unix.SOCK_STREAM)
	if err != nil {
		return err
	}
	if err := unix.Listen(ln, 1); err != nil {
		return err
	}
	udp, udpPort, err := bound(unix.SOCK_DGRAM)
	if err != nil {
		return err
	}
	dgPath := filepath.Join(dir, "dgram")
	dg, err := unix.Socket(unix.AF_UNIX, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return err
	}
	if err := unix.Bind(dg, &unix.SockaddrUnix{Name: dgPath}); err != nil {
		return err
	}
	key := 0x6d690000 | rand.IntN(0xffff)
	mq, err := msgGetFlags(key, unix.IPC_CREAT|unix.IPC_EXCL|0o600)
	if err != nil {
		return fmt.Errorf("msgget: %w", err)
	}
	defer unix.Syscall(unix.SYS_MSGCTL, uintptr(mq), uintptr(unix.IPC_RMID), 0)

	self, err := filepath.Abs(os.Args[0])
	if err != nil {
		return err
	}
	child := exec.Command(filepath.Join(filepath.Dir(self), "mix-child"),
		fifo, strconv.Itoa(tcpPort), strconv.Itoa(udpPort), dgPath, strconv.Itoa(key), strconv.Itoa(rounds))
	child.Env = append(os.Environ(), Env+"=mix-child", DelayEnv+"=")
	child.Stdout, child.Stderr = os.Stderr, os.Stderr
	child.ExtraFiles = []*os.File{os.NewFile(uintptr(pipe[0]), "pipe"), os.NewFile(uintptr(sp[1]), "seqpacket")}
	if err := child.Start(); err != nil {
		return err
	}
	unix.Close(pipe[0])
	unix.Close(sp[1])
	fifoIn, err := unix.Open(fifo, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	tcp, _, err := unix.Accept4(ln, unix.SOCK_CLOEXEC)
	if err != nil {
		return err
	}
	buf := make([]byte, 2048)
	for i := range rounds {
		if i > 0 {
			time.Sleep(interval)
		}
		if _, err := unix.Write(pipe[1], Message(i, MixPipe)); err != nil {
			return fmt.Errorf("pipe: %w", err)
		}
		if _, err := unix.Read(sp[0], buf[:MixSeqpacket]); err != nil {
			return fmt.Errorf("seqpacket: %w", err)
		}
		if _, err := unix.Write(tcp, Message(i, MixTCP)); err != nil {
			return fmt.Errorf("tcp: %w", err)
		}
		_, from, err := unix.Recvfrom(udp, buf[:MixUDPUp], 0)
		if err != nil {
			return fmt.Errorf("udp: %w", err)
		}
		if err := unix.Sendto(udp, Message(i, MixUDPDown), 0, from); err != nil {
			return fmt.Errorf("udp reply: %w", err)
		}
		if _, err := unix.Read(dg, buf[:MixDgram]); err != nil {
			return fmt.Errorf("dgram: %w", err)
		}
		msg := append(make([]byte, 8), Message(i, MixMQ)...)
		*(*int64)(unsafe.Pointer(&msg[0])) = int64(1 + i%2)
		if _, _, e := unix.Syscall6(unix.SYS_MSGSND, uintptr(mq), uintptr(unsafe.Pointer(&msg[0])), MixMQ, 0, 0, 0); e != 0 {
			return fmt.Errorf("msgsnd: %w", e)
		}
		if err := ReadFull(fifoIn, buf[:MixFIFO]); err != nil {
			return fmt.Errorf("fifo: %w", err)
		}
		if err := unix.Kill(child.Process.Pid, unix.SIGUSR1); err != nil {
			return err
		}
		select {
		case <-usr2:
		case <-time.After(10 * time.Second):
			return fmt.Errorf("round %d: no SIGUSR2 from the child", i)
		}
	}
	unix.Close(pipe[1])
	unix.Close(tcp)
	return child.Wait()
}

// mixChild is the other end of mixParent.
func mixChild(a argList) error {
	runtime.LockOSThread()
	usr1 := make(chan os.Signal, a.int(5))
	signal.Notify(usr1, unix.SIGUSR1)
	const pipe, sp = 3, 4
	fifoOut, err := unix.Open(a.str(0), unix.O_WRONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	tcp, sa, err := dial(a.str(1), "tcp")
	if err != nil {
		return err
	}
	if err := unix.Connect(tcp, sa); err != nil {
		return err
	}
	udp, sa, err := dial(a.str(2), "udp")
	if err != nil {
		return err
	}
	if err := unix.Connect(udp, sa); err != nil {
		return err
	}
	dg, sa, err := dial(a.str(3), "dgram")
	if err != nil {
		return err
	}
	if err := unix.Connect(dg, sa); err != nil {
		return err
	}
	mq, err := msgGetFlags(a.int(4), 0)
	if err != nil {
		return fmt.Errorf("msgget: %w", err)
	}
	buf := make([]byte, 2048)
	for i := range a.int(5) {
		if err := ReadFull(pipe, buf[:MixPipe]); err != nil {
			return fmt.Errorf("pipe: %w", err)
		}
		if _, err := unix.Write(sp, Message(i, MixSeqpacket)); err != nil {
			return fmt.Errorf("seqpacket: %w", err)
		}
		if err := ReadFull(tcp, buf[:MixTCP]); err != nil {
			return fmt.Errorf("tcp: %w", err)
		}
		if _, err := unix.Write(udp, Message(i, MixUDPUp)); err != nil {
			return fmt.Errorf("udp: %w", err)
		}
		if _, err := unix.Read(udp, buf[:MixUDPDown]); err != nil {
			return fmt.Errorf("udp reply: %w", err)
		}
		if _, err := unix.Write(dg, Message(i, MixDgram)); err != nil {
			return fmt.Errorf("dgram: %w", err)
		}
		if err := msgrcv(mq, buf, MixMQ, 1+i%2, 0); err != nil {
			return err
		}
		if _, err := unix.Write(fifoOut, Message(i, MixFIFO)); err != nil {
			return fmt.Errorf("fifo: %w", err)
		}
		select {
		case <-usr1:
		case <-time.After(10 * time.Second):
			return fmt.Errorf("round %d: no SIGUSR1 from the parent", i)
		}
		if err := unix.Kill(os.Getppid(), unix.SIGUSR2); err != nil {
			return err
		}
	}
	// The parent closes the pipe when it is done: read to its end.
	if n, err := unix.Read(pipe, buf); n != 0 || err != nil {
		return fmt.Errorf("pipe: %d bytes after the last round (%v)", n, err)
	}
	return nil
}

// bound is a socket of type typ bound to a free loopback port.
func bound(typ int) (int, int, error) {
	fd, err := unix.Socket(unix.AF_INET, typ|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return -1, 0, err
	}
	if err := unix.Bind(fd, &unix.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		return -1, 0, err
	}
	sa, err := unix.Getsockname(fd)
	if err != nil {
		return -1, 0, err
	}
	return fd, sa.(*unix.SockaddrInet4).Port, nil
}

func msgGetFlags(key, flags int) (int, error) {
	id, _, e := unix.Syscall(unix.SYS_MSGGET, uintptr(key), uintptr(flags), 0)
	if e != 0 {
		return -1, e
	}
	return int(id), nil
}
