package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/icptrack/icptrack/exporter"
	"github.com/icptrack/icptrack/flow"
	"github.com/icptrack/icptrack/store"
)

// freeAddr is a loopback address with a port nobody listens on.
func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// startAPIServer runs icptrack with args in the background and waits until
// its API at addr is ready; it is stopped with SIGTERM at the end.
func startAPIServer(t *testing.T, addr string, args ...string) *apiProcess {
	t.Helper()
	return startAPIServerAt(t, "http://"+addr, http.DefaultClient, args...)
}

// apiProcess is an icptrack serving the API, and what it has written to
// standard error so far.
type apiProcess struct {
	cmd    *exec.Cmd
	stderr *lockedBuffer
}

// lockedBuffer is a strings.Builder that the process writes to while
// the test reads it.
type lockedBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// startAPIServerAt is startAPIServer for an API at base (http:// or
// https://), asked with client.
func startAPIServerAt(t *testing.T, base string, client *http.Client, args ...string) *apiProcess {
	t.Helper()
	cmd := exec.Command(binary, args...)
	p := &apiProcess{cmd: cmd, stderr: &lockedBuffer{}}
	cmd.Stderr = p.stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			t.Errorf("icptrack %v did not stop on SIGTERM", args)
		}
	})
	for deadline := time.Now().Add(20 * time.Second); ; {
		resp, err := client.Get(base + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return p
			}
		}
		select {
		case err := <-done:
			t.Fatalf("icptrack %v ended before its API was ready: %v\n%s", args, err, p.stderr)
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("icptrack %v: the API at %s was not ready in 20s\n%s", args, base, p.stderr)
		}
	}
}

func getJSON(t *testing.T, u string, v any) {
	t.Helper()
	resp, err := http.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		t.Fatalf("GET %s: %s %s", u, resp.Status, body)
	}
	if err := json.Unmarshal(body, v); err != nil {
		t.Fatalf("GET %s: %v: %s", u, err, body)
	}
}

func TestServeAnswersQueriesFromAStore(t *testing.T) {
	dir := t.TempDir()
	w, err := store.Open(dir, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	base := time.Now().Add(-time.Hour).Truncate(time.Second)
	var want []string
	for i := range 500 {
		op := &flow.Operation{ID: flow.OpID(i + 1), Time: base.Add(time.Duration(i) * time.Millisecond), PID: uint32(10 + i%3), Comm: "w",
			Mechanism: flow.Pipe, Op: flow.Send, Syscall: "write", Channel: "pipe:7", Bytes: int64(i), QueueDepth: -1, Peer: flow.Peer{PID: 20, Comm: "r"}}
		if err := w.Append(op); err != nil {
			t.Fatal(err)
		}
		if op.PID == 11 {
			want = append(want, string(exporter.AppendJSON(nil, op)))
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	addr := freeAddr(t)
	p := startAPIServer(t, addr, "serve", "--store", dir, "--api", addr)
	if !strings.Contains(p.stderr.String(), "no credentials, so to this host only") {
		t.Errorf("serve without credentials does not say it serves this host only:\n%s", p.stderr)
	}
	var page struct {
		Operations []json.RawMessage `json:"operations"`
		Window     struct{ Source string }
	}
	getJSON(t, "http://"+addr+"/api/v1/operations?limit=1000&filter="+url.QueryEscape("pid == 11"), &page)
	if page.Window.Source != "store" || len(page.Operations) != len(want) {
		t.Fatalf("%d operations from %q, want %d from the store", len(page.Operations), page.Window.Source, len(want))
	}
	for i := range want {
		if string(page.Operations[i]) != want[i] {
			t.Fatalf("operation %d: %s, want %s", i, page.Operations[i], want[i])
		}
	}
	var g struct{ Edges []struct{ ID string } }
	getJSON(t, "http://"+addr+"/api/v1/graph?window=1m&at="+url.QueryEscape(base.Add(time.Second).Format(time.RFC3339Nano)), &g)
	if len(g.Edges) != 3 || g.Edges[0].ID != "pipe:7|10>20" {
		t.Errorf("edges %+v, want pipe:7 from 10, 11 and 12 to 20", g.Edges)
	}
}

// run --api serves what it captures while the command runs: the pipe
// of a shell's pipeline, as operations and as an edge of the graph.
func TestRunServesItsCaptureOverTheAPI(t *testing.T) {
	needsBPF(t)
	addr := freeAddr(t)
	startAPIServer(t, addr, "run", "--api", addr, "--", "sh", "-c", "printf hello-api | cat >/dev/null; exec sleep 30")
	var page struct {
		Operations []struct {
			Comm, Op, Mechanism string
			Bytes               int64
		} `json:"operations"`
	}
	var g struct {
		Edges []struct{ Mechanism, Source, Target string }
	}
	filter := url.QueryEscape(`mechanism == pipe and bytes == 9`)
	for deadline := time.Now().Add(15 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		getJSON(t, "http://"+addr+"/api/v1/operations?filter="+filter, &page)
		getJSON(t, "http://"+addr+"/api/v1/graph?filter="+filter, &g)
		if len(page.Operations) >= 2 && len(g.Edges) >= 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after 15s: operations %+v, edges %+v; want the pipe's write and read, and its edge", page.Operations, g.Edges)
		}
	}
	ops := fmt.Sprint(page.Operations)
	if !strings.Contains(ops, "send") || !strings.Contains(ops, "receive") {
		t.Errorf("operations %s, want the write (send) and the read (receive)", ops)
	}
	if e := g.Edges[0]; e.Mechanism != "pipe" || e.Source == e.Target {
		t.Errorf("edge %+v, want a pipe between two processes", e)
	}
	// Unfiltered, the graph is the live aggregator's: the same edge.
	var all struct {
		Edges []struct{ Mechanism, Source, Target string }
	}
	getJSON(t, "http://"+addr+"/api/v1/graph", &all)
	found := false
	for _, e := range all.Edges {
		found = found || (e.Mechanism == "pipe" && e.Source == g.Edges[0].Source && e.Target == g.Edges[0].Target)
	}
	if !found {
		t.Errorf("the live graph's edges %+v lack the pipe %+v", all.Edges, g.Edges[0])
	}
	// Without credentials every request may see the status's details.
	var st struct {
		Kernel     string
		Mechanisms []struct {
			Name string
			On   bool
		}
		Window struct{ Source string }
	}
	getJSON(t, "http://"+addr+"/api/v1/status", &st)
	pipeOn := false
	for _, m := range st.Mechanisms {
		pipeOn = pipeOn || (m.Name == "pipe" && m.On)
	}
	if st.Kernel == "" || !pipeOn || st.Window.Source != "memory" {
		t.Errorf("status %+v, want the kernel, pipe on, and the memory window", st)
	}
}
