package main

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"time"

	"golang.org/x/sys/unix"
)

// result is what a workload's driver prints when it is done.
type result struct {
	Ops       int   `json:"ops"`
	ElapsedNs int64 `json:"elapsed_ns"`
	// Round-trip latency quantiles, for ping-pongs.
	P50Ns int64 `json:"p50_ns,omitempty"`
	P99Ns int64 `json:"p99_ns,omitempty"`
	// The workload's own CPU time: the driver and the partners it waited
	// for. The harness takes it away from a tracer's rusage, which counts
	// the tracer's waited-for children too.
	CPUNs int64 `json:"cpu_ns"`
}

// report prints the driver's result. latencies, if any, are round-trip
// times in nanoseconds; report sorts them.
func report(ops int, elapsed time.Duration, latencies []int64) error {
	r := result{Ops: ops, ElapsedNs: int64(elapsed)}
	if len(latencies) > 0 {
		slices.Sort(latencies)
		r.P50Ns = quantile(latencies, 0.50)
		r.P99Ns = quantile(latencies, 0.99)
	}
	var self, children unix.Rusage
	if err := unix.Getrusage(unix.RUSAGE_SELF, &self); err != nil {
		return err
	}
	if err := unix.Getrusage(unix.RUSAGE_CHILDREN, &children); err != nil {
		return err
	}
	r.CPUNs = cpuNs(&self) + cpuNs(&children)
	return json.NewEncoder(os.Stdout).Encode(r)
}

func cpuNs(ru *unix.Rusage) int64 {
	return ru.Utime.Nano() + ru.Stime.Nano()
}

// quantile of sorted values, by the nearest rank.
func quantile(sorted []int64, q float64) int64 {
	if len(sorted) == 0 {
		return 0
	}
	i := int(q*float64(len(sorted))+0.5) - 1
	return sorted[min(max(i, 0), len(sorted)-1)]
}

// partner starts this binary in another role, with fds as its 3, 4, ...
// It takes the descriptors: they are closed in this process once the
// partner has them.
func partner(role string, args []string, fds ...int) (*exec.Cmd, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(self, args...)
	cmd.Env = append(os.Environ(), roleEnv+"="+role)
	cmd.Stderr = os.Stderr
	for _, fd := range fds {
		cmd.ExtraFiles = append(cmd.ExtraFiles, os.NewFile(uintptr(fd), "fd"))
	}
	err = cmd.Start()
	for _, f := range cmd.ExtraFiles {
		f.Close()
	}
	if err != nil {
		return nil, fmt.Errorf("starting the %s partner: %w", role, err)
	}
	return cmd, nil
}

func count(n int) []string { return []string{strconv.Itoa(n)} }

func pipe() (r, w int, err error) {
	var p [2]int
	err = unix.Pipe2(p[:], unix.O_CLOEXEC)
	return p[0], p[1], err
}

func writeFull(fd int, buf []byte) error {
	for done := 0; done < len(buf); {
		n, err := unix.Write(fd, buf[done:])
		if err != nil {
			return err
		}
		done += n
	}
	return nil
}

// sink reads chunk-byte reads from in until end of file.
func sink(in, chunk int) error {
	buf := make([]byte, max(chunk, msgSize))
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
