package main

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/cilium/ebpf"
	"golang.org/x/sys/unix"
)

// progStat is one BPF program's run-time statistics, as the kernel keeps
// them while BPF_STATS_RUN_TIME is enabled.
type progStat struct {
	ID              uint32 `json:"id"`
	Name            string `json:"name"` // truncated by the kernel to 15 characters
	RunTimeNs       int64  `json:"run_time_ns"`
	RunCount        uint64 `json:"run_cnt"`
	RecursionMisses uint64 `json:"recursion_misses"`
}

// enableBPFStats turns the kernel's BPF run-time statistics on until the
// closer is closed. They cost every BPF program on the machine two clock
// reads a run, so they are on only for runs of their own.
func enableBPFStats() (io.Closer, error) {
	c, err := ebpf.EnableStats(unix.BPF_STATS_RUN_TIME)
	if err != nil {
		return nil, fmt.Errorf("enabling BPF statistics (needs root and Linux 5.8; --bpf-stats=false to skip them): %w", err)
	}
	return c, nil
}

// progStats reads the statistics of the BPF programs that process pid
// holds (its prog and link descriptors name them in /proc/PID/fdinfo): only
// this icptrack's programs, not those of another running beside it.
func progStats(pid int) ([]progStat, error) {
	ids, err := progIDs(pid)
	if err != nil {
		return nil, err
	}
	var stats []progStat
	for _, id := range ids {
		p, err := ebpf.NewProgramFromID(ebpf.ProgramID(id))
		if err != nil {
			continue // unloaded meanwhile
		}
		st := progStat{ID: id}
		if info, err := p.Info(); err == nil {
			st.Name = info.Name
		}
		if s, err := p.Stats(); err == nil {
			st.RunTimeNs, st.RunCount, st.RecursionMisses = int64(s.Runtime), s.RunCount, s.RecursionMisses
		}
		p.Close()
		stats = append(stats, st)
	}
	slices.SortFunc(stats, func(a, b progStat) int { return strings.Compare(a.Name, b.Name) })
	return stats, nil
}

func progIDs(pid int) ([]uint32, error) {
	infos, err := filepath.Glob(fmt.Sprintf("/proc/%d/fdinfo/*", pid))
	if err != nil || len(infos) == 0 {
		return nil, fmt.Errorf("no descriptors of process %d to find its BPF programs by", pid)
	}
	var ids []uint32
	for _, path := range infos {
		f, err := os.Open(path)
		if err != nil {
			continue
		}
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			if v, ok := strings.CutPrefix(sc.Text(), "prog_id:"); ok {
				if id, err := strconv.ParseUint(strings.TrimSpace(v), 10, 32); err == nil && !slices.Contains(ids, uint32(id)) {
					ids = append(ids, uint32(id))
				}
			}
		}
		f.Close()
	}
	return ids, nil
}
