package api

import (
	"context"
	"errors"
	"net"
	"net/http"
	"slices"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/icptrack/icptrack/store"
)

// DefaultWindow is how many recent operations the server keeps in memory
// when it has no store to answer from.
const DefaultWindow = 100_000

// Auth guards the routes that show data. api/auth's Authenticator is one;
// without it (Options.Auth nil) every request has every scope, and the
// listener must be loopback only.
type Auth interface {
	// Require wraps h so that it runs only for a credential with scope.
	Require(scope string, h http.Handler) http.Handler
}

// The scopes a credential may have. read:payload implies read; admin
// implies both.
const (
	ScopeRead    = "read"
	ScopePayload = "read:payload"
	ScopeAdmin   = "admin"
)

// Options configure a Server.
type Options struct {
	// Store answers queries when set; else the in-memory window does.
	Store *store.Reader
	// StoreDir is the store's directory, for status.
	StoreDir string
	// Window is how many operations the in-memory window keeps
	// (DefaultWindow when 0).
	Window int
	// Status reports the capture's state for /api/v1/status; nil for a
	// server with nothing capturing (serve).
	Status func() Status
	// Ready says whether /readyz answers 200: capture running, or the
	// store open. nil: ready once New returns.
	Ready func() bool
	// Auth guards the data routes; nil lets every request in with every
	// scope.
	Auth Auth
	// Scopes reads the scopes of a request's principal (set by Auth's
	// middleware). nil: every scope.
	Scopes func(r *http.Request) []string
	// GraphWindow is how far back the graph can look (window=); 15
	// minutes when 0.
	GraphWindow time.Duration
	// Version is the build, for status.
	Version string
	Log     *zap.Logger
	// Now is the clock (tests).
	Now func() time.Time
}

// Server is the API: an http.Handler and an exporter.Sink.
type Server struct {
	o       Options
	started time.Time
	live    *window
	graph   *aggregator
	streams *streams
	mux     *http.ServeMux

	mu   sync.Mutex
	http *http.Server // once Serve runs
}

// New makes a server. Serve its Handler on a listener; hand it to the
// pipeline as a sink to give it live data.
func New(o Options) (*Server, error) {
	if o.Window < 0 {
		return nil, errors.New("api: window must not be negative (api.window: the operations kept in memory)")
	}
	if o.Window == 0 {
		o.Window = DefaultWindow
	}
	if o.GraphWindow <= 0 {
		o.GraphWindow = 15 * time.Minute
	}
	if o.Log == nil {
		o.Log = zap.NewNop()
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	s := &Server{o: o, started: o.Now(), live: newWindow(o.Window), streams: newStreams()}
	s.graph = newAggregator(o.GraphWindow, o.Now)
	s.routes()
	return s, nil
}

// Handler serves the API's routes.
func (s *Server) Handler() http.Handler { return s.mux }

// Mux lets the caller add routes (the UI's) beside the API's.
func (s *Server) Mux() *http.ServeMux { return s.mux }

func (s *Server) routes() {
	m := http.NewServeMux()
	read := func(pattern string, h http.HandlerFunc) {
		if s.o.Auth != nil {
			m.Handle(pattern, s.o.Auth.Require(ScopeRead, h))
		} else {
			m.Handle(pattern, h)
		}
	}
	read("GET /api/v1/operations", s.operations)
	read("GET /api/v1/operations/stream", s.operationsStream)
	read("GET /api/v1/graph", s.graphNow)
	read("GET /api/v1/graph/stream", s.graphStream)
	read("GET /api/v1/channels/{id}", s.channel)
	read("GET /api/v1/processes/{pid}", s.process)
	read("GET /api/v1/status", s.status)
	read("GET /api/v1/openapi.json", s.openapi)
	m.HandleFunc("GET /healthz", s.healthz)
	m.HandleFunc("GET /readyz", s.readyz)
	s.mux = m
}

// has reports whether r's principal has scope, by the scopes' order.
func (s *Server) has(r *http.Request, scope string) bool {
	if s.o.Scopes == nil {
		return true
	}
	scopes := s.o.Scopes(r)
	switch scope {
	case ScopeRead:
		return slices.Contains(scopes, ScopeRead) || slices.Contains(scopes, ScopePayload) || slices.Contains(scopes, ScopeAdmin)
	case ScopePayload:
		return slices.Contains(scopes, ScopePayload) || slices.Contains(scopes, ScopeAdmin)
	}
	return slices.Contains(scopes, scope)
}

// Serve answers on l until Close.
func (s *Server) Serve(l net.Listener) error {
	s.mu.Lock()
	if s.http == nil {
		s.http = &http.Server{Handler: s.mux, ReadHeaderTimeout: 10 * time.Second, ErrorLog: zap.NewStdLog(s.o.Log)}
	}
	srv := s.http
	s.mu.Unlock()
	if err := srv.Serve(l); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// shutdown ends Serve, waiting a little for the answers under way (the
// streams have ended by then).
func (s *Server) shutdown() {
	s.mu.Lock()
	srv := s.http
	s.mu.Unlock()
	if srv == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := srv.Shutdown(ctx); err != nil {
		_ = srv.Close()
	}
}
