package main

import (
	"os"
	"os/signal"
	"sync"
	"syscall"
)

// Each run is a process group of its own (icptrack or strace, the
// workload's processes), so that a run that hangs can be killed whole.
// The groups still running are killed too when the harness is
// interrupted, instead of being left behind.
var groups = struct {
	sync.Mutex
	pgids map[int]bool
}{pgids: map[int]bool{}}

// ownGroup makes a command start a process group of its own.
func ownGroup() *syscall.SysProcAttr { return &syscall.SysProcAttr{Setpgid: true} }

func track(pgid int) {
	groups.Lock()
	groups.pgids[pgid] = true
	groups.Unlock()
}

func untrack(pgid int) {
	groups.Lock()
	delete(groups.pgids, pgid)
	groups.Unlock()
}

// killOnInterrupt kills every group still running when the harness gets
// SIGINT or SIGTERM, and exits.
func killOnInterrupt() {
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	go func() {
		<-sigs
		groups.Lock()
		for pgid := range groups.pgids {
			_ = syscall.Kill(-pgid, syscall.SIGKILL)
		}
		os.Exit(130)
	}()
}
