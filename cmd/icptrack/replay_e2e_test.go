package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/icptrack/icptrack/exporter"
	"github.com/icptrack/icptrack/flow"
)

// A capture of the demo, taken twenty minutes "ago", replayed into a
// real Jaeger: each request is one trace across the three services, and
// every span starts when its operation did, or, with --shift-to-now, as
// much later as makes the last one end now.
func TestReplayShowsACaptureInJaeger(t *testing.T) {
	_ = needsTool(t, "Jaeger", jaegerBinary(), "run make tools (it builds Jaeger v2 from tools/jaeger)")
	const requests = 3
	ops := demoCapture(t, requests)
	for _, op := range ops {
		op.Time = op.Time.Add(-20 * time.Minute)
	}
	hostname, _ := os.Hostname()

	t.Run("own-times", func(t *testing.T) {
		j := startJaeger(t)
		file := captureFile(t, exporter.JSONL, ops)
		r := run(t, "replay", "--otlp-endpoint", j.otlpGRPC, "--otlp-protocol", "grpc", "--otlp-signals", "traces", file)
		if want := fmt.Sprintf("%d spans sent, 0 dropped", len(ops)); r.code != 0 || !strings.Contains(r.stderr, want) {
			t.Fatalf("exit %d, want %q in:\n%s", r.code, want, r.stderr)
		}
		checkRequestChains(t, j, requests)
		spans := jaegerSpans(t, j, ops)
		for _, op := range ops {
			s := spans[op.ID.String()]
			if s.Start != op.Time.UnixMicro() {
				t.Errorf("span %s (%s %s of %s) starts at %d µs, its operation at %d", op.ID, op.Mechanism, op.Op, op.Comm,
					s.Start, op.Time.UnixMicro())
			}
			if s.Tags["ipc.replay.capture"] != filepath.Base(file) || s.Tags["host.name"] != "" {
				t.Errorf("span %s's resource %v: want ipc.replay.capture %q and no host.name (a jsonl capture does not say where it was taken)",
					op.ID, s.Tags, filepath.Base(file))
				break
			}
		}
	})

	t.Run("shift-to-now", func(t *testing.T) {
		j := startJaeger(t)
		// An OTLP capture names its host: the spans keep it.
		file := captureFile(t, exporter.OTLPJSON, ops)
		b, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		quoted, _ := json.Marshal(hostname)
		renamed := strings.ReplaceAll(string(b), `"stringValue":`+string(quoted), `"stringValue":"capture-box"`)
		if renamed == string(b) {
			t.Fatalf("the otlp-json capture does not name the host %q", hostname)
		}
		if err := os.WriteFile(file, []byte(renamed), 0o644); err != nil {
			t.Fatal(err)
		}
		before := time.Now()
		r := run(t, "replay", "--otlp-endpoint", j.otlpHTTP, "--otlp-protocol", "http/protobuf", "--otlp-signals", "traces",
			"--shift-to-now", file)
		after := time.Now()
		if r.code != 0 || !strings.Contains(r.stderr, "0 dropped") || !strings.Contains(r.stderr, "shifted by 20m") {
			t.Fatalf("exit %d, stderr:\n%s", r.code, r.stderr)
		}
		checkRequestChains(t, j, requests)
		spans := jaegerSpans(t, j, ops)
		var last time.Time
		for _, op := range ops {
			if e := op.Time.Add(op.Duration); e.After(last) {
				last = e
			}
		}
		shift := time.Duration(spans[ops[0].ID.String()].Start-ops[0].Time.UnixMicro()) * time.Microsecond
		if end := last.Add(shift); end.Before(before.Add(-time.Second)) || end.After(after) {
			t.Errorf("the last operation ends at %s in Jaeger, want between %s and %s, when replay ran",
				end.Format(time.StampMicro), before.Format(time.StampMicro), after.Format(time.StampMicro))
		}
		for _, op := range ops {
			s := spans[op.ID.String()]
			// Every span moved by the same amount (to the microsecond
			// Jaeger keeps).
			if d := time.Duration(s.Start-op.Time.UnixMicro())*time.Microsecond - shift; d < -time.Microsecond || d > time.Microsecond {
				t.Errorf("span %s moved by %s, the first by %s", op.ID, shift+d, shift)
			}
			if s.Tags["host.name"] != "capture-box" && op.PID != 0 {
				t.Errorf("span %s's resource names host %q, want the capture's, capture-box", op.ID, s.Tags["host.name"])
				break
			}
		}
	})
}

func jaegerBinary() string {
	if bin := os.Getenv("ICPTRACK_JAEGER"); bin != "" {
		return bin
	}
	bin, _ := filepath.Abs("../../bin/jaeger")
	return bin
}

// demoCapture traces the demo's requests into a capture and reads it.
func demoCapture(t *testing.T, requests int) []*flow.Operation {
	t.Helper()
	events := filepath.Join(t.TempDir(), "demo.jsonl")
	r := run(t, "run", "--events", events, "--", demoClient(t), "--requests", strconv.Itoa(requests))
	if r.code != 0 || strings.Count(r.stdout, " -> ") != requests {
		t.Fatalf("tracing the demo: exit %d, stdout %q, stderr %s", r.code, r.stdout, r.stderr)
	}
	return captureOps(t, events)
}

// jaegerSpan is what Jaeger keeps of a span: when it started (µs) and its
// process's tags.
type jaegerSpan struct {
	Start int64
	Tags  map[string]string
}

// jaegerSpans waits until Jaeger holds a span for every operation of ops,
// and returns them by span id.
func jaegerSpans(t *testing.T, j jaegerServer, ops []*flow.Operation) map[string]jaegerSpan {
	t.Helper()
	services := map[string]bool{}
	for _, op := range ops {
		services[exporter.ExecutableName(op)] = true
	}
	var spans map[string]jaegerSpan
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		spans = map[string]jaegerSpan{}
		for svc := range services {
			for id, s := range jaegerServiceSpans(t, j, svc) {
				spans[id] = s
			}
		}
		missing := 0
		for _, op := range ops {
			if _, ok := spans[op.ID.String()]; !ok {
				missing++
			}
		}
		if missing == 0 {
			return spans
		}
		if time.Now().After(deadline) {
			t.Fatalf("Jaeger holds %d spans of the capture's %d operations", len(ops)-missing, len(ops))
		}
	}
}

func jaegerServiceSpans(t *testing.T, j jaegerServer, service string) map[string]jaegerSpan {
	t.Helper()
	now := time.Now()
	resp, err := http.Get(fmt.Sprintf("%s/api/traces?limit=1000&service=%s&start=%d&end=%d", j.query, service,
		now.Add(-2*time.Hour).UnixMicro(), now.Add(time.Hour).UnixMicro()))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body struct {
		Data []struct {
			Spans []struct {
				SpanID    string `json:"spanID"`
				StartTime int64  `json:"startTime"`
				ProcessID string `json:"processID"`
			} `json:"spans"`
			Processes map[string]struct {
				Tags []struct {
					Key   string `json:"key"`
					Value any    `json:"value"`
				} `json:"tags"`
			} `json:"processes"`
		} `json:"data"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		t.Fatal(err)
	}
	out := map[string]jaegerSpan{}
	for _, tr := range body.Data {
		for _, s := range tr.Spans {
			tags := map[string]string{}
			for _, tag := range tr.Processes[s.ProcessID].Tags {
				tags[tag.Key] = fmt.Sprint(tag.Value)
			}
			out[s.SpanID] = jaegerSpan{Start: s.StartTime, Tags: tags}
		}
	}
	return out
}

// A capture replayed to the ocb-built Collector over OTLP/HTTP comes out
// of its Prometheus exporter with the capture's counts: messages and
// bytes per mechanism, executable and direction, as run would have
// counted them live.
func TestReplaySendsMetricsThroughTheCollector(t *testing.T) {
	bin := os.Getenv("ICPTRACK_OTELCOL")
	if bin == "" {
		bin, _ = filepath.Abs("../../bin/otelcol-icptrack")
	}
	bin = needsTool(t, "otelcol-icptrack", bin, "run make otelcol (it builds the distribution with ocb)")
	otlpPort, promPort, healthPort := freePort(t), freePort(t), freePort(t)
	config := filepath.Join(t.TempDir(), "collector.yaml")
	err := os.WriteFile(config, []byte(fmt.Sprintf(`receivers:
  otlp:
    protocols:
      http:
        endpoint: 127.0.0.1:%d
exporters:
  prometheus:
    endpoint: 127.0.0.1:%d
    add_metric_suffixes: true
    # The Resource's attributes on every series, to see what it says.
    resource_to_telemetry_conversion:
      enabled: true
extensions:
  health_check:
    endpoint: 127.0.0.1:%d
service:
  extensions: [health_check]
  telemetry:
    metrics:
      level: none
  pipelines:
    metrics:
      receivers: [otlp]
      exporters: [prometheus]
`, otlpPort, promPort, healthPort)), 0o644)
	if err != nil {
		t.Fatal(err)
	}
	startServer(t, exec.Command(bin, "--config", config), fmt.Sprintf("http://127.0.0.1:%d/", healthPort))

	ops := demoCapture(t, 4)
	file := captureFile(t, exporter.JSONL, ops)
	r := run(t, "replay", "--otlp-endpoint", fmt.Sprintf("http://127.0.0.1:%d", otlpPort), "--otlp-signals", "metrics", file)
	if r.code != 0 || !strings.Contains(r.stderr, fmt.Sprintf("metrics of %d operations sent", len(ops))) {
		t.Fatalf("exit %d, stderr:\n%s", r.code, r.stderr)
	}

	// What the metrics must say: sends and receives that moved data (an
	// end of file is not a message), per mechanism, executable and
	// direction.
	want := map[string]int64{}
	for _, op := range ops {
		if op.Error != "" || (op.Op != flow.Send && op.Op != flow.Receive) ||
			(op.Op == flow.Receive && op.Bytes == 0 && op.Mechanism.Stream()) {
			continue
		}
		series := fmt.Sprintf(`ipc_mechanism="%s",process_executable_name="%s"`, op.Mechanism, exporter.ExecutableName(op))
		name := "ipc_sent_messages_total"
		if op.Op == flow.Receive {
			name = "ipc_received_messages_total"
		}
		want[name+"{"+series+"}"] += op.Ops()
		want[fmt.Sprintf(`ipc_io_bytes_total{ipc_direction="%s",%s}`, op.Op, series)] += op.Bytes
	}
	for k, v := range want {
		if v == 0 {
			delete(want, k) // a counter that never moved is not reported
		}
	}
	if len(want) < 6 {
		t.Fatalf("the demo's capture has only %d series: %v", len(want), want)
	}
	url := fmt.Sprintf("http://127.0.0.1:%d/metrics", promPort)
	var got map[string]int64
	var body string
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(250 * time.Millisecond) {
		body = scrape(t, url)
		got = promCounters(body, "ipc_sent_messages_total", "ipc_received_messages_total", "ipc_io_bytes_total")
		if len(got) >= len(want) || time.Now().After(deadline) {
			break
		}
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %d in the Collector, %d in the capture", k, got[k], v)
		}
	}
	for k, v := range got {
		if _, ok := want[k]; !ok {
			t.Errorf("%s = %d in the Collector, absent from the capture", k, v)
		}
	}
	for _, l := range strings.Split(body, "\n") {
		if !strings.HasPrefix(l, "ipc_sent_messages_total{") {
			continue
		}
		if !strings.Contains(l, `ipc_replay_capture="`+filepath.Base(file)+`"`) || strings.Contains(l, "host_name=") {
			t.Errorf("a series whose Resource does not say ipc.replay.capture=%q, or names a host (a jsonl capture does not say where it was taken):\n%s",
				filepath.Base(file), l)
		}
	}
	if t.Failed() {
		t.Logf("/metrics:\n%s", body)
	}
}

// promCounters reads the samples of the named counters from a /metrics
// page, keyed by name and their ipc.* and executable labels, in the order
// Prometheus writes them.
func promCounters(body string, names ...string) map[string]int64 {
	out := map[string]int64{}
	line := regexp.MustCompile(`^(\w+)\{(.*)\} (\S+)$`)
	for _, l := range strings.Split(body, "\n") {
		m := line.FindStringSubmatch(l)
		if m == nil || !strings.Contains(" "+strings.Join(names, " ")+" ", " "+m[1]+" ") {
			continue
		}
		var labels []string
		for _, kv := range strings.Split(m[2], ",") {
			switch name, _, _ := strings.Cut(kv, "="); name {
			case "ipc_direction", "ipc_mechanism", "process_executable_name":
				labels = append(labels, kv)
			}
		}
		v, err := strconv.ParseFloat(m[3], 64)
		if err != nil {
			continue
		}
		out[m[1]+"{"+strings.Join(labels, ",")+"}"] = int64(v)
	}
	return out
}
