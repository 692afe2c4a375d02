package anomaly

import (
	"compress/gzip"
	"io"
	"os"
	"testing"
	"time"

	"github.com/icptrack/icptrack/capture"
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
