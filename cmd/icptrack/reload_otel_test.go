package main

import (
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"

	"github.com/icptrack/icptrack/internal/ipcload"
	"github.com/icptrack/icptrack/internal/otlptest"
	"github.com/icptrack/icptrack/internal/promtest"
)

// startReloadAgent writes config into dir's icptrack.yaml and runs
// icptrack trace with it, until it traces.
func startReloadAgent(t *testing.T, dir, config string) *traceAgent {
	t.Helper()
	cfg := filepath.Join(dir, "icptrack.yaml")
	if err := os.WriteFile(cfg, []byte(config), 0o600); err != nil {
		t.Fatal(err)
	}
	a := startTraceAgent(t, cfg)
	a.waitFor("icptrack is tracing", 1)
	return a
}

// pacedPipe starts writer writing count messages of size bytes into a
// pipe, one a millisecond, read by cat.
func pacedPipe(t *testing.T, writer string, count, size int) *exec.Cmd {
	t.Helper()
	work := exec.Command("sh", "-c", fmt.Sprintf("%s 1 %d %d 1ms | cat >/dev/null", writer, count, size))
	work.Env = append(os.Environ(), ipcload.Env+"=paced-write")
	if err := work.Start(); err != nil {
		t.Fatal(err)
	}
	return work
}

// scraper scrapes one /metrics after another, the address changed as a
// reload moves it, and keeps every scrape.
type scraper struct {
	mu      sync.Mutex
	url     string
	scrapes []promtest.Scrape
	stop    chan struct{}
	done    chan struct{}
}

func startScraper(url string) *scraper {
	s := &scraper{url: url, stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(s.done)
		for {
			s.mu.Lock()
			url := s.url
			s.mu.Unlock()
			if sc, err := promtest.Get(url); err == nil {
				s.mu.Lock()
				s.scrapes = append(s.scrapes, sc)
				s.mu.Unlock()
			}
			select {
			case <-s.stop:
				return
			case <-time.After(50 * time.Millisecond):
			}
		}
	}()
	return s
}

func (s *scraper) moveTo(url string) {
	s.mu.Lock()
	s.url = url
	s.mu.Unlock()
}

func (s *scraper) finish() []promtest.Scrape {
	close(s.stop)
	<-s.done
	return s.scrapes
}

// SIGHUP moves /metrics to another port, then changes its interval and
// resource on the same port, while a workload writes into a pipe: the old
// port closes, the new one serves, no counter ever goes back between two
// scrapes, and the pipe's counters end at exactly what was written.
func TestReloadMovesPrometheusWithoutAReset(t *testing.T) {
	needsBPF(t)
	dir := t.TempDir()
	writer := selfAs(t, dir, "prom-writer")
	a := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	b := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	selectors := "trace:\n  comms: [prom-writer, cat]\n"
	agent := startReloadAgent(t, dir, selectors+"prometheus: "+a+"\n")
	scrapes := startScraper("http://" + a + "/metrics")

	const count, size = 2000, 64
	work := pacedPipe(t, writer, count, size)
	time.Sleep(700 * time.Millisecond)
	agent.reload(selectors+"prometheus: "+b+"\n", 1)
	scrapes.moveTo("http://" + b + "/metrics")
	deadline := time.Now().Add(5 * time.Second)
	for {
		if _, err := http.Get("http://" + a + "/metrics"); err != nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the old address %s still serves 5s after the reload moved /metrics", a)
		}
		time.Sleep(50 * time.Millisecond)
	}
	time.Sleep(500 * time.Millisecond)
	agent.reload(selectors+"prometheus: "+b+"\nresource_attributes:\n  deployment.environment.name: reloaded\notlp:\n  metrics_interval: 3s\n", 2)
	if err := work.Wait(); err != nil {
		t.Fatalf("the workload: %v", err)
	}

	// The last operations reach the metrics within a drain or two. Only
	// the writer's count: other cats on the host are traced too.
	pipe, mine := `ipc_mechanism="pipe"`, `process_executable_name="prom-writer"`
	var last promtest.Scrape
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		sc, err := promtest.Get("http://" + b + "/metrics")
		if err != nil {
			t.Fatalf("the new address: %v", err)
		}
		last = sc
		if sc.Sum("ipc_sent_messages_total", pipe, mine) >= count {
			break
		}
	}
	all := scrapes.finish()
	log := agent.stop()
	if got := last.Sum("ipc_sent_messages_total", pipe, mine); got != count {
		t.Errorf("ipc_sent_messages_total for the pipe %v, want exactly the %d writes", got, count)
	}
	if got := last.Sum("ipc_io_bytes_total", pipe, mine, `ipc_direction="send"`); got != count*size {
		t.Errorf("ipc_io_bytes_total sent on the pipe %v, want exactly %d", got, count*size)
	}
	if got := last.Sum("target_info", `deployment_environment_name="reloaded"`); got != 1 {
		t.Errorf("target_info lacks the reloaded resource attribute:\n%v", last)
	}
	if len(all) < 10 {
		t.Fatalf("only %d scrapes succeeded through the reloads:\n%s", len(all), log)
	}
	all = append(all, last)
	for i := 1; i < len(all); i++ {
		if d := all[i-1].Decreased(all[i]); len(d) > 0 {
			t.Errorf("scrape %d has counters lower than the one before, which Prometheus reads as a restart: %v", i, d)
		}
	}
	if strings.Contains(log, "take effect only when icptrack restarts") {
		t.Errorf("a reload named a metrics setting as needing a restart:\n%s", log)
	}
	if !strings.Contains(log, "serving Prometheus metrics") || !strings.Contains(log, "http://"+b+"/metrics") {
		t.Errorf("the log does not say where /metrics moved:\n%s", log)
	}
}

// With OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE=delta, SIGHUP
// sends the OTLP metrics to another endpoint while a workload writes into
// a pipe: each endpoint gets deltas, chained from one to the next, and
// together they add up to exactly the writes, none lost and none twice.
func TestReloadMovesOTLPDeltaMetrics(t *testing.T) {
	needsBPF(t)
	t.Setenv("OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE", "delta")
	a, b := otlptest.Start(t), otlptest.Start(t)
	dir := t.TempDir()
	writer := selfAs(t, dir, "delta-writer")
	otlp := func(endpoint string) string {
		return "trace:\n  comms: [delta-writer, cat]\notlp:\n  endpoint: " + endpoint +
			"\n  protocol: http/protobuf\n  signals: [metrics]\n  metrics_interval: 200ms\n"
	}
	began := time.Now()
	agent := startReloadAgent(t, dir, otlp(a.URL))
	const count, size = 1500, 48
	work := pacedPipe(t, writer, count, size)
	time.Sleep(600 * time.Millisecond)
	agent.reload(otlp(b.URL), 1)
	if err := work.Wait(); err != nil {
		t.Fatalf("the workload: %v", err)
	}
	mine := []attribute.KeyValue{attribute.String("ipc.mechanism", "pipe"), attribute.String("process.executable.name", "delta-writer")}
	// The last operations reach the metrics within a drain or two.
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		if otlptest.Total(a.Points("ipc.sent.messages", mine...))+otlptest.Total(b.Points("ipc.sent.messages", mine...)) >= count {
			break
		}
	}
	log := agent.stop()
	old, cur := a.Points("ipc.sent.messages", mine...), b.Points("ipc.sent.messages", mine...)
	if len(old) == 0 || len(cur) == 0 {
		t.Fatalf("ipc.sent.messages: %d points before the reload, %d after; want some at each endpoint\n%s", len(old), len(cur), log)
	}
	all := append(append([]otlptest.Point{}, old...), cur...)
	otlptest.SortByTime(all)
	if got := otlptest.Total(all); got != count {
		t.Errorf("ipc.sent.messages deltas add up to %v over both endpoints, want exactly the %d writes", got, count)
	}
	if br := otlptest.ChainBreaks(all, began); len(br) > 0 {
		t.Errorf("ipc.sent.messages across the reload: %v", br)
	}
	sent := append(a.Points("ipc.io", append(mine, attribute.String("ipc.direction", "send"))...),
		b.Points("ipc.io", append(mine, attribute.String("ipc.direction", "send"))...)...)
	if got := otlptest.Total(sent); got != count*size {
		t.Errorf("ipc.io sent deltas add up to %v, want exactly %d", got, count*size)
	}
}

// Prometheus asked for by a reload where there was none counts every
// operation from then on.
func TestReloadAddsPrometheus(t *testing.T) {
	needsBPF(t)
	dir := t.TempDir()
	writer := selfAs(t, dir, "added-writer")
	a := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	selectors := "trace:\n  comms: [added-writer, cat]\n"
	agent := startReloadAgent(t, dir, selectors)
	agent.reload(selectors+"prometheus: "+a+"\n", 1)
	const count, size = 300, 16
	if err := pacedPipe(t, writer, count, size).Wait(); err != nil {
		t.Fatalf("the workload: %v", err)
	}
	var sent float64
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline) && sent < count; time.Sleep(100 * time.Millisecond) {
		sc, err := promtest.Get("http://" + a + "/metrics")
		if err != nil {
			t.Fatalf("/metrics added by the reload: %v", err)
		}
		sent = sc.Sum("ipc_sent_messages_total", `ipc_mechanism="pipe"`, `process_executable_name="added-writer"`)
	}
	log := agent.stop()
	if sent != count {
		t.Errorf("ipc_sent_messages_total for the pipe %v, want the %d writes made after the reload\n%s", sent, count, log)
	}
}

// A Prometheus port that cannot be bound, or an OTLP endpoint that is not
// a URL, is logged, and icptrack keeps serving where it did.
func TestReloadKeepsPrometheusOnAMistake(t *testing.T) {
	needsBPF(t)
	dir := t.TempDir()
	a := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	selectors := "trace:\n  comms: [nothing-by-thi]\n"
	agent := startReloadAgent(t, dir, selectors+"prometheus: "+a+"\n")
	agent.write(selectors + "prometheus: " + taken.Addr().String() + "\n")
	if err := agent.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	agent.waitFor("keeps running as it was", 1)
	agent.write(selectors + "prometheus: " + a + "\notlp:\n  endpoint: \"http://:4318\"\n")
	if err := agent.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	agent.waitFor("keeps running as it was", 2)
	if _, err := promtest.Get("http://" + a + "/metrics"); err != nil {
		t.Errorf("/metrics after the failed reloads: %v", err)
	}
	log := agent.stop()
	if !strings.Contains(log, "choose a free host:port") {
		t.Errorf("the log does not say the port was taken:\n%s", log)
	}
	if strings.Contains(log, "reloaded the configuration") {
		t.Errorf("a reload with a mistake was applied:\n%s", log)
	}
}

// SIGHUP sends the spans elsewhere while a workload writes into a pipe:
// first to Jaeger over gRPC as service before-…, then to an endpoint where
// nothing listens as lost-…, then to the same Jaeger over HTTP as
// after-…. Jaeger holds before-… and after-… and no lost-…; every span
// the summary says was sent is in Jaeger, what went nowhere is counted
// dropped, in the summary and in the self-metrics alike, and sent and
// dropped add up to every operation.
func TestReloadSendsSpansElsewhere(t *testing.T) {
	j := startJaeger(t)
	dir := t.TempDir()
	writer := selfAs(t, dir, "span-writer")
	events := filepath.Join(dir, "events.jsonl")
	prom := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	dead := fmt.Sprintf("http://127.0.0.1:%d", freePort(t))
	base := "trace:\n  comms: [span-writer, cat]\nevents: " + events + "\nprometheus: " + prom + "\n"
	otlp := func(endpoint, protocol, service string) string {
		return base + "service_name: \"" + service + "-{comm}\"\notlp:\n  endpoint: " + endpoint + "\n  protocol: " + protocol +
			"\n  signals: [traces]\n"
	}
	agent := startReloadAgent(t, dir, otlp(j.otlpGRPC, "grpc", "before"))
	const count = 1500
	work := pacedPipe(t, writer, count, 32)
	time.Sleep(600 * time.Millisecond)
	agent.reload(otlp(dead, "http/protobuf", "lost"), 1)
	time.Sleep(400 * time.Millisecond)
	agent.reload(otlp(j.otlpHTTP, "http/protobuf", "after"), 2)
	if err := work.Wait(); err != nil {
		t.Fatalf("the workload: %v", err)
	}

	// The sender that went nowhere is shut down in the background: wait
	// until the self-metric has its drops and holds still.
	var dropped float64
	for deadline, prev := time.Now().Add(10*time.Second), -1.0; time.Now().Before(deadline); time.Sleep(300 * time.Millisecond) {
		sc, err := promtest.Get("http://" + prom + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		dropped = sc.Sum("icptrack_events_dropped_total", `ipc_drop_reason="export_queue"`)
		if dropped > 0 && dropped == prev {
			break
		}
		prev = dropped
	}
	log := agent.stop()
	m := regexp.MustCompile(`OTLP (\S+) \(http/protobuf\): (\d+) spans sent, (\d+) dropped`).FindStringSubmatch(log)
	if m == nil {
		t.Fatalf("no OTLP line naming the last endpoint in the summary:\n%s", log)
	}
	sent, _ := strconv.Atoi(m[2])
	lost, _ := strconv.Atoi(m[3])
	if lost == 0 || float64(lost) != dropped {
		t.Errorf("the summary says %d spans dropped, the self-metric %v: want the same, above 0 (the spans sent nowhere)", lost, dropped)
	}
	if ops := len(readEvents(t, events)); sent+lost != ops {
		t.Errorf("%d spans sent and %d dropped, want the %d operations of the event log between them", sent, lost, ops)
	}

	services := j.services(t)
	for _, want := range []string{"before-span-writer", "after-span-writer"} {
		if !slices.Contains(services, want) {
			t.Errorf("Jaeger has no service %s: %v", want, services)
		}
	}
	for _, s := range services {
		if strings.HasPrefix(s, "lost-") {
			t.Errorf("Jaeger has %s, whose spans went where nothing listens", s)
		}
	}
	// Jaeger stores what it accepted asynchronously: wait for all of it.
	held := 0
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(300 * time.Millisecond) {
		held = 0
		for _, s := range services {
			for _, tr := range j.traces(t, s) {
				for _, sp := range tr.Spans {
					if tr.Processes[sp.ProcessID].ServiceName == s {
						held++
					}
				}
			}
		}
		if held == sent {
			break
		}
	}
	if held != sent {
		t.Errorf("Jaeger holds %d spans, the summary says %d were sent", held, sent)
	}
}
