package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// End-to-end tests: the real demo under icptrack, exporting to a real
// Jaeger v2 (built by make tools into bin/jaeger, or $ICPTRACK_JAEGER) and
// scraped by a real Prometheus (the Debian package).

// needsTool finds a program the end-to-end tests need. In CI a missing
// one fails the test: skipping would hide a broken product.
func needsTool(t *testing.T, what, path, install string) string {
	t.Helper()
	needsBPF(t)
	if p, err := exec.LookPath(path); err == nil {
		return p
	}
	if os.Getenv("CI") == "true" {
		t.Fatalf("%s is not installed (%s): %s", what, path, install)
	}
	t.Skipf("%s is not installed (%s): %s", what, path, install)
	return ""
}

var (
	demoOnce sync.Once
	demoPath string
	demoErr  error
)

// demoClient builds examples/demo as demo-client, with demo-server and
// demo-worker hard links beside it.
func demoClient(t *testing.T) string {
	t.Helper()
	demoOnce.Do(func() {
		dir := filepath.Join(filepath.Dir(binary), "demo")
		if demoErr = os.MkdirAll(dir, 0o755); demoErr != nil {
			return
		}
		demoPath = filepath.Join(dir, "demo-client")
		if out, err := exec.Command("go", "build", "-o", demoPath, "../../examples/demo").CombinedOutput(); err != nil {
			demoErr = fmt.Errorf("build the demo: %v\n%s", err, out)
			return
		}
		for _, part := range []string{"demo-server", "demo-worker"} {
			if demoErr = os.Link(demoPath, filepath.Join(dir, part)); demoErr != nil {
				return
			}
		}
	})
	if demoErr != nil {
		t.Fatal(demoErr)
	}
	return demoPath
}

func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// startServer runs a server process for the test and waits until url
// answers 200.
func startServer(t *testing.T, cmd *exec.Cmd, ready string) {
	t.Helper()
	log, err := os.Create(filepath.Join(t.TempDir(), "server.log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		log.Close()
	})
	deadline := time.Now().Add(60 * time.Second)
	for {
		resp, err := http.Get(ready)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		if time.Now().After(deadline) {
			out, _ := os.ReadFile(log.Name())
			t.Fatalf("%s did not become ready at %s: %v\n%s", cmd.Path, ready, err, out)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

type jaegerServer struct {
	otlpGRPC, otlpHTTP, query string
	pid                       int
}

func startJaeger(t *testing.T) jaegerServer {
	t.Helper()
	bin := os.Getenv("ICPTRACK_JAEGER")
	if bin == "" {
		bin, _ = filepath.Abs("../../bin/jaeger")
	}
	bin = needsTool(t, "Jaeger", bin, "run make tools (it builds Jaeger v2 from tools/jaeger)")
	ports := map[string]int{}
	for _, p := range []string{"JAEGER_QUERY_PORT", "JAEGER_QUERY_GRPC_PORT", "JAEGER_OTLP_GRPC_PORT", "JAEGER_OTLP_HTTP_PORT"} {
		ports[p] = freePort(t)
	}
	cmd := exec.Command(bin, "--config", "testdata/jaeger.yaml")
	cmd.Env = append(os.Environ(), "OTEL_TRACES_EXPORTER=none")
	for k, v := range ports {
		cmd.Env = append(cmd.Env, k+"="+strconv.Itoa(v))
	}
	j := jaegerServer{
		otlpGRPC: fmt.Sprintf("http://127.0.0.1:%d", ports["JAEGER_OTLP_GRPC_PORT"]),
		otlpHTTP: fmt.Sprintf("http://127.0.0.1:%d", ports["JAEGER_OTLP_HTTP_PORT"]),
		query:    fmt.Sprintf("http://127.0.0.1:%d", ports["JAEGER_QUERY_PORT"]),
	}
	startServer(t, cmd, j.query+"/api/services")
	j.pid = cmd.Process.Pid
	return j
}

// Jaeger's view of a trace (its HTTP API's JSON).
type jaegerTrace struct {
	TraceID string `json:"traceID"`
	Spans   []struct {
		SpanID        string `json:"spanID"`
		OperationName string `json:"operationName"`
		ProcessID     string `json:"processID"`
		References    []struct {
			RefType string `json:"refType"`
			SpanID  string `json:"spanID"`
			TraceID string `json:"traceID"`
		} `json:"references"`
		Tags []struct {
			Key   string `json:"key"`
			Value any    `json:"value"`
		} `json:"tags"`
	} `json:"spans"`
	Processes map[string]struct {
		ServiceName string `json:"serviceName"`
	} `json:"processes"`
}

func (j jaegerServer) traces(t *testing.T, service string) []jaegerTrace {
	t.Helper()
	var traces []jaegerTrace
	j.get(t, "/api/traces?limit=1000&lookback=1h&service="+url.QueryEscape(service), &traces)
	return traces
}

// services are the services Jaeger holds spans of.
func (j jaegerServer) services(t *testing.T) []string {
	t.Helper()
	var services []string
	j.get(t, "/api/services", &services)
	return services
}

// get decodes the data of Jaeger's answer to path into data.
func (j jaegerServer) get(t *testing.T, path string, data any) {
	t.Helper()
	resp, err := http.Get(j.query + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body := struct {
		Data any `json:"data"`
	}{data}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		t.Fatal(err)
	}
}

// requestChain is what one demo request is in Jaeger: from the root down,
// each span's service, operation and kind.
var requestChain = []string{
	"demo-client write {sock} producer",
	"demo-server read {sock} consumer",
	"demo-server write pipe producer",
	"demo-worker read pipe consumer",
	"demo-worker mq_timedsend {mq} producer",
	"demo-server mq_timedreceive {mq} consumer",
	"demo-server write {sock} producer",
	"demo-client read {sock} consumer",
}

func TestJaegerShowsEachRequestAsOneTraceAcrossThreeServices(t *testing.T) {
	for _, proto := range []string{"grpc", "http/protobuf"} {
		t.Run(strings.ReplaceAll(proto, "/", "-"), func(t *testing.T) {
			j := startJaeger(t)
			endpoint := j.otlpGRPC
			if proto != "grpc" {
				endpoint = j.otlpHTTP
			}
			events := filepath.Join(t.TempDir(), "events.jsonl")
			const requests = 3
			r := run(t, "run", "--otlp-endpoint", endpoint, "--otlp-protocol", proto, "--otlp-signals", "traces",
				"--events", events, "--", demoClient(t), "--requests", strconv.Itoa(requests))
			if r.code != 0 || strings.Count(r.stdout, " -> ") != requests {
				t.Fatalf("exit %d, stdout %q, stderr %s", r.code, r.stdout, r.stderr)
			}
			n := len(readEvents(t, events))
			if want := fmt.Sprintf("%d spans sent, 0 dropped", n); !strings.Contains(r.stderr, want) {
				t.Fatalf("summary does not say %q:\n%s", want, r.stderr)
			}

			checkRequestChains(t, j, requests)
		})
	}
}

// With --trace-sample-ratio 0.5, Jaeger holds about half of the requests,
// each of them whole (client, server and worker spans of one request get
// one decision), with the threshold in the tracestate; the event log and
// the summary still count every operation, and sent + sampled out is all
// of them.
func TestJaegerShowsASampleOfWholeRequests(t *testing.T) {
	j := startJaeger(t)
	events := filepath.Join(t.TempDir(), "events.jsonl")
	const requests = 24
	r := run(t, "run", "--otlp-endpoint", j.otlpGRPC, "--otlp-protocol", "grpc", "--otlp-signals", "traces", "--trace-sample-ratio", "0.5",
		"--events", events, "--", demoClient(t), "--requests", strconv.Itoa(requests))
	if r.code != 0 || strings.Count(r.stdout, " -> ") != requests {
		t.Fatalf("exit %d, stdout %q, stderr %s", r.code, r.stdout, r.stderr)
	}
	n := len(readEvents(t, events))
	m := regexp.MustCompile(`(\d+) spans sent, 0 dropped, .*; (\d+) operations sampled out`).FindStringSubmatch(r.stderr)
	if m == nil {
		t.Fatalf("no OTLP line with sampled-out operations in the summary:\n%s", r.stderr)
	}
	sent, _ := strconv.Atoi(m[1])
	out, _ := strconv.Atoi(m[2])
	if sent+out != n || sent == 0 || out == 0 {
		t.Fatalf("%d spans sent + %d sampled out, want both above 0 and %d (the event log's operations) together", sent, out, n)
	}

	// Jaeger stores asynchronously: wait until what it holds stops growing.
	var chains [][]string
	var traces []jaegerTrace
	for deadline, last, stable := time.Now().Add(30*time.Second), -1, 0; time.Now().Before(deadline) && stable < 5; {
		time.Sleep(200 * time.Millisecond)
		traces = j.traces(t, "demo-client")
		chains = chainsIn(traces)
		if len(chains) == last {
			stable++
		} else {
			last, stable = len(chains), 0
		}
	}
	if len(chains) == 0 || len(chains) == requests {
		t.Fatalf("Jaeger holds %d of %d requests at ratio 0.5", len(chains), requests)
	}
	for i, chain := range chains {
		if !slices.Equal(chain, requestChain) {
			t.Errorf("sampled trace %d is not a whole request:\n  %s", i, strings.Join(chain, "\n  "))
		}
	}
	states := map[string]int{}
	for _, tr := range traces {
		for _, s := range tr.Spans {
			for _, tag := range s.Tags {
				if tag.Key == "w3c.tracestate" {
					states[fmt.Sprint(tag.Value)]++
				}
			}
		}
	}
	if len(states) != 1 || states["ot=th:8"] == 0 {
		t.Errorf("tracestates in Jaeger %v, want ot=th:8 on every span", states)
	}
}

// checkRequestChains checks that Jaeger holds one trace per demo request,
// each the whole requestChain. Jaeger stores what it accepted
// asynchronously: it waits until every chain is there, or long enough to
// be sure it never will be.
func checkRequestChains(t *testing.T, j jaegerServer, requests int) {
	t.Helper()
	var chains [][]string
	deadline := time.Now().Add(30 * time.Second)
	for {
		chains = chainsIn(j.traces(t, "demo-client"))
		complete := len(chains) == requests
		for _, c := range chains {
			complete = complete && slices.Equal(c, requestChain)
		}
		if complete || time.Now().After(deadline) {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	if len(chains) != requests {
		t.Fatalf("Jaeger has %d traces that start with a client request, want %d", len(chains), requests)
	}
	for i, chain := range chains {
		if !slices.Equal(chain, requestChain) {
			t.Errorf("trace %d, from the client's request to its answer:\n  %s\nwant\n  %s",
				i, strings.Join(chain, "\n  "), strings.Join(requestChain, "\n  "))
		}
	}
}

var (
	sockPath = regexp.MustCompile(`/\S*/server\.sock`)
	mqName   = regexp.MustCompile(`/icptrack-demo-\d+`)
)

// chainsIn finds, in each trace, the client's read of an answer and
// walks its parents up to the root.
func chainsIn(traces []jaegerTrace) [][]string {
	var chains [][]string
	for _, tr := range traces {
		type node struct {
			name, parent string
		}
		spans := map[string]node{}
		var answer string
		services := map[string]bool{}
		for _, s := range tr.Spans {
			kind := ""
			for _, tag := range s.Tags {
				if tag.Key == "span.kind" {
					kind = fmt.Sprint(tag.Value)
				}
			}
			svc := tr.Processes[s.ProcessID].ServiceName
			services[svc] = true
			name := svc + " " + mqName.ReplaceAllString(sockPath.ReplaceAllString(s.OperationName, "{sock}"), "{mq}") + " " + kind
			parent := ""
			for _, ref := range s.References {
				if ref.RefType == "CHILD_OF" && ref.TraceID == tr.TraceID {
					parent = ref.SpanID
				}
			}
			spans[s.SpanID] = node{name, parent}
			// The answer, not a would-block read between requests.
			if name == requestChain[len(requestChain)-1] && parent != "" {
				answer = s.SpanID
			}
		}
		if answer == "" {
			continue
		}
		var chain []string
		for id := answer; id != "" && len(chain) < 20; id = spans[id].parent {
			n, ok := spans[id]
			if !ok {
				chain = append(chain, "<missing parent "+id+">")
				break
			}
			chain = append(chain, n.name)
		}
		slices.Reverse(chain)
		// The services are in the chain; a trace with others in it (a
		// later request stitched on) is wrong too.
		if len(services) != 3 {
			chain = append(chain, fmt.Sprintf("<%d services in the trace>", len(services)))
		}
		chains = append(chains, chain)
	}
	return chains
}

func TestPrometheusScrapesTheAgent(t *testing.T) {
	prom := needsTool(t, "Prometheus", "prometheus", "apt-get install prometheus")
	promtool := needsTool(t, "promtool", "promtool", "apt-get install prometheus")
	agent, web := freePort(t), freePort(t)
	dir := t.TempDir()
	cfg := filepath.Join(dir, "prometheus.yml")
	if err := os.WriteFile(cfg, []byte(fmt.Sprintf(`global:
  scrape_interval: 1s
scrape_configs:
  - job_name: icptrack
    static_configs:
      - targets: ["127.0.0.1:%d"]
`, agent)), 0o644); err != nil {
		t.Fatal(err)
	}
	promURL := fmt.Sprintf("http://127.0.0.1:%d", web)
	startServer(t, exec.Command(prom, "--config.file", cfg, "--storage.tsdb.path", filepath.Join(dir, "data"),
		"--web.listen-address", fmt.Sprintf("127.0.0.1:%d", web)), promURL+"/-/ready")
	// Prometheus applies its targets a few seconds after it starts: wait
	// for its first scrape (which fails: the agent is not there yet).
	waitFirstScrape(t, promURL)

	cmd := exec.Command(binary, "run", "--prometheus", fmt.Sprintf("127.0.0.1:%d", agent), "--",
		demoClient(t), "--requests", "40", "--interval", "100ms")
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill() }) // when the test failed before it exited
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	// /metrics is served only while the agent runs: take it once it
	// counts the demo's operations, and lint it as Prometheus would.
	exposition := scrapeOnceCounting(t, fmt.Sprintf("http://127.0.0.1:%d/metrics", agent), exited)
	if err := <-exited; err != nil {
		t.Fatalf("icptrack run: %v: %s", err, stderr.String())
	}
	check := exec.Command(promtool, "check", "metrics")
	check.Stdin = strings.NewReader(exposition)
	if out, err := check.CombinedOutput(); err != nil || len(strings.TrimSpace(string(out))) > 0 {
		t.Errorf("promtool check metrics finds fault with the agent's /metrics (%v):\n%s", err, out)
	}
	// The agent has gone: look back over what Prometheus scraped.
	for _, metric := range []string{"ipc_io_bytes_total", "ipc_operation_duration_seconds_count"} {
		got := promQuery(t, promURL, "sum by (ipc_mechanism) (last_over_time("+metric+"[10m]))")
		for _, mech := range []string{"pipe", "unix_stream", "posix_mq"} {
			if got[mech] <= 0 {
				t.Errorf("%s for %s = %v; all: %v", metric, mech, got[mech], got)
			}
		}
	}
	if got := promQuery(t, promURL, "sum by (ipc_mechanism) (last_over_time(ipc_operation_duration_seconds_bucket{le=\"5\"}[10m]))"); got["posix_mq"] <= 0 {
		t.Errorf("no duration histogram buckets for posix_mq: %v", got)
	}
	if got := promQuery(t, promURL, "sum by (ipc_drop_reason) (last_over_time(icptrack_events_dropped_total[10m]))"); len(got) != 2 {
		t.Errorf("icptrack_events_dropped_total by reason: %v, want ring_buffer and export_queue", got)
	}
	// Each output of the pipeline counts what it wrote: the summary and
	// the metrics took every operation, and dropped none.
	written := promQuery(t, promURL, "max by (ipc_sink_name) (last_over_time(icptrack_sink_written_total[10m]))")
	dropped := promQuery(t, promURL, "max by (ipc_sink_name) (last_over_time(icptrack_sink_dropped_total[10m]))")
	for _, sink := range []string{"summary", "metrics"} {
		if written[sink] <= 0 || written[sink] != written["summary"] || dropped[sink] != 0 {
			t.Errorf("icptrack_sink_written_total %v, icptrack_sink_dropped_total %v: want summary and metrics equal and above 0, none dropped", written, dropped)
		}
	}
}

// scrapeOnceCounting fetches the agent's /metrics until it counts IPC
// (ipc_io_bytes_total has a series) and returns that exposition. It fails
// the test if the agent exits first; exited gets its result back.
func scrapeOnceCounting(t *testing.T, metricsURL string, exited chan error) string {
	t.Helper()
	deadline := time.After(60 * time.Second)
	for {
		if resp, err := http.Get(metricsURL); err == nil {
			body, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			if err == nil && resp.StatusCode == http.StatusOK && strings.Contains(string(body), "\nipc_io_bytes_total{") {
				return string(body)
			}
		}
		select {
		case err := <-exited:
			exited <- err
			t.Fatalf("the agent exited (%v) before %s counted any IPC", err, metricsURL)
		case <-deadline:
			t.Fatalf("%s never counted any IPC", metricsURL)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func waitFirstScrape(t *testing.T, base string) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		resp, err := http.Get(base + "/api/v1/targets")
		if err == nil {
			var body struct {
				Data struct {
					ActiveTargets []struct {
						LastScrape time.Time `json:"lastScrape"`
					} `json:"activeTargets"`
				} `json:"data"`
			}
			_ = json.NewDecoder(resp.Body).Decode(&body)
			resp.Body.Close()
			if ts := body.Data.ActiveTargets; len(ts) > 0 && ts[0].LastScrape.Year() > 2000 {
				return
			}
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Fatal("Prometheus never scraped its target")
}

// promQuery runs an instant query and returns each series' value by the
// value of its one label.
func promQuery(t *testing.T, base, q string) map[string]float64 {
	t.Helper()
	resp, err := http.Get(base + "/api/v1/query?query=" + url.QueryEscape(q))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body struct {
		Status string `json:"status"`
		Error  string `json:"error"`
		Data   struct {
			Result []struct {
				Metric map[string]string `json:"metric"`
				Value  [2]any            `json:"value"`
			} `json:"result"`
		} `json:"data"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		t.Fatal(err)
	}
	if body.Status != "success" {
		t.Fatalf("query %s: %s", q, body.Error)
	}
	out := map[string]float64{}
	for _, s := range body.Data.Result {
		label := ""
		for _, v := range s.Metric {
			label = v
		}
		f, _ := strconv.ParseFloat(fmt.Sprint(s.Value[1]), 64)
		out[label] = f
	}
	return out
}

// A backend that is down must not slow capture: every operation is still
// captured and logged, and the spans that could not go are counted.
func TestDeadBackendDoesNotStallCapture(t *testing.T) {
	needsBPF(t)
	dead := fmt.Sprintf("http://127.0.0.1:%d", freePort(t)) // nothing listens there
	events := filepath.Join(t.TempDir(), "events.jsonl")
	r := run(t, "run", "--otlp-endpoint", dead, "--otlp-protocol", "grpc", "--events", events, "--",
		demoClient(t), "--requests", "20", "--interval", "20ms")
	if r.code != 0 || strings.Count(r.stdout, " -> ") != 20 {
		t.Fatalf("exit %d, stdout %q, stderr %s", r.code, r.stdout, r.stderr)
	}
	if !strings.Contains(r.stderr, "icptrack: 0 events dropped") {
		t.Errorf("capture lost events with the backend down:\n%s", r.stderr)
	}
	n := len(readEvents(t, events))
	m := regexp.MustCompile(`(\d+) spans sent, (\d+) dropped, (\d+) failed exports, (\d+) retries`).FindStringSubmatch(r.stderr)
	if m == nil {
		t.Fatalf("no OTLP line in the summary:\n%s", r.stderr)
	}
	sent, dropped, failed := m[1], m[2], m[3]
	if sent != "0" || dropped != strconv.Itoa(n) || failed == "0" {
		t.Errorf("OTLP: %s sent, %s dropped, %s failed exports; want 0 sent, all %d dropped, failures counted", sent, dropped, failed, n)
	}
	if !strings.Contains(r.stderr, "WARN") || !strings.Contains(r.stderr, dead[len("http://"):]) {
		t.Errorf("no warning naming the endpoint:\n%s", r.stderr)
	}
}

// Tracing the backend icptrack exports to must not feed the exports back
// into what it captures.
func TestOwnExportsAreNotTraced(t *testing.T) {
	j := startJaeger(t)
	events := filepath.Join(t.TempDir(), "events.jsonl")
	trace := exec.Command(binary, "trace", "--pid", strconv.Itoa(j.pid), "--comm", "demo-client,demo-server,demo-worker",
		"--duration", "4s", "--otlp-endpoint", j.otlpGRPC, "--otlp-protocol", "grpc", "--otlp-signals", "traces", "--events", events)
	var stderr strings.Builder
	trace.Stderr = &stderr
	if err := trace.Start(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(time.Second) // attached
	if out, err := exec.Command(demoClient(t), "--requests", "20", "--interval", "50ms").CombinedOutput(); err != nil {
		t.Fatalf("demo: %v\n%s", err, out)
	}
	if err := trace.Wait(); err != nil {
		t.Fatalf("trace: %v\n%s", err, stderr.String())
	}
	u, _ := url.Parse(j.otlpGRPC)
	otlpPort := ":" + u.Port() + "->"
	jaegerOps := 0
	for _, ev := range readEvents(t, events) {
		if int(ev["pid"].(float64)) != j.pid {
			continue
		}
		jaegerOps++
		if ep, _ := ev["endpoint"].(string); strings.Contains(ep, otlpPort) {
			t.Errorf("Jaeger's side of icptrack's own export was traced: %v", ev)
		}
	}
	m := regexp.MustCompile(`(\d+) operations of traced processes with icptrack's own exports left out`).FindStringSubmatch(stderr.String())
	if m == nil || m[1] == "0" {
		t.Errorf("no own operations left out (%d Jaeger operations seen):\n%s", jaegerOps, stderr.String())
	}
	if !strings.Contains(stderr.String(), "0 dropped") {
		t.Errorf("spans dropped:\n%s", stderr.String())
	}
}
