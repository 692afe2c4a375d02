// Command icptrack-bench measures what icptrack costs the programs it
// watches: each workload runs untraced, under icptrack with its hooks
// attached but doing nothing (the floor), and traced for real, in turns
// (A B C A B C ...), several times; it reports medians and spread.
//
// Workloads time themselves, so icptrack's start-up is not counted. The
// tax on processes icptrack does not trace is measured with a file-write
// loop running beside an icptrack that traces something else.
//
//	go build -o bin/icptrack ./cmd/icptrack && go run ./cmd/icptrack-bench
package main

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// roleEnv makes the binary a workload process instead of the harness.
const roleEnv = "ICPTRACK_BENCH_ROLE"

func main() {
	if role := os.Getenv(roleEnv); role != "" {
		if err := runRole(role, os.Args[1:]); err != nil {
			fmt.Fprintf(os.Stderr, "%s: %v\n", role, err)
			os.Exit(1)
		}
		return
	}
	if err := harness(); err != nil {
		fmt.Fprintf(os.Stderr, "icptrack-bench: %v\n", err)
		os.Exit(1)
	}
}

// A mode is how a workload is run.
type mode struct {
	name string
	// args run icptrack around the workload (nil: untraced). For tax
	// workloads they run icptrack beside it, tracing a sleep.
	args []string
}

type workload struct {
	name  string
	about string
	ops   int
	tax   bool // measured beside icptrack, not under it
	modes []mode
}

func workloads(events string) []workload {
	untraced := mode{name: "untraced"}
	floor := mode{"attach-only floor", []string{"--attach-only"}}
	traced := mode{"icptrack, event log", []string{"--events", events}}
	return []workload{
		{"pipe-pingpong", "64-byte round trips over two pipes", 100_000, false, []mode{untraced, floor, traced}},
		{"unix-pingpong", "64-byte round trips over a unix stream socketpair", 100_000, false, []mode{untraced, floor, traced}},
		{"pipe-stream", "one-way 64-byte writes, the writer never sleeps", 2_000_000, false, []mode{untraced, floor, traced}},
		{"file-write", "64-byte writes to a regular file by a process icptrack does not trace", 2_000_000, true, []mode{
			{name: "no icptrack"},
			{"icptrack: sockets and signals only", []string{"--mechanisms", "unix,inet"}},
			{"attach-only floor, syscall hooks", []string{"--attach-only"}},
			{"icptrack: all mechanisms (pipes need syscall hooks)", nil},
		}},
	}
}

type sample struct {
	opsPerSec float64
	dropped   int64
}

func harness() error {
	self, _ := os.Executable()
	icptrack := flag.String("icptrack", filepath.Join(filepath.Dir(self), "icptrack"), "the icptrack binary to measure")
	reps := flag.Int("reps", 5, "repetitions of each workload in each mode")
	only := flag.String("only", "", "comma-separated workloads to run (default all)")
	scale := flag.Float64("scale", 1, "multiply each workload's operations by this")
	flag.Parse()
	if _, err := os.Stat(*icptrack); err != nil {
		return fmt.Errorf("no icptrack binary at %s: build it (make build) or pass --icptrack", *icptrack)
	}
	dir, err := os.MkdirTemp("", "icptrack-bench")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	events := filepath.Join(dir, "events.jsonl")

	fmt.Printf("# icptrack benchmark: %s, %d CPUs, kernel %s; %d repetitions, modes interleaved\n\n",
		time.Now().Format("2006-01-02"), numCPU(), kernel(), *reps)
	fmt.Println("| workload | mode | ops/s (median) | spread | ratio to untraced | events dropped |")
	fmt.Println("|---|---|---:|---:|---:|---:|")
	for _, w := range workloads(events) {
		if *only != "" && !slices.Contains(strings.Split(*only, ","), w.name) {
			continue
		}
		w.ops = int(float64(w.ops) * *scale)
		results := make([][]sample, len(w.modes))
		for r := 0; r < *reps; r++ {
			for i, m := range w.modes {
				s, err := measure(*icptrack, self, w, m, dir)
				if err != nil {
					return fmt.Errorf("%s, %s: %w", w.name, m.name, err)
				}
				results[i] = append(results[i], s)
			}
		}
		base := median(results[0])
		for i, m := range w.modes {
			med := median(results[i])
			lo, hi := spread(results[i])
			var dropped int64
			for _, s := range results[i] {
				dropped += s.dropped
			}
			fmt.Printf("| %s | %s | %s | %s–%s | %.2f | %d |\n", w.name, m.name, human(med), human(lo), human(hi), med/base, dropped)
		}
	}
	fmt.Println()
	for _, w := range workloads(events) {
		fmt.Printf("- %s: %s (%d operations).\n", w.name, w.about, w.ops)
	}
	return nil
}

var droppedRe = regexp.MustCompile(`(\d+) events dropped`)

// measure runs the workload once in mode m and returns its throughput.
func measure(icptrack, self string, w workload, m mode, dir string) (sample, error) {
	work := exec.Command(self, strconv.Itoa(w.ops))
	work.Env = append(os.Environ(), roleEnv+"="+w.name)
	if w.tax {
		return measureBeside(icptrack, work, m)
	}
	cmd := work
	var stderr bytes.Buffer
	if m.args != nil {
		args := append(append([]string{"run"}, m.args...), "--")
		cmd = exec.Command(icptrack, append(args, work.Args...)...)
		cmd.Env = work.Env
	}
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return sample{}, fmt.Errorf("%v: %s", err, stderr.String())
	}
	s, err := parseResult(out)
	if m := droppedRe.FindSubmatch(stderr.Bytes()); m != nil {
		s.dropped, _ = strconv.ParseInt(string(m[1]), 10, 64)
	}
	return s, err
}

// measureBeside runs work while icptrack (if m says so) traces a sleeping
// process: work itself is not traced and pays only the global cost.
func measureBeside(icptrack string, work *exec.Cmd, m mode) (sample, error) {
	if m.name != "no icptrack" {
		args := append(append([]string{"run"}, m.args...), "--", "sleep", "3600")
		bg := exec.Command(icptrack, args...)
		var stderr bytes.Buffer
		bg.Stderr = &stderr
		if err := bg.Start(); err != nil {
			return sample{}, err
		}
		defer func() {
			_ = bg.Process.Signal(syscall.SIGTERM)
			_ = bg.Wait()
		}()
		// Wait until its programs are attached: the sleep has started.
		deadline := time.Now().Add(10 * time.Second)
		for !hasChild(bg.Process.Pid) {
			if time.Now().After(deadline) {
				return sample{}, fmt.Errorf("icptrack did not start: %s", stderr.String())
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	out, err := work.Output()
	if err != nil {
		return sample{}, err
	}
	return parseResult(out)
}

func hasChild(pid int) bool {
	lists, _ := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/children", pid))
	for _, l := range lists {
		if b, _ := os.ReadFile(l); len(bytes.TrimSpace(b)) > 0 {
			return true
		}
	}
	return false
}

type result struct {
	Ops       int   `json:"ops"`
	ElapsedNs int64 `json:"elapsed_ns"`
}

func parseResult(out []byte) (sample, error) {
	var r result
	if err := json.Unmarshal(bytes.TrimSpace(out), &r); err != nil || r.ElapsedNs <= 0 {
		return sample{}, fmt.Errorf("workload printed %q", out)
	}
	return sample{opsPerSec: float64(r.Ops) / (float64(r.ElapsedNs) / 1e9)}, nil
}

func median(s []sample) float64 {
	v := make([]float64, len(s))
	for i, x := range s {
		v[i] = x.opsPerSec
	}
	slices.Sort(v)
	if len(v)%2 == 1 {
		return v[len(v)/2]
	}
	return (v[len(v)/2-1] + v[len(v)/2]) / 2
}

func spread(s []sample) (lo, hi float64) {
	lo, hi = s[0].opsPerSec, s[0].opsPerSec
	for _, x := range s {
		lo, hi = min(lo, x.opsPerSec), max(hi, x.opsPerSec)
	}
	return lo, hi
}

func human(v float64) string {
	switch {
	case v >= 1e6:
		return fmt.Sprintf("%.2fM", v/1e6)
	case v >= 1e3:
		return fmt.Sprintf("%.1fk", v/1e3)
	}
	return fmt.Sprintf("%.0f", v)
}

func numCPU() int {
	b, _ := os.ReadFile("/proc/cpuinfo")
	return bytes.Count(b, []byte("\nprocessor")) + 1
}

func kernel() string {
	var u syscall.Utsname
	_ = syscall.Uname(&u)
	var b []byte
	for _, c := range u.Release {
		if c == 0 {
			break
		}
		b = append(b, byte(c))
	}
	return string(b)
}
