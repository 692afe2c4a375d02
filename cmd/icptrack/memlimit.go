package main

import (
	"math"
	"os"
	"runtime/debug"
)

// icptrack's own memory. At hundreds of thousands of operations a second,
// most of what icptrack allocates is spans and records that live for
// milliseconds, and the garbage collector's pace decides much of its CPU
// time: with Go's default (collect when the heap has doubled) exporting
// spans spent a third of its time collecting. So icptrack collects less
// often (GOGC 400) and bounds its memory with a soft limit instead
// (Go's memory limit: past it the collector runs as often as it must,
// with at most half the CPU). A live heap larger than the limit slows
// icptrack down rather than growing it; the limit can be raised, or
// turned off with 0 to get Go's defaults back.
const (
	defaultMemoryLimit = "96MiB"
	minMemoryLimit     = 32 << 20
	gcPercent          = 400
)

// applyMemoryLimit sets the limit, in bytes, unless the GOMEMLIMIT
// environment variable already did; GOGC in the environment wins over
// icptrack's collection pace the same way.
func applyMemoryLimit(limit int64) {
	if limit <= 0 || os.Getenv("GOMEMLIMIT") != "" {
		return
	}
	debug.SetMemoryLimit(limit)
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(gcPercent)
	}
}

// reapplyMemoryLimit is applyMemoryLimit for a reload, from a running
// limit: 0 gives Go's defaults back (no limit, GOGC 100), unless the
// environment set them.
func reapplyMemoryLimit(limit int64) {
	if limit > 0 || os.Getenv("GOMEMLIMIT") != "" {
		applyMemoryLimit(limit)
		return
	}
	debug.SetMemoryLimit(math.MaxInt64)
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(100)
	}
}
