package main

import (
	"compress/gzip"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/icptrack/icptrack/analyze/anomaly"
)

// demoMinute is a minute of the demo at a request every 100ms, traced by
// icptrack (analyze/anomaly's test data), unpacked for the command.
func demoMinute(t *testing.T) string {
	t.Helper()
	f, err := os.Open("../../analyze/anomaly/testdata/demo-minute.jsonl.gz")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	z, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "demo-minute.jsonl")
	out, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(out, z); err != nil {
		t.Fatal(err)
	}
	if err := out.Close(); err != nil {
		t.Fatal(err)
	}
	return path
}

func anomaliesJSON(t *testing.T, wantCode int, args ...string) anomaly.Report {
	t.Helper()
	r := run(t, append([]string{"analyze", "--anomalies", "--json", "--exit-code"}, args...)...)
	if r.code != wantCode {
		t.Fatalf("analyze --anomalies %s: exit %d, want %d: %s\n%s", strings.Join(args, " "), r.code, wantCode, r.stderr, r.stdout)
	}
	var rep anomaly.Report
	if err := json.Unmarshal([]byte(r.stdout), &rep); err != nil {
		t.Fatalf("analyze --anomalies --json is not the report: %v\n%s", err, r.stdout)
	}
	return rep
}

// A quiet minute of the demo, against its own first 20 seconds, is
// normal: nothing is found, and --exit-code says so with 0.
func TestAnalyzeAnomaliesFindNothingInAQuietMinute(t *testing.T) {
	minute := demoMinute(t)
	rep := anomaliesJSON(t, 0, "--baseline-window", "20s", minute)
	if len(rep.Findings) != 0 || rep.Baseline.Source != "window" || rep.Baseline.Intervals != 20 {
		t.Errorf("findings %v, baseline %+v: want none against 20 intervals of the window", rep.Findings, rep.Baseline)
	}
	r := run(t, "analyze", "--anomalies", "--baseline-window", "20s", minute)
	if r.code != 0 || !strings.Contains(r.stdout, "none found") {
		t.Errorf("text: exit %d, %q", r.code, r.stdout)
	}
}

// The demo run a hundred times as fast, against the quiet minute as its
// baseline (another run: other pids, another socket directory), is a
// rate anomaly on the client's unix socket; and the same filter applies
// to both captures.
func TestAnalyzeAnomaliesFindAFasterDemo(t *testing.T) {
	needsBPF(t)
	minute := demoMinute(t)
	fast := traceDemo(t, "demo-client --requests 3000 --interval 1ms >/dev/null")
	rep := anomaliesJSON(t, 1, "--baseline", minute, fast)
	if rep.Baseline.Source != "capture" {
		t.Errorf("baseline %+v: want the other capture", rep.Baseline)
	}
	found := false
	for _, f := range rep.Findings {
		if f.Kind == anomaly.Rate && f.Subject.Mechanism == "unix_stream" && f.Subject.Endpoint == "/tmp/icptrack-*/server.sock" {
			found = true
		}
	}
	if !found {
		t.Errorf("no rate finding on the demo's socket among %+v", rep.Findings)
	}
	// With a filter that keeps only the pipe, the socket is out of both.
	rep = anomaliesJSON(t, 1, "--baseline", minute, "--filter", "mechanism == pipe", fast)
	for _, f := range rep.Findings {
		if f.Subject.Mechanism != "pipe" {
			t.Errorf("a finding outside the filter: %+v", f)
		}
	}
}

// The demo traced here and now for a minute, at about ninety requests a
// second, is normal traffic: learning from its first 20s, nothing in the
// other 40 is an anomaly. (In this package, not analyze/anomaly's: tests
// of one package run one at a time, and the Collector's end-to-end test
// here traces every demo process on the machine.)
func TestAnalyzeAnomaliesFindNothingInTheDemoTracedForAMinute(t *testing.T) {
	needsBPF(t)
	events := traceDemo(t, "demo-client --requests 5000 --interval 10ms >/dev/null")
	rep := anomaliesJSON(t, 0, "--baseline-window", "20s", events)
	if took := rep.Examined.To.Sub(rep.Baseline.From); took < 45*time.Second {
		t.Errorf("the capture spans %s, want about a minute", took)
	}
	t.Logf("no findings on the demo traced for %s", rep.Examined.To.Sub(rep.Baseline.From).Round(time.Second))
}

func TestAnalyzeAnomaliesMistakes(t *testing.T) {
	minute := demoMinute(t)
	oneLineError(t, run(t, "analyze", "--baseline", minute, minute), exitUsage, "--baseline needs --anomalies")
	oneLineError(t, run(t, "analyze", "--anomalies", "--baseline", minute, "--baseline-window", "20s", minute), exitUsage, "give one")
	oneLineError(t, run(t, "analyze", "--anomalies", "--baseline-window", "3s", minute), exitUsage, "give it at least 10s")
	oneLineError(t, run(t, "analyze", "--anomalies", "--plot", t.TempDir(), minute), exitUsage, "--plot")
	oneLineError(t, run(t, "analyze", "--anomalies", "--baseline-window", "2m", minute), exitFailure, "shorter baseline window")
	oneLineError(t, run(t, "analyze", "--anomalies", "--baseline", "/nonexistent", minute), exitFailure, "/nonexistent")
}
