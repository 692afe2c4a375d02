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
