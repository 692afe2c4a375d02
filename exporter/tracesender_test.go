package exporter

import (
	"compress/gzip"
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/icptrack/icptrack/flow"
)

// otlpServer is a real OTLP/gRPC trace receiver that counts what it gets
// and answers as told.
type otlpServer struct {
	ptraceotlp.UnimplementedGRPCServer
	spans atomic.Int64
	calls atomic.Int64
	// failFirst calls fail with Unavailable.
	failFirst int64
	// gate, when set, holds every call until it is closed.
	gate chan struct{}
}

func (s *otlpServer) Export(ctx context.Context, req ptraceotlp.ExportRequest) (ptraceotlp.ExportResponse, error) {
	n := s.calls.Add(1)
	if s.gate != nil {
		select {
		case <-s.gate:
		case <-ctx.Done():
			return ptraceotlp.NewExportResponse(), ctx.Err()
		}
	}
	if n <= s.failFirst {
		return ptraceotlp.NewExportResponse(), status.Error(codes.Unavailable, "not yet")
	}
	s.spans.Add(int64(req.Traces().SpanCount()))
	return ptraceotlp.NewExportResponse(), nil
}

func startGRPC(t testing.TB, s *otlpServer) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer()
	ptraceotlp.RegisterGRPCServer(srv, s)
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(srv.Stop)
	return "http://" + ln.Addr().String()
}

// testTraces is a batch of n spans.
func testTraces(n int) ptrace.Traces {
	td := ptrace.NewTraces()
	ss := td.ResourceSpans().AppendEmpty().ScopeSpans().AppendEmpty().Spans()
	for i := range n {
		sp := ss.AppendEmpty()
		sp.SetName("write pipe")
		sp.SetSpanID(spanID(flow.OpID(i + 1)))
	}
	return td
}

func newSender(t *testing.T, cfg OTLPConfig) *TraceSender {
	t.Helper()
	s, err := NewTraceSender(cfg, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestSenderDeliversOverGRPC(t *testing.T) {
	srv := &otlpServer{}
	s := newSender(t, OTLPConfig{Endpoint: startGRPC(t, srv), Protocol: ProtocolGRPC})
	for range 3 {
		s.Send(testTraces(10))
	}
	if err := s.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	if srv.spans.Load() != 30 || s.Stats().SentSpans != 30 || s.Stats().DroppedSpans != 0 {
		t.Errorf("server got %d spans; stats %+v; want 30 sent", srv.spans.Load(), s.Stats())
	}
}

func TestSenderRetriesWhatOTLPSaysToRetry(t *testing.T) {
	srv := &otlpServer{failFirst: 2}
	s := newSender(t, OTLPConfig{Endpoint: startGRPC(t, srv), Protocol: ProtocolGRPC})
	s.Send(testTraces(5))
	deadline := time.Now().Add(30 * time.Second)
	for srv.spans.Load() == 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	_ = s.Shutdown(context.Background())
	if st := s.Stats(); st.SentSpans != 5 || st.Retries != 2 || st.FailedExports != 2 {
		t.Errorf("stats %+v, want 5 sent after 2 retries", st)
	}
}

// A backend that does not answer must not block Send: what does not fit
// in the queue is dropped and counted.
func TestSenderNeverBlocksAndCountsWhatItDrops(t *testing.T) {
	srv := &otlpServer{gate: make(chan struct{})}
	s := newSender(t, OTLPConfig{Endpoint: startGRPC(t, srv), Protocol: ProtocolGRPC, QueueSize: 2})
	done := make(chan struct{})
	go func() {
		for range 20 {
			s.Send(testTraces(10))
		}
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Send blocked on a backend that does not answer")
	}
	close(srv.gate)
	_ = s.Shutdown(context.Background())
	st := s.Stats()
	if st.SentSpans+st.DroppedSpans != 200 || st.DroppedSpans < 170 {
		t.Errorf("stats %+v: want all 200 spans sent or dropped, at least 170 dropped", st)
	}
	if int64(st.SentSpans) != srv.spans.Load() {
		t.Errorf("sender says %d sent, server got %d", st.SentSpans, srv.spans.Load())
	}
}

func TestSenderToADeadBackend(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nothing listens there now
	for _, proto := range []string{ProtocolGRPC, ProtocolHTTP} {
		t.Run(proto, func(t *testing.T) {
			s := newSender(t, OTLPConfig{Endpoint: "http://" + addr, Protocol: proto})
			for range 5 {
				s.Send(testTraces(4))
			}
			time.Sleep(300 * time.Millisecond) // let it fail and retry
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			_ = s.Shutdown(ctx)
			st := s.Stats()
			if st.SentSpans != 0 || st.DroppedSpans != 20 || st.FailedExports == 0 {
				t.Errorf("stats %+v: want all 20 spans dropped after failed exports", st)
			}
		})
	}
}

func TestSenderOverHTTP(t *testing.T) {
	var mu sync.Mutex
	var spans, calls int
	var encodings []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		calls++
		if r.URL.Path != "/otlp/v1/traces" || r.Header.Get("Content-Type") != "application/x-protobuf" || r.Header.Get("Authorization") != "Bearer t0k" {
			http.Error(w, "wrong request "+r.URL.Path, http.StatusBadRequest)
			return
		}
		if calls == 1 {
			w.Header().Set("Retry-After", "1")
			http.Error(w, "busy", http.StatusServiceUnavailable)
			return
		}
		encodings = append(encodings, r.Header.Get("Content-Encoding"))
		body := io.Reader(r.Body)
		if r.Header.Get("Content-Encoding") == "gzip" {
			zr, err := gzip.NewReader(r.Body)
			if err != nil {
				http.Error(w, err.Error(), http.StatusBadRequest)
				return
			}
			body = zr
		}
		b, _ := io.ReadAll(body)
		req := ptraceotlp.NewExportRequest()
		if err := req.UnmarshalProto(b); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		spans += req.Traces().SpanCount()
		resp, _ := ptraceotlp.NewExportResponse().MarshalProto()
		w.Header().Set("Content-Type", "application/x-protobuf")
		_, _ = w.Write(resp)
	}))
	defer srv.Close()
	s := newSender(t, OTLPConfig{Endpoint: srv.URL + "/otlp", Compression: "gzip", Headers: map[string]string{"Authorization": "Bearer t0k"}})
	s.Send(testTraces(7))
	deadline := time.Now().Add(30 * time.Second)
	for s.Stats().SentSpans == 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if err := s.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if spans != 7 || s.Stats().Retries != 1 || len(encodings) != 1 || encodings[0] != "gzip" {
		t.Errorf("server got %d spans (encodings %v); stats %+v; want 7, gzip, after one retry", spans, encodings, s.Stats())
	}
}

func TestSenderDropsWhatTheBackendRefuses(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "bad", http.StatusBadRequest)
	}))
	defer srv.Close()
	s := newSender(t, OTLPConfig{Endpoint: srv.URL, Protocol: ProtocolHTTP})
	s.Send(testTraces(3))
	_ = s.Shutdown(context.Background())
	if st := s.Stats(); st.DroppedSpans != 3 || st.Retries != 0 {
		t.Errorf("stats %+v: want 3 dropped, no retry of a 400", st)
	}
}
