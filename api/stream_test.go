package api

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"
)

// sseEvent is one event read from a stream.
type sseEvent struct{ name, data string }

// openStream connects to an SSE route and returns its events as they come.
func openStream(t *testing.T, srv *httptest.Server, path string) <-chan sseEvent {
	t.Helper()
	req, _ := http.NewRequest("GET", srv.URL+path, nil)
	req.Header.Set("Authorization", bearer(ScopeRead))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("GET %s: %s %s", path, resp.Status, resp.Header.Get("Content-Type"))
	}
	events := make(chan sseEvent)
	go func() {
		defer close(events)
		defer resp.Body.Close()
		sc := bufio.NewScanner(resp.Body)
		sc.Buffer(nil, 16<<20)
		var ev sseEvent
		for sc.Scan() {
			line := sc.Text()
			switch {
			case strings.HasPrefix(line, "event: "):
				ev.name = line[len("event: "):]
			case strings.HasPrefix(line, "data: "):
				ev.data = line[len("data: "):]
			case line == "" && ev.name != "":
				events <- ev
				ev = sseEvent{}
			}
		}
	}()
	t.Cleanup(func() {
		resp.Body.Close()
		for range events {
		}
	})
	return events
}

// waitForClients waits until the server has n stream clients.
func waitForClients(t *testing.T, s *Server, n int) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); len(*s.streams.subs.Load()) != n; {
		if time.Now().After(deadline) {
			t.Fatalf("%d stream clients, want %d", len(*s.streams.subs.Load()), n)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestOperationsStreamSendsWhatTheFilterMatches(t *testing.T) {
	s := newTestServer(t, Options{})
	srv := httptest.NewServer(s.Handler())
	t.Cleanup(srv.Close) // after the streams' cleanups: Close waits for them
	expr := "pid == 103"
	events := openStream(t, srv, "/api/v1/operations/stream?filter="+url.QueryEscape(expr))
	waitForClients(t, s, 1)
	ops := testOps(200)
	for _, op := range ops {
		s.Add(op)
	}
	wantLines := want(ops, expr, time.Time{}, time.Time{}, false)
	for i, w := range wantLines {
		select {
		case ev := <-events:
			if ev.name != "operation" || ev.data != w {
				t.Fatalf("event %d: %s %s, want operation %s", i, ev.name, ev.data, w)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("%d events of %d came", i, len(wantLines))
		}
	}
}

// A client that does not read does not slow the pipeline: Add goes on at
// full speed, and the client, once it reads again, is told how many
// operations it missed; with those it received, that is all of them.
func TestOperationsStreamTellsASlowClientWhatItMissed(t *testing.T) {
	s := newTestServer(t, Options{Window: 1000})
	srv := httptest.NewServer(s.Handler())
	t.Cleanup(srv.Close) // after the streams' cleanups: Close waits for them
	events := openStream(t, srv, "/api/v1/operations/stream")
	waitForClients(t, s, 1)
	ops := testOps(1000)
	const total = 200_000
	start := time.Now()
	for i := range total {
		s.Add(ops[i%len(ops)])
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("%d operations took %s to add with a client not reading", total, d)
	}
	var got, missed uint64
	for got+missed < total {
		select {
		case ev := <-events:
			switch ev.name {
			case "operation":
				got++
			case "missed":
				var m struct{ Missed uint64 }
				if err := json.Unmarshal([]byte(ev.data), &m); err != nil || m.Missed == 0 {
					t.Fatalf("missed event %q", ev.data)
				}
				missed += m.Missed
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("after %d operations and %d missed, nothing more came (want %d in all)", got, missed, total)
		}
	}
	if missed == 0 || got+missed != total {
		t.Errorf("%d received and %d missed, want %d in all, some missed", got, missed, total)
	}
}

func TestStreamClientsLeaveWhenTheyHangUp(t *testing.T) {
	s := newTestServer(t, Options{})
	srv := httptest.NewServer(s.Handler())
	t.Cleanup(srv.Close) // after the streams' cleanups: Close waits for them
	req, _ := http.NewRequest("GET", srv.URL+"/api/v1/operations/stream", nil)
	req.Header.Set("Authorization", bearer(ScopeRead))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	waitForClients(t, s, 1)
	resp.Body.Close()
	s.Add(testOps(1)[0]) // a write is what finds the client gone, if nothing else does
	waitForClients(t, s, 0)
}

// Past MaxStreams, a stream of either kind is refused with 503 and
// Retry-After, and a slot freed by a client that hangs up serves the next.
func TestStreamsBeyondTheCapAreRefused(t *testing.T) {
	s := newTestServer(t, Options{MaxStreams: 2})
	srv := httptest.NewServer(s.Handler())
	t.Cleanup(srv.Close)
	ctx, hangUp := context.WithCancel(context.Background())
	defer hangUp()
	open := func(ctx context.Context, path string) *http.Response {
		t.Helper()
		req, _ := http.NewRequestWithContext(ctx, "GET", srv.URL+path, nil)
		req.Header.Set("Authorization", bearer(ScopeRead))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		return resp
	}
	first := open(ctx, "/api/v1/operations/stream")
	defer first.Body.Close()
	second := open(context.Background(), "/api/v1/graph/stream")
	defer second.Body.Close()
	if first.StatusCode != 200 || second.StatusCode != 200 {
		t.Fatalf("the first two streams: %d and %d", first.StatusCode, second.StatusCode)
	}
	for _, path := range []string{"/api/v1/operations/stream", "/api/v1/graph/stream"} {
		resp := open(context.Background(), path)
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 503 || resp.Header.Get("Retry-After") == "" || !strings.Contains(string(body), "close one") {
			t.Errorf("a third stream %s: %d %q %s, want 503 with Retry-After", path, resp.StatusCode, resp.Header.Get("Retry-After"), body)
		}
	}
	hangUp()
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		resp := open(context.Background(), "/api/v1/operations/stream?filter=pid%20%3D%3D%201")
		code := resp.StatusCode
		resp.Body.Close()
		if code == 200 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after a client hung up, a new stream still gets %d", code)
		}
	}
}

// A reload's new max_streams applies to the next stream: raised, a third
// stream is served; lowered under what is served, the streams go on and
// a new one is refused.
func TestMaxStreamsChangesWhileServing(t *testing.T) {
	s := newTestServer(t, Options{MaxStreams: 2})
	srv := httptest.NewServer(s.Handler())
	t.Cleanup(srv.Close)
	open := func() *http.Response {
		t.Helper()
		req, _ := http.NewRequest("GET", srv.URL+"/api/v1/operations/stream", nil)
		req.Header.Set("Authorization", bearer(ScopeRead))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { resp.Body.Close() })
		return resp
	}
	open()
	open()
	if code := open().StatusCode; code != 503 {
		t.Fatalf("a third stream at max 2: %d, want 503", code)
	}
	s.SetMaxStreams(3)
	if code := open().StatusCode; code != 200 {
		t.Errorf("a third stream once max is 3: %d, want 200", code)
	}
	s.SetMaxStreams(1)
	if code := open().StatusCode; code != 503 {
		t.Errorf("a stream once max is 1 with 3 served: %d, want 503", code)
	}
}
