package anomaly

import (
	"compress/gzip"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/icptrack/icptrack/capture"
	"github.com/icptrack/icptrack/internal/kerneltest"
)

// detectCapture reads a capture and runs a detector with a baseline
// window of its first 20s over it.
func detectCapture(t *testing.T, r io.Reader) *Report {
	t.Helper()
	c, err := capture.Open(r)
	if err != nil {
		t.Fatal(err)
	}
	d, err := New(Options{BaselineWindow: 20 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	var first, last time.Time
	for {
		op, err := c.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if first.IsZero() {
			first = op.Time
		}
		last = op.Time
		d.Add(op)
	}
	if took := last.Sub(first); took < 45*time.Second {
		t.Fatalf("the capture spans %s, want about a minute", took)
	}
	report, err := d.Findings()
	if err != nil {
		t.Fatal(err)
	}
	return report
}

// The demo traced for a minute, at ten requests a second, is normal
// traffic: learning from its first 20s, nothing in the other 40 is an
// anomaly. (Recorded with icptrack run --events … -- demo-client
// --requests 590 --interval 100ms.)
func TestRecordedDemoMinuteHasNoAnomalies(t *testing.T) {
	f, err := os.Open("testdata/demo-minute.jsonl.gz")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	z, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	if r := detectCapture(t, z); len(r.Findings) != 0 {
		t.Errorf("%d findings on the demo:\n%s", len(r.Findings), describe(r))
	}
}

// The same, traced here and now, at about ninety requests a second: the
// minute takes a minute.
func TestDemoMinuteHasNoAnomalies(t *testing.T) {
	kerneltest.NeedsRoot(t, "tracing the demo")
	dir := t.TempDir()
	icptrack := filepath.Join(dir, "icptrack")
	client := filepath.Join(dir, "demo", "demo-client")
	for _, b := range [][]string{
		{"-o", icptrack, "github.com/icptrack/icptrack/cmd/icptrack"},
		{"-o", client, "github.com/icptrack/icptrack/examples/demo"},
	} {
		if out, err := exec.Command("go", append([]string{"build"}, b...)...).CombinedOutput(); err != nil {
			t.Fatalf("go build %v: %v\n%s", b, err, out)
		}
	}
	for _, part := range []string{"demo-server", "demo-worker"} {
		if err := os.Link(client, filepath.Join(dir, "demo", part)); err != nil {
			t.Fatal(err)
		}
	}
	events := filepath.Join(dir, "events.jsonl")
	const requests = 5000
	cmd := exec.Command(icptrack, "run", "--events", events, "--", client,
		"--requests", strconv.Itoa(requests), "--interval", "10ms")
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil || strings.Count(string(out), " -> ") != requests {
		t.Fatalf("icptrack run the demo: %v; %d answers of %d\n%s", err, strings.Count(string(out), " -> "), requests, stderr.String())
	}
	f, err := os.Open(events)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	r := detectCapture(t, f)
	t.Logf("%d findings on the demo traced for %s", len(r.Findings), r.Examined.To.Sub(r.Baseline.From).Round(time.Second))
	if len(r.Findings) != 0 {
		t.Errorf("the demo is normal traffic, but:\n%s", describe(r))
	}
}
