package main

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"
)

// A peakWatch follows a tracer's peak RSS in /proc/PID/status (VmHWM),
// polling, since its rusage cannot tell it: Go starts a child with
// clone(CLONE_VM|CLONE_VFORK), and the kernel carries the forking
// process's high-water mark across the exec into the child's ru_maxrss,
// so the tracer's would be at least the harness's. VmHWM belongs to the
// process's own memory, new at exec.
type peakWatch struct {
	pid  int
	stop chan struct{}
	done chan int64
}

const peakPoll = 20 * time.Millisecond

func watchPeak(pid int) *peakWatch {
	w := &peakWatch{pid: pid, stop: make(chan struct{}), done: make(chan int64)}
	go func() {
		var peak int64
		t := time.NewTicker(peakPoll)
		defer t.Stop()
		for {
			peak = max(peak, vmHWM(pid))
			select {
			case <-w.stop:
				w.done <- max(peak, vmHWM(pid))
				return
			case <-t.C:
			}
		}
	}()
	return w
}

// end stops watching and returns the peak seen, in KiB.
func (w *peakWatch) end() int64 {
	close(w.stop)
	return <-w.done
}

// vmHWM is the peak resident set size of process pid so far, in KiB (0
// once it has exited).
func vmHWM(pid int) int64 {
	b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	for l := range strings.Lines(string(b)) {
		if v, ok := strings.CutPrefix(l, "VmHWM:"); ok {
			n, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return n
		}
	}
	return 0
}
