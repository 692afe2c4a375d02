package main

import (
	"maps"
	"os"
	"os/signal"
	"slices"
	"sync"
	"syscall"
)

// Each run is a process group of its own (icptrack or strace, the
// workload's processes), so that a run that hangs can be killed whole.
// The groups still running are killed too when the harness is
// interrupted, instead of being left behind.
var groups = struct {
	sync.Mutex
	pgids    map[int]bool
	cleanups map[int]func()
	next     int
}{pgids: map[int]bool{}, cleanups: map[int]func(){}}

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

// onInterrupt has f run, before the groups are killed, if the harness is
// interrupted (a server that needs an orderly stop); the returned function
// takes it back.
func onInterrupt(f func()) (remove func()) {
	groups.Lock()
	defer groups.Unlock()
	id := groups.next
	groups.next++
	groups.cleanups[id] = f
	return func() {
		groups.Lock()
		delete(groups.cleanups, id)
		groups.Unlock()
	}
}

// killOnInterrupt runs the cleanups and kills every group still running
// when the harness gets SIGINT or SIGTERM, and exits.
func killOnInterrupt() {
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	go func() {
		<-sigs
		groups.Lock()
		cleanups := slices.Collect(maps.Values(groups.cleanups))
		groups.Unlock()
		for _, f := range cleanups {
			f()
		}
		groups.Lock()
		for pgid := range groups.pgids {
			_ = syscall.Kill(-pgid, syscall.SIGKILL)
		}
		os.Exit(130)
	}()
}
