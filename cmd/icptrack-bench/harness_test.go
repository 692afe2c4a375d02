package main

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
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
	icptrack, bench := filepath.Join(dir, "icptrack"), filepath.Join(dir, "icptrack-bench")
	for out, pkg := range map[string]string{icptrack: "../icptrack", bench: "."} {
		if b, err := exec.Command("go", "build", "-o", out, pkg).CombinedOutput(); err != nil {
			t.Fatalf("go build %s: %v\n%s", pkg, err, b)
		}
	}
	jsonPath, plotPath := filepath.Join(dir, "results.json"), filepath.Join(dir, "plot.png")
	cmd := exec.Command(bench, "--icptrack", icptrack, "--scale", "0.05", "--reps", "1",
		"--only", "pipe-pingpong,file-write", "--modes", "floor,events,otlp,metrics,sockets,all",
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
	for _, m := range []string{keyUntraced, keyFloor, keyEvents, keyOTLP, keyMetrics} {
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
