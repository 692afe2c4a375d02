package main

import (
	"os/exec"
	"time"

	"golang.org/x/sys/unix"
)

// stream writes n chunk-byte messages to w as fast as it can, to a sink
// partner reading chunk bytes at a time; the time runs until the sink has
// read everything and exited.
func stream(n, w, chunk int, peer *exec.Cmd) error {
	buf := make([]byte, chunk)
	start := time.Now()
	for range n {
		if err := writeFull(w, buf); err != nil {
			return err
		}
	}
	unix.Close(w)
	if err := peer.Wait(); err != nil {
		return err
	}
	return report(n, time.Since(start), nil)
}

func pipeStream(n int) error {
	r, w, err := pipe()
	if err != nil {
		return err
	}
	peer, err := partner("sink", count(msgSize), r)
	if err != nil {
		return err
	}
	return stream(n, w, msgSize, peer)
}

func unixStream4k(n int) error {
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return err
	}
	peer, err := partner("sink", count(streamChunk), fds[1])
	if err != nil {
		return err
	}
	return stream(n, fds[0], streamChunk, peer)
}

// sustained writes n 64-byte messages to a pipe at rate per second: a
// small burst, then a sleep until the clock says the next one is due (a
// late burst catches up). Its rate is the pace achieved.
func sustained(n, rate int) error {
	r, w, err := pipe()
	if err != nil {
		return err
	}
	peer, err := partner("sink", count(msgSize), r)
	if err != nil {
		return err
	}
	const burst = 32 // 6,250 bursts a second at 200k/s
	buf := make([]byte, msgSize)
	start := time.Now()
	for sent := 0; sent < n; {
		for end := min(sent+burst, n); sent < end; sent++ {
			if err := writeFull(w, buf); err != nil {
				return err
			}
		}
		due := start.Add(time.Duration(int64(sent) * int64(time.Second) / int64(rate)))
		if wait := time.Until(due); wait > 0 {
			// nanosleep itself, not the Go scheduler's timers, which may
			// round a sleep up to a millisecond.
			ts := unix.NsecToTimespec(int64(wait))
			_ = unix.Nanosleep(&ts, nil)
		}
	}
	unix.Close(w)
	if err := peer.Wait(); err != nil {
		return err
	}
	return report(n, time.Since(start), nil)
}
