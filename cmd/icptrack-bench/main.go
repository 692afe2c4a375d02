// Command icptrack-bench measures what icptrack costs the programs it
// watches. Each workload, a fixed amount of IPC, runs untraced, under
// icptrack with its hooks attached but doing nothing (the floor), under
// icptrack writing the event log, exporting OTLP, or keeping metrics only,
// and under strace, in turns (A B C A B C ...), several times; it reports
// medians and spread, round-trip latency, icptrack's own CPU time and
// memory, events dropped and, in a run of their own, the kernel's
// statistics of icptrack's BPF programs.
//
// Workloads time themselves, so icptrack's start-up is not counted. The
// tax on processes icptrack does not trace is measured with a file-write
// loop running beside an icptrack that traces something else.
//
//	make bench
//	go build -o bin/icptrack-bench ./cmd/icptrack-bench &&
//	    sudo bin/icptrack-bench --scale 0.05 --reps 1 --only pipe-pingpong
package main

import (
	"errors"
	"flag"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"
)

// roleEnv makes the binary a workload process instead of the harness.
const roleEnv = "ICPTRACK_BENCH_ROLE"

func main() {
	if role := os.Getenv(roleEnv); role != "" {
		// Each workload process does its IPC on one thread.
		runtime.LockOSThread()
		if err := runRole(role, os.Args[1:]); err != nil {
			fmt.Fprintf(os.Stderr, "icptrack-bench %s: %v\n", role, err)
			os.Exit(1)
		}
		return
	}
	if err := harness(); err != nil {
		fmt.Fprintf(os.Stderr, "icptrack-bench: %v\n", err)
		os.Exit(1)
	}
}

// bench is the harness's settings and state.
type bench struct {
	icptrack, self, dir, strace string
	reps                        int
	scale, straceScale          float64
	sustain                     time.Duration
	modes                       []string // --modes; empty: all
	bpfStats                    bool
	sink                        *otlpSink
	// Why a mode cannot run here ("": it can).
	metricsNA, straceNA string
	// pgbench's PostgreSQL: its programs and the data's scale factor.
	pgBin   string
	pgScale int
	// env is for the workload's driver: where its server is (setup).
	env []string
	// apiAddr is where the api mode's icptrack serves its API.
	apiAddr string
}

func (b *bench) eventsPath() string { return filepath.Join(b.dir, "events.jsonl") }

// storeDir and keyringPath are the store mode's store and keyring.
func (b *bench) storeDir() string    { return filepath.Join(b.dir, "store") }
func (b *bench) keyringPath() string { return filepath.Join(b.dir, "keyring") }

func harness() error {
	self, err := os.Executable()
	if err != nil {
		return err
	}
	b := &bench{self: self}
	flag.StringVar(&b.icptrack, "icptrack", filepath.Join(filepath.Dir(self), "icptrack"), "the icptrack binary to measure")
	flag.IntVar(&b.reps, "reps", 5, "repetitions of each workload in each mode")
	only := flag.String("only", "", "comma-separated workloads to run (default all): "+strings.Join(workloadNames(), ", "))
	skip := flag.String("skip", "", "comma-separated workloads to leave out (pgbench, when PostgreSQL 15 is not installed)")
	flag.StringVar(&b.pgBin, "pg-bin", pgBinDefault, "where PostgreSQL's initdb, postgres, psql and pgbench are, for the pgbench workload")
	flag.IntVar(&b.pgScale, "pgbench-scale", 10, "pgbench -i's scale factor (100,000 accounts each) for the pgbench workload")
	modes := flag.String("modes", "", "comma-separated modes to run besides untraced (default all): "+
		strings.Join([]string{keyFloor, keyEvents, keyOTLP, keyMetrics, keyStore, keyAPI, keyStrace, keySockets, keyAll}, ", "))
	flag.Float64Var(&b.scale, "scale", 1, "multiply each workload's operations by this (0.05 for a quick check)")
	flag.DurationVar(&b.sustain, "sustain", time.Minute, "how long the sustained-200k workload runs (2s for a quick check)")
	flag.Float64Var(&b.straceScale, "strace-scale", 0.05, "under strace, multiply each workload's operations by this too (strace is slow)")
	pinCPU := flag.Int("pingpong-cpu", 0, "run both processes of a ping-pong on this CPU; -1 lets them move (on a small VM, cross-CPU wake-ups then dominate and vary with everything else that runs)")
	flag.BoolVar(&b.bpfStats, "bpf-stats", true, "run each workload once more with the kernel's BPF statistics on, for the per-program table")
	jsonPath := flag.String("json", "", "write every sample and the tables' figures to this JSON file")
	plotPath := flag.String("plot", "", "draw the throughput ratios to untraced in this PNG file")
	flag.Parse()

	if os.Geteuid() != 0 {
		return errors.New("icptrack loads BPF programs: run as root (sudo)")
	}
	// The workloads learn the CPU from the environment they inherit.
	if err := os.Setenv(pinEnv, strconv.Itoa(*pinCPU)); err != nil {
		return err
	}
	if _, err := os.Stat(b.icptrack); err != nil {
		return fmt.Errorf("no icptrack binary at %s: build it (make build) or pass --icptrack", b.icptrack)
	}
	if b.modes, err = checkList(*modes, "mode", append(slices.Collect(maps.Keys(modeLabels)), keyUntraced)); err != nil {
		return err
	}
	names, err := checkList(*only, "workload", workloadNames())
	if err != nil {
		return err
	}
	skipped, err := checkList(*skip, "workload", workloadNames())
	if err != nil {
		return err
	}
	wanted := func(name string) bool {
		return (len(names) == 0 || slices.Contains(names, name)) && !slices.Contains(skipped, name)
	}
	if b.reps < 1 || b.scale <= 0 || b.straceScale <= 0 || b.sustain <= 0 || b.pgScale < 1 {
		return errors.New("--reps, --scale, --strace-scale, --sustain and --pgbench-scale must be positive")
	}
	// Before anything runs, not after ten minutes of other workloads.
	if wanted("pgbench") {
		if err := checkPostgres(b.pgBin); err != nil {
			return err
		}
	}
	if !hasFlag(b.icptrack, "--mode") {
		b.metricsNA = "this icptrack has no --mode metrics"
	}
	if b.strace, err = exec.LookPath("strace"); err != nil {
		b.straceNA = "strace is not installed (apt-get install strace)"
	}
	if b.dir, err = os.MkdirTemp("", "icptrack-bench"); err != nil {
		return err
	}
	defer os.RemoveAll(b.dir)
	if b.apiAddr, err = freeLoopbackAddr(); err != nil {
		return err
	}
	if b.sink, err = startOTLPSink(); err != nil {
		return err
	}
	defer b.sink.stop()
	killOnInterrupt()

	start := time.Now()
	res := &results{Machine: readMachine(), Settings: settings{
		Date: start.Format("2006-01-02"), Reps: b.reps, Scale: b.scale, StraceScale: b.straceScale,
		Sustain: b.sustain.String(), Icptrack: b.icptrack,
	}}
	var failed []string
	for _, w := range workloads(b.sustain) {
		if !wanted(w.name) {
			continue
		}
		ws, errs := b.runWorkload(w)
		res.add(w, b, ws)
		failed = append(failed, errs...)
	}
	res.finish()

	res.printMarkdown(os.Stdout)
	if *jsonPath != "" {
		if err := res.writeJSON(*jsonPath); err != nil {
			return err
		}
	}
	if *plotPath != "" {
		if err := writePlot(*plotPath, res); err != nil {
			return err
		}
	}
	fmt.Fprintf(os.Stderr, "icptrack-bench: done in %s\n", time.Since(start).Round(time.Second))
	if len(failed) > 0 {
		return fmt.Errorf("%d runs failed:\n%s", len(failed), strings.Join(failed, "\n"))
	}
	return nil
}

// runWorkload runs w in each of its modes in turn, reps times, then once
// more with BPF statistics on. It returns the samples and the failures.
func (b *bench) runWorkload(w workload) (workloadRun, []string) {
	modes := b.modesFor(w)
	reps := b.reps
	if w.reps > 0 {
		reps = min(w.reps, b.reps)
	}
	wr := workloadRun{modes: modes, samples: make([][]sample, len(modes)), errs: make([]string, len(modes))}
	var failed []string
	if w.setup != nil {
		env, stop, err := w.setup(b)
		if err != nil {
			msg := fmt.Sprintf("%s: %v", w.name, err)
			fmt.Fprintln(os.Stderr, "icptrack-bench: "+msg)
			for i := range wr.errs {
				wr.errs[i] = firstLine(err.Error())
			}
			return wr, []string{msg}
		}
		b.env = env
		defer func() { stop(); b.env = nil }()
	}
	note := func(i int, err error) {
		var na naError
		if errors.As(err, &na) {
			modes[i].na = na.reason
			if modes[i].metricsOnly {
				b.metricsNA = na.reason // the same for every workload
			}
			return
		}
		msg := fmt.Sprintf("%s, %s: %v", w.name, modes[i].name, err)
		fmt.Fprintln(os.Stderr, "icptrack-bench: "+msg)
		wr.errs[i] = firstLine(err.Error())
		failed = append(failed, msg)
	}
	for r := range reps {
		for i, m := range modes {
			if modes[i].na != "" {
				continue
			}
			s, err := b.measure(w, m, r, false)
			if err != nil {
				note(i, err)
				continue
			}
			wr.samples[i] = append(wr.samples[i], s)
			fmt.Fprintf(os.Stderr, "%s %d/%d %s: %s ops/s\n", w.name, r+1, reps, m.key, human(s.OpsPerSec))
		}
	}
	if m, ok := statsMode(w, modes); ok && b.bpfStats && !w.noBPFStats {
		s, err := b.measure(w, m, -1, true)
		if err != nil {
			msg := fmt.Sprintf("%s, %s with BPF statistics: %v", w.name, m.name, err)
			fmt.Fprintln(os.Stderr, "icptrack-bench: "+msg)
			failed = append(failed, msg)
		} else {
			wr.stats = &s
		}
	}
	return wr, failed
}

func workloadNames() []string {
	var names []string
	for _, w := range workloads(time.Minute) {
		names = append(names, w.name)
	}
	return names
}

// checkList splits a comma-separated flag and checks each name is known.
func checkList(list, what string, known []string) ([]string, error) {
	if list == "" {
		return nil, nil
	}
	names := strings.Split(list, ",")
	for _, n := range names {
		if !slices.Contains(known, n) {
			slices.Sort(known)
			return nil, fmt.Errorf("no %s %q: choose from %s", what, n, strings.Join(known, ", "))
		}
	}
	return names, nil
}

// hasFlag tells whether icptrack run has the flag.
func hasFlag(icptrack, flag string) bool {
	out, _ := exec.Command(icptrack, "run", "--help").CombinedOutput()
	return strings.Contains(string(out), flag+" ")
}
