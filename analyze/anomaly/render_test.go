package anomaly

import (
	"bytes"
	"encoding/json"
	"regexp"
	"strings"
	"testing"
	"time"
)

// The JSON report's field names are a contract, as the event log's are.
func TestJSONReportFields(t *testing.T) {
	r := detect(t, generate(1, plantEPIPE))
	var buf bytes.Buffer
	if err := WriteJSON(&buf, r); err != nil {
		t.Fatal(err)
	}
	b := buf.Bytes()
	var got struct {
		IntervalNS int64 `json:"interval_ns"`
		Baseline   struct {
			Source    string `json:"source"`
			Intervals int    `json:"intervals"`
		} `json:"baseline"`
		Examined struct {
			Intervals int `json:"intervals"`
		} `json:"examined"`
		Findings []map[string]any `json:"findings"`
	}
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatal(err)
	}
	if got.IntervalNS != 1e9 || got.Baseline.Source != "window" || got.Baseline.Intervals != 20 || got.Examined.Intervals != 40 {
		t.Errorf("report header %+v, want 1s intervals, a window of 20 and 40 examined:\n%s", got, b)
	}
	if len(got.Findings) != 1 {
		t.Fatalf("findings %v, want the EPIPE burst", got.Findings)
	}
	f := got.Findings[0]
	for _, k := range []string{"kind", "subject", "from", "to", "score", "evidence", "metric", "value", "baseline", "intervals"} {
		if _, ok := f[k]; !ok {
			t.Errorf("finding has no %q: %v", k, f)
		}
	}
	subject, _ := f["subject"].(map[string]any)
	baseline, _ := f["baseline"].(map[string]any)
	if f["kind"] != "error_burst" || f["metric"] != "errors/s" || subject["comm"] != "shop-server" ||
		subject["mechanism"] != "pipe" || subject["endpoint"] != "pipe:[*]" || subject["error"] != "EPIPE" ||
		baseline["median"] != 0.0 || baseline["intervals"] != 20.0 || f["score"].(float64) < 8 {
		t.Errorf("finding %v", f)
	}
	if _, err := time.Parse(time.RFC3339Nano, f["from"].(string)); err != nil {
		t.Errorf("from: %v", err)
	}
}

// The text report: a line on the baseline, then a paragraph a finding,
// its score, kind and subject first, then its time and evidence.
func TestTextReport(t *testing.T) {
	text := describe(detect(t, generate(1, plantEPIPE)))
	want := regexp.MustCompile(`^anomalies: 1 finding; baseline: the first 20s \(20 intervals of 1s\), examined 39\.9\d+s\n` +
		`\nscore \d+\.\d  error_burst  shop-server on pipe pipe:\[\*\], EPIPE\n` +
		`  \d\d:\d\d:\d\d–\d\d:\d\d:\d\d: failures/s \d+ in \d\d:\d\d:\d\d–\d\d:\d\d:\d\d; none in the baseline; robust z \d+\.\d\n$`)
	if !want.MatchString(text) {
		t.Errorf("text report:\n%s", text)
	}
	if clean := describe(detect(t, generate(1, plantNothing))); !strings.HasPrefix(clean, "anomalies: none found;") ||
		strings.Count(clean, "\n") != 1 {
		t.Errorf("text report of no findings:\n%s", clean)
	}
}
