package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/icptrack/icptrack/internal/kerneltest"
)

// The harness end to end, at a small scale: a pipe ping-pong in every
// icptrack mode and the file-write tax, against the real icptrack, with
// its real OTLP receiver and the kernel's BPF statistics. It checks that
// the figures a full run publishes are there and hang together, so that
// make bench does not rot between the runs that fill BENCHMARKS.md.
func TestHarnessSmallRun(t *testing.T) {
	kerneltest.NeedsRoot(t, "the benchmark harness")
	dir := t.TempDir()
	icptrack, bench := binaries(t)
	jsonPath, plotPath := filepath.Join(dir, "results.json"), filepath.Join(dir, "plot.png")
	cmd := exec.Command(bench, "--icptrack", icptrack, "--scale", "0.05", "--reps", "1",
		"--only", "pipe-pingpong,file-write", "--modes", "floor,events,otlp,metrics,api,sockets,all",
		"--json", jsonPath, "--plot", plotPath)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("icptrack-bench: %v\n%s", err, stderr.String())
	}

	b, err := os.ReadFile(jsonPath)
	if err != nil {
		t.Fatal(err)
	}
	var res results
	if err := json.Unmarshal(b, &res); err != nil {
		t.Fatal(err)
	}
	rows := map[string]row{}
	for _, r := range res.Rows {
		if r.Error != "" || r.NA != "" {
			t.Errorf("%s/%s: error %q, n/a %q", r.Workload, r.Mode, r.Error, r.NA)
		}
		rows[r.Workload+"/"+r.Mode] = r
	}
	pp := "pipe-pingpong/"
	for _, m := range []string{keyUntraced, keyFloor, keyEvents, keyOTLP, keyMetrics, keyAPI} {
		r, ok := rows[pp+m]
		switch {
		case !ok:
			t.Errorf("no row for %s%s", pp, m)
		case r.OpsPerSec <= 0 || r.P50Ns <= 0 || r.P99Ns < r.P50Ns:
			t.Errorf("%s%s: %.0f ops/s, p50 %.0f ns, p99 %.0f ns", pp, m, r.OpsPerSec, r.P50Ns, r.P99Ns)
		case m != keyUntraced && (r.Ratio <= 0 || r.Ratio > 10 || r.TracerMaxRSSKiB <= 0):
			t.Errorf("%s%s: ratio %.2f, peak RSS %d KiB", pp, m, r.Ratio, r.TracerMaxRSSKiB)
		}
	}
	ev := rows[pp+keyEvents]
	if ev.Dropped != 0 || ev.TracerCPUPerMOps <= 0 {
		t.Errorf("event log: %d dropped, %.2f s per M ops", ev.Dropped, ev.TracerCPUPerMOps)
	}
	// Each round trip is two writes and two reads, every one a span that
	// icptrack sent, sampled out (the span cap) or, when its export queue
	// overflowed (as it can on a busy machine), dropped and counted; the
	// receiver got all it sent.
	if o := rows[pp+keyOTLP].OTLP; o == nil || o.SpansSent == 0 || o.SpansSent+o.SpansDropped+o.SpansSampledOut < 4*int64(ev.Ops) ||
		o.SpansReceived != o.SpansSent || o.FailedExports != 0 {
		t.Errorf("OTLP counts %+v for %d round trips", o, ev.Ops)
	}
	// The api mode's view followed the graph while the ping-pong ran.
	if v := rows[pp+keyAPI].View; v == nil || v.GraphEvents == 0 {
		t.Errorf("the api mode's live view received %+v", v)
	}
	for _, m := range []string{keySockets, keyAll} {
		if r := rows["file-write/"+m]; r.Ratio <= 0 || r.Ratio > 10 {
			t.Errorf("file-write/%s: ratio %.2f", m, r.Ratio)
		}
	}

	// The statistics run counted the programs that saw the round trips.
	var enter *bpfRow
	for i, r := range res.BPF {
		if r.Workload == "pipe-pingpong" && r.Program == "sys_enter" {
			enter = &res.BPF[i]
		}
	}
	if enter == nil || enter.RunCount < 4*uint64(enter.Ops) || enter.RunTimeNs <= 0 {
		t.Errorf("BPF statistics for pipe-pingpong's sys_enter: %+v", enter)
	}
	if len(res.Targets) == 0 || !bytes.Contains(stdout.Bytes(), []byte("| pipe-pingpong | icptrack, event log |")) {
		t.Errorf("%d targets judged; the tables:\n%s", len(res.Targets), stdout.String())
	}
	if png, err := os.ReadFile(plotPath); err != nil || !bytes.HasPrefix(png, []byte("\x89PNG")) {
		t.Errorf("plot: %v", err)
	}
}

// The store mode, on a short sustained run: a fresh encrypted and sealed
// store each run, which icptrack verify passes with the keyring after it
// (else the row has an error), and whatever an output lost counted in
// the row's drops.
func TestHarnessStoreMode(t *testing.T) {
	kerneltest.NeedsRoot(t, "the benchmark harness")
	res := runBench(t, "--reps", "1", "--sustain", "2s", "--bpf-stats=false", "--only", "sustained-200k", "--modes", "store")
	var store *row
	for i, r := range res.Rows {
		if r.Mode == keyStore {
			store = &res.Rows[i]
		}
	}
	if store == nil || store.Error != "" || store.Runs != 1 || store.OpsPerSec <= 0 {
		t.Fatalf("the store row: %+v", store)
	}
	t.Logf("stored %.0f ops/s, %d dropped", store.OpsPerSec, store.Dropped)
}

// runBench runs the harness with args and returns the results it wrote.
func runBench(t *testing.T, args ...string) results {
	t.Helper()
	icptrack, bench := binaries(t)
	jsonPath := filepath.Join(t.TempDir(), "results.json")
	cmd := exec.Command(bench, append([]string{"--icptrack", icptrack, "--json", jsonPath}, args...)...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("icptrack-bench: %v\n%s", err, stderr.String())
	}
	b, err := os.ReadFile(jsonPath)
	if err != nil {
		t.Fatal(err)
	}
	var res results
	if err := json.Unmarshal(b, &res); err != nil {
		t.Fatal(err)
	}
	return res
}

var built struct {
	once sync.Once
	dir  string
	err  error
}

func TestMain(m *testing.M) {
	code := m.Run()
	if built.dir != "" {
		os.RemoveAll(built.dir)
	}
	os.Exit(code)
}

// binaries builds icptrack and the harness, once for the tests that run
// them.
func binaries(t *testing.T) (icptrack, bench string) {
	t.Helper()
	built.once.Do(func() {
		if built.dir, built.err = os.MkdirTemp("", "icptrack-bench-test"); built.err != nil {
			return
		}
		for out, pkg := range map[string]string{"icptrack": "../icptrack", "icptrack-bench": "."} {
			if b, err := exec.Command("go", "build", "-o", filepath.Join(built.dir, out), pkg).CombinedOutput(); err != nil {
				built.err = fmt.Errorf("go build %s: %v\n%s", pkg, err, b)
				return
			}
		}
	})
	if built.err != nil {
		t.Fatal(built.err)
	}
	return filepath.Join(built.dir, "icptrack"), filepath.Join(built.dir, "icptrack-bench")
}

// pgbench against a real PostgreSQL 15, untraced and with the event log,
// for a second each. The figures hang together; icptrack, selecting by
// name, saw the queries and the answers on the unix socket between
// pgbench and the backends, and dropped nothing; and the cluster is gone
// afterwards.
func TestHarnessPgbench(t *testing.T) {
	kerneltest.NeedsRoot(t, "the benchmark harness")
	if err := checkPostgres(pgBinDefault); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("%v; under CI=true the pgbench workload must run (.ci/run installs postgresql-15)", err)
		}
		t.Skip(err)
	}
	res := runBench(t, "--scale", "0.05", "--reps", "1", "--only", "pgbench",
		"--modes", "events", "--bpf-stats=false", "--pgbench-scale", "1")
	if len(res.Workloads) != 1 || res.Workloads[0].Seconds != 1 || res.Workloads[0].Comms != "postgres,pgbench" {
		t.Errorf("workloads %+v, want pgbench alone, 1 s a run, traced by comm", res.Workloads)
	}
	if len(res.Rows) != 2 {
		t.Fatalf("rows %+v, want untraced and event log", res.Rows)
	}
	for _, r := range res.Rows {
		if r.Runs != 1 || r.OpsPerSec <= 0 || r.P50Ns <= 0 || r.P99Ns < r.P50Ns || r.Ratio <= 0 || r.Ratio > 10 {
			t.Errorf("%s: %d runs, %.0f tps, p50 %.0f ns, p99 %.0f ns, ratio %.2f", r.Mode, r.Runs, r.OpsPerSec, r.P50Ns, r.P99Ns, r.Ratio)
		}
	}
	if ev := res.Rows[1]; ev.Mode != keyEvents || ev.Dropped != 0 || ev.TracerCPUPerMOps <= 0 || ev.TracerMaxRSSKiB <= 0 {
		t.Errorf("event log: %+v, want no drops, icptrack's CPU and RSS", ev)
	}
	for _, s := range res.Samples {
		// A transaction is a query and its answer: pgbench sends the
		// query and a backend receives it, two operations from pgbench to
		// postgres; at least one more goes back (answers may be read
		// with the receive counted under several senders).
		var toPostgres, toPgbench int64
		for _, r := range s.Seen {
			if r.Mechanism == "unix_stream" && r.From == "pgbench" && r.To == "postgres" {
				toPostgres += r.Ops
			}
			if r.Mechanism == "unix_stream" && r.From == "postgres" && r.To == "pgbench" {
				toPgbench += r.Ops
			}
		}
		switch s.Mode {
		case keyUntraced:
			if s.Seen != nil {
				t.Errorf("untraced, yet icptrack's summary was read: %+v", s.Seen)
			}
		case keyEvents:
			if toPostgres < 2*int64(s.Ops) || toPgbench < int64(s.Ops) {
				t.Errorf("%d transactions, and icptrack saw %d unix-socket operations from pgbench to postgres, %d back: %+v",
					s.Ops, toPostgres, toPgbench, s.Seen)
			}
		}
	}
	if left := clusterProcesses(); len(left) > 0 {
		t.Errorf("the harness left its PostgreSQL running: %s", strings.Join(left, "; "))
	}
}

// clusterProcesses lists processes whose command line names a cluster of
// the harness (its directory is icptrack-pgbench*).
func clusterProcesses() []string {
	var found []string
	procs, _ := os.ReadDir("/proc")
	for _, p := range procs {
		b, err := os.ReadFile(filepath.Join("/proc", p.Name(), "cmdline"))
		if err == nil && bytes.Contains(b, []byte("icptrack-pgbench")) {
			found = append(found, p.Name()+": "+string(bytes.ReplaceAll(b, []byte{0}, []byte{' '})))
		}
	}
	return found
}

// Without PostgreSQL the harness says what to install, before it runs
// anything, unless asked to leave pgbench out.
func TestHarnessSaysWhatToInstallForPgbench(t *testing.T) {
	kerneltest.NeedsRoot(t, "the benchmark harness")
	icptrack, bench := binaries(t)
	missing := filepath.Join(t.TempDir(), "no-postgres")
	out, err := exec.Command(bench, "--icptrack", icptrack, "--pg-bin", missing, "--only", "pgbench,file-write").CombinedOutput()
	if err == nil || !bytes.Contains(out, []byte("apt-get install postgresql-15")) || !bytes.Contains(out, []byte("--skip pgbench")) ||
		bytes.Contains(out, []byte("file-write 1/")) {
		t.Errorf("with no PostgreSQL: %v, want a failure naming the package before any run:\n%s", err, out)
	}
	// Skipped explicitly, nothing is missing.
	out, err = exec.Command(bench, "--icptrack", icptrack, "--pg-bin", missing, "--only", "pgbench", "--skip", "pgbench").CombinedOutput()
	if err != nil || bytes.Contains(out, []byte("pgbench 1/")) {
		t.Errorf("with pgbench skipped: %v\n%s", err, out)
	}
}
