package main

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/icptrack/icptrack/exporter"
)

// The otelcol-icptrack distribution (make otelcol), run with the example
// configuration, sends the demo's requests to a real Jaeger as one trace
// each and serves the ipc_* metrics for Prometheus.
func TestCollectorSendsTheDemoToJaegerAndPrometheus(t *testing.T) {
	bin := os.Getenv("ICPTRACK_OTELCOL")
	if bin == "" {
		bin, _ = filepath.Abs("../../bin/otelcol-icptrack")
	}
	bin = needsTool(t, "otelcol-icptrack", bin, "run make otelcol (it builds the distribution with ocb)")
	j := startJaeger(t)
	metricsPort, healthPort := freePort(t), freePort(t)
	cmd := exec.Command(bin, "--config", "../../examples/collector/jaeger-prometheus.yaml")
	cmd.Env = append(os.Environ(),
		"OTLP_ENDPOINT="+strings.TrimPrefix(j.otlpGRPC, "http://"),
		fmt.Sprintf("PROMETHEUS_ENDPOINT=127.0.0.1:%d", metricsPort),
		fmt.Sprintf("HEALTH_ENDPOINT=127.0.0.1:%d", healthPort),
		"ICPTRACK_COMMS=[demo-client, demo-server, demo-worker]",
	)
	startServer(t, cmd, fmt.Sprintf("http://127.0.0.1:%d/", healthPort))

	const requests = 3
	if out, err := exec.Command(demoClient(t), "--requests", fmt.Sprint(requests)).CombinedOutput(); err != nil {
		t.Fatalf("demo: %v\n%s", err, out)
	}

	checkRequestChains(t, j, requests)

	// The metrics go out every metrics_interval (5s in the example).
	want := []*regexp.Regexp{
		regexp.MustCompile(`(?m)^ipc_io_bytes_total\{[^}]*ipc_mechanism="posix_mq"[^}]*\} [1-9]`),
		regexp.MustCompile(`(?m)^ipc_io_bytes_total\{[^}]*ipc_mechanism="unix_stream"[^}]*\} [1-9]`),
		regexp.MustCompile(`(?m)^ipc_operation_duration_seconds_bucket\{[^}]*ipc_mechanism="pipe"`),
		regexp.MustCompile(`(?m)^ipc_sent_messages_total\{`),
		regexp.MustCompile(`(?m)^icptrack_events_processed_total\{[^}]*\} [1-9]`),
	}
	var body string
	deadline := time.Now().Add(30 * time.Second)
	for {
		body = scrape(t, fmt.Sprintf("http://127.0.0.1:%d/metrics", metricsPort))
		missing := 0
		for _, re := range want {
			if !re.MatchString(body) {
				missing++
			}
		}
		if missing == 0 {
			return
		}
		if time.Now().After(deadline) {
			break
		}
		time.Sleep(500 * time.Millisecond)
	}
	for _, re := range want {
		if !re.MatchString(body) {
			t.Errorf("the Collector's /metrics has no line like %s", re)
		}
	}
	t.Logf("/metrics:\n%s", body)
}

func scrape(t *testing.T, url string) string {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// An otlp-json capture line is an OTLP/HTTP logs request as it is: the
// ocb-built Collector takes it on /v1/logs and its debug exporter prints
// every record with its fields.
func TestCollectorTakesAnOTLPJSONCapture(t *testing.T) {
	bin := os.Getenv("ICPTRACK_OTELCOL")
	if bin == "" {
		bin, _ = filepath.Abs("../../bin/otelcol-icptrack")
	}
	bin = needsTool(t, "otelcol-icptrack", bin, "run make otelcol (it builds the distribution with ocb)")
	otlpPort, healthPort := freePort(t), freePort(t)
	config := filepath.Join(t.TempDir(), "collector.yaml")
	err := os.WriteFile(config, []byte(fmt.Sprintf(`receivers:
  otlp:
    protocols:
      http:
        endpoint: 127.0.0.1:%d
exporters:
  debug:
    verbosity: detailed
extensions:
  health_check:
    endpoint: 127.0.0.1:%d
service:
  extensions: [health_check]
  telemetry:
    metrics:
      level: none
  pipelines:
    logs:
      receivers: [otlp]
      exporters: [debug]
`, otlpPort, healthPort)), 0o644)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "--config", config)
	startServer(t, cmd, fmt.Sprintf("http://127.0.0.1:%d/", healthPort))
	logPath := cmd.Stderr.(*os.File).Name()

	// The capture as convert writes it, from a CSV one.
	r := run(t, "convert", "--to", "otlp-json", captureFile(t, exporter.CSV, someOps()))
	if r.code != 0 {
		t.Fatalf("convert: exit %d: %s", r.code, r.stderr)
	}
	line, _, _ := strings.Cut(r.stdout, "\n")
	resp, err := http.Post(fmt.Sprintf("http://127.0.0.1:%d/v1/logs", otlpPort), "application/json", strings.NewReader(line))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("POST /v1/logs: %s: %s", resp.Status, body)
	}

	want := []string{`"log records": 4`, "EventName: ipc.receive", "EventName: ipc.attach",
		"-> id: Str(0000000000000abc)", "-> id: Str(000000000000000c)", "-> mechanism: Str(posix_mq)",
		"-> signal: Str(SIGHUP)", "-> peers: Slice([7,11])", "-> payload: Str(MDEyMzQ1Njc4OQ==)"}
	var out []byte
	deadline := time.Now().Add(20 * time.Second)
	for {
		out, _ = os.ReadFile(logPath)
		missing := 0
		for _, w := range want {
			if !strings.Contains(string(out), w) {
				missing++
			}
		}
		if missing == 0 {
			return
		}
		if time.Now().After(deadline) {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	for _, w := range want {
		if !strings.Contains(string(out), w) {
			t.Errorf("the Collector's debug output lacks %q", w)
		}
	}
	t.Logf("Collector output:\n%s", out)
}
