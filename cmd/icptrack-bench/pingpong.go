package main

import (
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"time"

	"golang.org/x/sys/unix"

	"github.com/icptrack/icptrack/internal/ipcload"
)

// A conn carries whole messages both ways.
type conn interface {
	send(msg []byte) error
	recv(msg []byte) error
}

// fdConn is a byte stream: two pipes, or one socket for both (in == out).
type fdConn struct{ in, out int }

func (c fdConn) send(msg []byte) error { return writeFull(c.out, msg) }
func (c fdConn) recv(msg []byte) error { return ipcload.ReadFull(c.in, msg) }

// pingPong makes n timed round trips with peer, which echoes n+1
// messages: the first round trip, untimed, waits until the peer runs.
// It reports the rate and the round-trip latency quantiles.
func pingPong(c conn, n int, peer *exec.Cmd) error {
	if err := pinToCPU(); err != nil {
		return err
	}
	buf := make([]byte, msgSize)
	latencies := make([]int64, n)
	if err := roundTrip(c, buf); err != nil {
		return err
	}
	// One clock read a round trip: each ends where the next begins.
	start := time.Now()
	prev := start
	for i := range latencies {
		if err := roundTrip(c, buf); err != nil {
			return err
		}
		now := time.Now()
		latencies[i] = int64(now.Sub(prev))
		prev = now
	}
	elapsed := prev.Sub(start)
	if err := peer.Wait(); err != nil {
		return err
	}
	return report(n, elapsed, latencies)
}

func roundTrip(c conn, buf []byte) error {
	if err := c.send(buf); err != nil {
		return err
	}
	return c.recv(buf)
}

// pinEnv holds the CPU both ends of a ping-pong run on (-1: anywhere).
const pinEnv = "ICPTRACK_BENCH_PINGPONG_CPU"

// pinToCPU keeps this thread (the workload's one, locked) on the ping-pong
// CPU. A ping-pong is a chain of wake-ups: on two vCPUs, whether each one
// crosses CPUs decides the round trip more than anything traced does, and
// it changes with whatever else runs, icptrack included. On one CPU every
// mode pays the same wake-ups, and icptrack has the other CPU.
func pinToCPU() error {
	cpu, err := strconv.Atoi(os.Getenv(pinEnv))
	if err != nil || cpu < 0 {
		return nil
	}
	var set unix.CPUSet
	set.Set(cpu)
	if err := unix.SchedSetaffinity(0, &set); err != nil {
		return fmt.Errorf("pin to CPU %d: %w", cpu, err)
	}
	return nil
}

// echo sends back each of n+1 messages (pingPong's warm-up and n).
func echo(c conn, n int) error {
	if err := pinToCPU(); err != nil {
		return err
	}
	buf := make([]byte, msgSize)
	for range n + 1 {
		if err := c.recv(buf); err != nil {
			return err
		}
		if err := c.send(buf); err != nil {
			return err
		}
	}
	return nil
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
	peer, err := partner("echo", count(n), toR, fromW)
	if err != nil {
		return err
	}
	return pingPong(fdConn{in: fromR, out: toW}, n, peer)
}

func unixPingPong(n int) error {
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return err
	}
	// The echo partner reads its fd 3 and writes its fd 4: both the
	// socket's other end.
	dup, err := unix.FcntlInt(uintptr(fds[1]), unix.F_DUPFD_CLOEXEC, 0)
	if err != nil {
		return err
	}
	peer, err := partner("echo", count(n), fds[1], dup)
	if err != nil {
		return err
	}
	return pingPong(fdConn{in: fds[0], out: fds[0]}, n, peer)
}
