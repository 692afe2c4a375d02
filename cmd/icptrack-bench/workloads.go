package main

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"time"

	"golang.org/x/sys/unix"
)

const msgSize = 64

// runRole runs one side of a workload. Drivers print their operations and
// the time they took, as JSON, on standard output.
func runRole(role string, args []string) error {
	n := 0
	if len(args) > 0 {
		n, _ = strconv.Atoi(args[0])
	}
	switch role {
	case "pipe-pingpong":
		return pipePingPong(n)
	case "unix-pingpong":
		return unixPingPong(n)
	case "pipe-stream":
		return pipeStream(n)
	case "file-write":
		return fileWrite(n)
	case "echo":
		return echo(3, 4)
	case "sink":
		return sink(3)
	}
	return fmt.Errorf("unknown role %q", role)
}

func report(ops int, start time.Time) error {
	return json.NewEncoder(os.Stdout).Encode(result{Ops: ops, ElapsedNs: int64(time.Since(start))})
}

// partner starts this binary in another role with fds as its 3, 4, ...
func partner(role string, fds ...int) (*exec.Cmd, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(self)
	cmd.Env = append(os.Environ(), roleEnv+"="+role)
	cmd.Stderr = os.Stderr
	for _, fd := range fds {
		cmd.ExtraFiles = append(cmd.ExtraFiles, os.NewFile(uintptr(fd), "fd"))
	}
	return cmd, cmd.Start()
}

func pipe() (r, w int, err error) {
	var p [2]int
	err = unix.Pipe2(p[:], unix.O_CLOEXEC)
	return p[0], p[1], err
}

func pingPong(n, in, out int, peer *exec.Cmd) error {
	buf := make([]byte, msgSize)
	start := time.Now()
	for i := 0; i < n; i++ {
		if _, err := unix.Write(out, buf); err != nil {
			return err
		}
		if err := readFull(in, buf); err != nil {
			return err
		}
	}
	elapsed := time.Now()
	// End of file for the partner: a socket is shared by several
	// descriptors, so shut it down rather than close one of them.
	if unix.Shutdown(out, unix.SHUT_WR) != nil {
		unix.Close(out)
	}
	if err := peer.Wait(); err != nil {
		return err
	}
	return json.NewEncoder(os.Stdout).Encode(result{Ops: n, ElapsedNs: int64(elapsed.Sub(start))})
}

func pipePingPong(n int) error {
	toR, toW, err := pipe()
	if err != nil {
		return err
	}
	fromR, fromW, err := pipe()
	if err != nil {
		return err
	}
	peer, err := partner("echo", toR, fromW)
	if err != nil {
		return err
	}
	unix.Close(toR)
	unix.Close(fromW)
	return pingPong(n, fromR, toW, peer)
}

func unixPingPong(n int) error {
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return err
	}
	peerFd, err := unix.Dup(fds[1])
	if err != nil {
		return err
	}
	peer, err := partner("echo", fds[1], peerFd)
	if err != nil {
		return err
	}
	unix.Close(fds[1])
	unix.Close(peerFd)
	in, err := unix.Dup(fds[0])
	if err != nil {
		return err
	}
	return pingPong(n, in, fds[0], peer)
}

// echo reads messages from in and writes them back to out until EOF.
func echo(in, out int) error {
	buf := make([]byte, msgSize)
	for {
		if err := readFull(in, buf); err != nil {
			return nil // end of file
		}
		if _, err := unix.Write(out, buf); err != nil {
			return err
		}
	}
}

func pipeStream(n int) error {
	r, w, err := pipe()
	if err != nil {
		return err
	}
	peer, err := partner("sink", r)
	if err != nil {
		return err
	}
	unix.Close(r)
	buf := make([]byte, msgSize)
	start := time.Now()
	for i := 0; i < n; i++ {
		if _, err := unix.Write(w, buf); err != nil {
			return err
		}
	}
	unix.Close(w)
	if err := peer.Wait(); err != nil {
		return err
	}
	return report(n, start)
}

func sink(in int) error {
	buf := make([]byte, msgSize)
	for {
		n, err := unix.Read(in, buf)
		if err != nil {
			return err
		}
		if n == 0 {
			return nil
		}
	}
}

func fileWrite(n int) error {
	f, err := os.CreateTemp("", "icptrack-bench-file")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name())
	fd := int(f.Fd())
	buf := make([]byte, msgSize)
	start := time.Now()
	for i := 0; i < n; i++ {
		if i%65536 == 0 {
			// Keep the file small; this adds two calls per 65536.
			if err := unix.Ftruncate(fd, 0); err != nil {
				return err
			}
			if _, err := unix.Seek(fd, 0, 0); err != nil {
				return err
			}
		}
		if _, err := unix.Write(fd, buf); err != nil {
			return err
		}
	}
	return report(n, start)
}

func readFull(fd int, buf []byte) error {
	for got := 0; got < len(buf); {
		n, err := unix.Read(fd, buf[got:])
		if err != nil {
			return err
		}
		if n == 0 {
			return fmt.Errorf("end of file")
		}
		got += n
	}
	return nil
}
