// Package ipcload is the workload icptrack's tests trace: small programs
// that move known bytes over one IPC channel with one chosen syscall, so a
// test can assert exactly what the kernel must have reported.
//
// A test binary runs them by re-executing itself: TestMain calls Main,
// which takes over when the environment asks for a workload.
package ipcload

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// Env is the variable that selects a workload in a re-executed test binary.
const Env = "ICPTRACK_IPCLOAD"

// DelayEnv makes the workload wait before it starts, for tests that set up
// tracing (or move it into a cgroup) after it started: a duration, or
// "until:PATH" to wait until PATH exists (a minute at most), which does
// not depend on how long loading the tracer takes on a slow machine.
const DelayEnv = "ICPTRACK_IPCLOAD_DELAY"

// Main runs the workload named in the environment and exits, or returns at
// once when there is none. Arguments follow in os.Args[1:].
func Main() {
	mode := os.Getenv(Env)
	if mode == "" {
		return
	}
	delay := os.Getenv(DelayEnv)
	if gate, ok := strings.CutPrefix(delay, "until:"); ok {
		_ = waitFor(gate) // starts anyway after a minute
	} else if d, err := time.ParseDuration(delay); err == nil {
		time.Sleep(d)
	}
	if err := run(mode, os.Args[1:]); err != nil {
		fmt.Fprintf(os.Stderr, "ipcload %s: %v\n", mode, err)
		os.Exit(1)
	}
	os.Exit(0)
}

// Message returns the i-th message of size n that writers send: its bytes
// are distinct per message, so a test can check captured payloads.
func Message(i, n int) []byte {
	b := make([]byte, n)
	for j := range b {
		b[j] = byte('a' + (i+j)%26)
	}
	return b
}

func run(mode string, args []string) error {
	a := argList(args)
	switch mode {
	case "write":
		// write FD COUNT SIZE HOW [FILE]: HOW is write, writev, sendto,
		// sendmsg or vmsplice. Between messages it also writes the
		// message to /dev/null and, if given, to the regular file FILE:
		// operations icptrack must not report.
		return write(a.int(0), a.int(1), a.int(2), a.str(3), a.opt(4))
	case "paced-write":
		// paced-write FD COUNT SIZE INTERVAL: writes COUNT messages of
		// SIZE bytes to FD, one every INTERVAL (a duration), so that a
		// test can change something while they flow.
		return pacedWrite(a.int(0), a.int(1), a.int(2), a.str(3))
	case "read":
		// read FD SIZE HOW [COUNT]: HOW is read, readv, recvfrom or
		// recvmsg. Reads SIZE bytes at a time until end of file, or COUNT
		// messages when COUNT is given.
		return read(a.int(0), a.int(1), a.str(2), a.optInt(3, -1))
	case "ping", "pong":
		// ping IN OUT COUNT SIZE: writes a message to OUT and reads the
		// reply from IN, COUNT times. pong IN OUT SIZE [DELAY]: reads a
		// message from IN and writes it back to OUT, after DELAY, until
		// end of file. For a socket IN and OUT are the same descriptor.
		if mode == "ping" {
			return ping(a.int(0), a.int(1), a.int(2), a.int(3))
		}
		delay, _ := time.ParseDuration(a.opt(3))
		return pong(a.int(0), a.int(1), a.int(2), delay)
	case "burst":
		// burst OUT COUNT SIZE IN: writes COUNT messages to OUT at once,
		// then waits, reading IN until end of file.
		for i := 0; i < a.int(1); i++ {
			if _, err := unix.Write(a.int(0), Message(i, a.int(2))); err != nil {
				return fmt.Errorf("write message %d: %w", i, err)
			}
		}
		return read(a.int(3), 1, "read", -1)
	case "splice":
		// splice IN OUT SIZE: moves SIZE bytes at a time from IN to OUT
		// with splice(2) until end of file.
		return splice(a.int(0), a.int(1), a.int(2))
	case "tee":
		// tee IN OUT SIZE: copies SIZE bytes at a time from pipe IN to pipe
		// OUT with tee(2), then consumes them from IN with read(2).
		return tee(a.int(0), a.int(1), a.int(2))
	case "fifo-write":
		// fifo-write PATH COUNT SIZE: opens the FIFO and writes.
		fd, err := unix.Open(a.str(0), unix.O_WRONLY, 0)
		if err != nil {
			return err
		}
		return write(fd, a.int(1), a.int(2), "write", "")
	case "fifo-read":
		// fifo-read PATH SIZE: opens the FIFO and reads to end of file.
		fd, err := unix.Open(a.str(0), unix.O_RDONLY, 0)
		if err != nil {
			return err
		}
		return read(fd, a.int(1), "read", -1)
	case "accept":
		// accept FD SIZE HOW [COUNT]: accepts one connection on the
		// listening socket FD and reads from it as read does.
		nfd, _, err := unix.Accept(a.int(0))
		if err != nil {
			return fmt.Errorf("accept: %w", err)
		}
		return read(nfd, a.int(1), a.str(2), a.optInt(3, -1))
	case "connect":
		// connect ADDR TYPE COUNT SIZE HOW: connects to ADDR (a unix path,
		// @abstract, or a loopback port for TCP and UDP) and writes as
		// write does. TYPE is stream, dgram, seqpacket, tcp, tcp6, udp or
		// udp6.
		fd, sa, err := dial(a.str(0), a.str(1))
		if err != nil {
			return err
		}
		if err := unix.Connect(fd, sa); err != nil {
			return fmt.Errorf("connect %s: %w", a.str(0), err)
		}
		return write(fd, a.int(2), a.int(3), a.str(4), "")
	case "sendto":
		// sendto ADDR TYPE COUNT SIZE: unconnected datagrams to ADDR.
		fd, sa, err := dial(a.str(0), a.str(1))
		if err != nil {
			return err
		}
		for i := 0; i < a.int(2); i++ {
			if err := unix.Sendto(fd, Message(i, a.int(3)), 0, sa); err != nil {
				return fmt.Errorf("sendto: %w", err)
			}
		}
		return nil
	}
	switch mode {
	case "mix":
		// mix ROUNDS INTERVAL: a parent and a child (mix-child, beside
		// it) talk over eight mechanisms, ROUNDS times (mix.go).
		d, err := time.ParseDuration(a.str(1))
		if err != nil {
			return err
		}
		return mixParent(a.int(0), d)
	case "mix-child":
		return mixChild(a)
	}
	if ok, err := runIPC(mode, a); ok {
		return err
	}
	if ok, err := runPhased(mode, a); ok {
		return err
	}
	return fmt.Errorf("unknown workload %q", mode)
}

func pacedWrite(fd, count, size int, interval string) error {
	every, err := time.ParseDuration(interval)
	if err != nil {
		return err
	}
	next := time.Now()
	for i := range count {
		if _, err := unix.Write(fd, Message(i, size)); err != nil {
			return fmt.Errorf("message %d: %w", i, err)
		}
		next = next.Add(every)
		time.Sleep(time.Until(next))
	}
	return nil
}

func write(fd, count, size int, how, file string) error {
	null, err := unix.Open("/dev/null", unix.O_WRONLY, 0)
	if err != nil {
		return err
	}
	reg := -1
	if file != "" {
		if reg, err = unix.Open(file, unix.O_WRONLY|unix.O_CREAT|unix.O_TRUNC, 0o600); err != nil {
			return err
		}
	}
	for i := 0; i < count; i++ {
		msg := Message(i, size)
		var n int
		switch how {
		case "write":
			n, err = unix.Write(fd, msg)
		case "writev":
			half := len(msg) / 2
			n, err = unix.Writev(fd, [][]byte{msg[:half], msg[half:]})
		case "sendto":
			err = unix.Sendto(fd, msg, 0, nil)
			n = len(msg)
		case "sendmsg":
			n, err = unix.SendmsgN(fd, msg, nil, nil, 0)
		case "vmsplice":
			n, err = vmsplice(fd, msg)
		default:
			return fmt.Errorf("unknown way to write %q", how)
		}
		if err != nil {
			return fmt.Errorf("%s message %d: %w", how, i, err)
		}
		if n != len(msg) {
			return fmt.Errorf("%s message %d: wrote %d of %d bytes", how, i, n, len(msg))
		}
		if _, err := unix.Write(null, msg); err != nil {
			return err
		}
		if reg >= 0 {
			if _, err := unix.Write(reg, msg); err != nil {
				return err
			}
		}
	}
	return unix.Close(fd)
}

func vmsplice(fd int, msg []byte) (int, error) {
	iov := []unix.Iovec{{Base: &msg[0]}}
	iov[0].SetLen(len(msg))
	return unix.Vmsplice(fd, iov, 0)
}

func read(fd, size int, how string, count int) error {
	buf := make([]byte, size)
	for i := 0; count < 0 || i < count; i++ {
		var n int
		var err error
		switch how {
		case "read":
			n, err = unix.Read(fd, buf)
		case "readv":
			half := size / 2
			n, err = unix.Readv(fd, [][]byte{buf[:half], buf[half:]})
		case "recvfrom":
			n, _, err = unix.Recvfrom(fd, buf, 0)
		case "recvmsg":
			n, _, _, _, err = unix.Recvmsg(fd, buf, nil, 0)
		default:
			return fmt.Errorf("unknown way to read %q", how)
		}
		if err != nil {
			return fmt.Errorf("%s: %w", how, err)
		}
		if n == 0 && count < 0 {
			return nil
		}
	}
	return nil
}

func ping(in, out, count, size int) error {
	buf := make([]byte, size)
	for i := 0; i < count; i++ {
		if _, err := unix.Write(out, Message(i, size)); err != nil {
			return fmt.Errorf("ping %d: %w", i, err)
		}
		if err := ReadFull(in, buf); err != nil {
			return fmt.Errorf("reply %d: %w", i, err)
		}
	}
	if in != out {
		return unix.Close(out)
	}
	return unix.Shutdown(out, unix.SHUT_WR)
}

func pong(in, out, size int, delay time.Duration) error {
	buf := make([]byte, size)
	for {
		n, err := unix.Read(in, buf)
		if err != nil {
			return fmt.Errorf("pong read: %w", err)
		}
		if n == 0 {
			return nil
		}
		time.Sleep(delay)
		if _, err := unix.Write(out, buf[:n]); err != nil {
			return fmt.Errorf("pong write: %w", err)
		}
	}
}

// ReadFull reads len(buf) bytes from fd, or fails at end of file.
func ReadFull(fd int, buf []byte) error {
	for got := 0; got < len(buf); {
		n, err := unix.Read(fd, buf[got:])
		if err != nil {
			return err
		}
		if n == 0 {
			return fmt.Errorf("end of file after %d of %d bytes", got, len(buf))
		}
		got += n
	}
	return nil
}

func splice(in, out, size int) error {
	for {
		n, err := unix.Splice(in, nil, out, nil, size, 0)
		if err != nil {
			return fmt.Errorf("splice: %w", err)
		}
		if n == 0 {
			return unix.Close(out)
		}
	}
}

func tee(in, out, size int) error {
	buf := make([]byte, size)
	for {
		n, err := unix.Tee(in, out, size, 0)
		if err != nil {
			return fmt.Errorf("tee: %w", err)
		}
		if n == 0 {
			return unix.Close(out)
		}
		if _, err := unix.Read(in, buf[:n]); err != nil {
			return fmt.Errorf("read after tee: %w", err)
		}
	}
}

// dial makes a socket of the named type and the address to reach: a unix
// path or @abstract name, or a port on the loopback address.
func dial(addr, typ string) (int, unix.Sockaddr, error) {
	var family, stype int
	var sa unix.Sockaddr
	switch typ {
	case "stream", "dgram", "seqpacket":
		family = unix.AF_UNIX
		stype = map[string]int{"stream": unix.SOCK_STREAM, "dgram": unix.SOCK_DGRAM, "seqpacket": unix.SOCK_SEQPACKET}[typ]
		name := addr
		if strings.HasPrefix(addr, "@") {
			name = "\x00" + addr[1:]
		}
		sa = &unix.SockaddrUnix{Name: name}
	case "tcp", "udp", "tcp6", "udp6":
		p, err := strconv.Atoi(addr)
		if err != nil {
			return 0, nil, fmt.Errorf("port %q: %w", addr, err)
		}
		stype = unix.SOCK_STREAM
		if strings.HasPrefix(typ, "udp") {
			stype = unix.SOCK_DGRAM
		}
		if strings.HasSuffix(typ, "6") {
			family = unix.AF_INET6
			sa = &unix.SockaddrInet6{Port: p, Addr: [16]byte{15: 1}}
		} else {
			family = unix.AF_INET
			sa = &unix.SockaddrInet4{Port: p, Addr: [4]byte{127, 0, 0, 1}}
		}
	default:
		return 0, nil, fmt.Errorf("unknown socket type %q", typ)
	}
	fd, err := unix.Socket(family, stype, 0)
	if err != nil {
		return 0, nil, fmt.Errorf("socket: %w", err)
	}
	return fd, sa, nil
}

type argList []string

func (a argList) str(i int) string {
	if i >= len(a) {
		panic(fmt.Sprintf("workload needs argument %d", i+1))
	}
	return a[i]
}

func (a argList) opt(i int) string {
	if i >= len(a) {
		return ""
	}
	return a[i]
}

func (a argList) int(i int) int {
	n, err := strconv.Atoi(a.str(i))
	if err != nil {
		panic(fmt.Sprintf("workload argument %d: %v", i+1, err))
	}
	return n
}

func (a argList) optInt(i, def int) int {
	if i >= len(a) {
		return def
	}
	return a.int(i)
}
