package main

import (
	"math"
	"runtime/debug"
	"testing"
)

func TestMemoryLimit(t *testing.T) {
	prevLimit, prevGC := debug.SetMemoryLimit(-1), debug.SetGCPercent(100)
	t.Cleanup(func() {
		debug.SetMemoryLimit(prevLimit)
		debug.SetGCPercent(prevGC)
	})
	t.Setenv("GOMEMLIMIT", "")
	t.Setenv("GOGC", "")
	applyMemoryLimit(64 << 20)
	if got := debug.SetMemoryLimit(-1); got != 64<<20 {
		t.Errorf("memory limit %d, want %d", got, 64<<20)
	}
	if got := debug.SetGCPercent(100); got != gcPercent {
		t.Errorf("GC percent %d, want %d", got, gcPercent)
	}

	// The environment wins.
	debug.SetMemoryLimit(prevLimit)
	t.Setenv("GOMEMLIMIT", "1GiB")
	applyMemoryLimit(64 << 20)
	if got := debug.SetMemoryLimit(-1); got != prevLimit {
		t.Errorf("GOMEMLIMIT set, yet the limit became %d", got)
	}
	t.Setenv("GOMEMLIMIT", "")
	t.Setenv("GOGC", "50")
	applyMemoryLimit(64 << 20)
	if got := debug.SetGCPercent(100); got != 100 {
		t.Errorf("GOGC set, yet the GC percent became %d", got)
	}

	// A reload to 0 gives Go's defaults back; to a size, the limit.
	t.Setenv("GOGC", "")
	reapplyMemoryLimit(0)
	if got := debug.SetMemoryLimit(-1); got != math.MaxInt64 {
		t.Errorf("reloaded to 0: memory limit %d, want none", got)
	}
	if got := debug.SetGCPercent(100); got != 100 {
		t.Errorf("reloaded to 0: GC percent %d, want Go's 100", got)
	}
	reapplyMemoryLimit(128 << 20)
	if got := debug.SetMemoryLimit(-1); got != 128<<20 {
		t.Errorf("reloaded to 128MiB: memory limit %d", got)
	}
}
