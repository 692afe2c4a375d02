package api

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/icptrack/icptrack/api/auth"
	"github.com/icptrack/icptrack/api/ui"
	"github.com/icptrack/icptrack/store"
)

// DefaultWindow is how many recent operations the server keeps in memory
// when it has no store to answer from.
const DefaultWindow = 100_000

// DefaultMaxStreams is how many streams a server serves at once.
const DefaultMaxStreams = 64

// The scopes a credential may have. read:payload implies read; admin
// implies both.
const (
	ScopeRead    = auth.ScopeRead
	ScopePayload = auth.ScopeReadPayload
	ScopeAdmin   = auth.ScopeAdmin
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
	// scope (then the listener must be loopback only: auth.Listen).
	Auth *auth.Authenticator
	// GraphWindow is how far back the graph can look (window=); 15
	// minutes when 0.
	GraphWindow time.Duration
	// MaxStreams is how many streams (operations and graph) are served
	// at once; DefaultMaxStreams when 0. Each costs the pipeline a filter
	// per operation, or a graph built every second.
	MaxStreams int
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
	handler http.Handler
	// store is the store the API answers from, and its directory (nil:
	// the window); SetStore changes it while requests are served.
	store atomic.Pointer[storeSource]
	// streaming counts the streams being served; maxStreams is how many
	// may be (SetMaxStreams changes it while they are).
	streaming, maxStreams atomic.Int64

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
	if o.MaxStreams <= 0 {
		o.MaxStreams = DefaultMaxStreams
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
	s.maxStreams.Store(int64(o.MaxStreams))
	s.store.Store(&storeSource{reader: o.Store, dir: o.StoreDir})
	s.graph = newAggregator(o.GraphWindow, o.Now)
	s.routes()
	return s, nil
}

// Handler serves the API's routes and the live view's page, every answer
// with auth.Headers' security headers.
func (s *Server) Handler() http.Handler { return s.handler }

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
	// No credential and no data: the probes, and the page, which asks for
	// a token and then calls the routes above.
	m.HandleFunc("GET /healthz", s.healthz)
	m.HandleFunc("GET /readyz", s.readyz)
	page := ui.Handler()
	m.Handle("GET /{$}", page)
	m.Handle("GET /static/", page)
	s.handler = auth.Headers(m)
}

// has reports whether r's principal has scope (admin implies
// read:payload, which implies read).
func (s *Server) has(r *http.Request, scope string) bool {
	if s.o.Auth == nil {
		return true
	}
	p, ok := auth.FromContext(r.Context())
	return ok && p.Has(scope)
}

// stillLetIn reports whether the request's credential still grants scope
// (auth.Authenticator.Recheck): a stream asks it every recheckEvery, and
// ends when a reload revoked its credential or the token expired.
func (s *Server) stillLetIn(r *http.Request, scope string) bool {
	return s.o.Auth == nil || s.o.Auth.Recheck(r, scope)
}

// recheckEvery is how often a stream checks its credential again.
var recheckEvery = time.Second

// Serve answers on l until Close.
func (s *Server) Serve(l net.Listener) error {
	s.mu.Lock()
	if s.http == nil {
		s.http = &http.Server{Handler: s.handler, ReadHeaderTimeout: 10 * time.Second, ErrorLog: zap.NewStdLog(s.o.Log)}
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

// streamSlot takes one of the streams' slots, or answers 503 and returns
// false; release the slot when the stream ends.
func (s *Server) streamSlot(w http.ResponseWriter) (release func(), ok bool) {
	limit := s.maxStreams.Load()
	if s.streaming.Add(1) <= limit {
		return func() { s.streaming.Add(-1) }, true
	}
	s.streaming.Add(-1)
	w.Header().Set("Retry-After", "10")
	writeJSON(w, http.StatusServiceUnavailable, errorBody{Error: fmt.Sprintf(
		"this server already serves %d streams, as many as it allows: close one, or read pages (/api/v1/operations, /api/v1/graph) instead", limit)})
	return nil, false
}

// storeSource is a store to answer from: nil reader for the window.
type storeSource struct {
	reader *store.Reader
	dir    string
}

// storeReader is the store to answer from now; nil: the window.
func (s *Server) storeReader() *store.Reader { return s.store.Load().reader }

// SetStore makes the API answer from r, the store in dir, from the next
// request on; nil r: from the in-memory window (for a reload that moves
// or removes the store). A cursor of the other source is refused as any
// cursor of another source is.
func (s *Server) SetStore(r *store.Reader, dir string) {
	s.store.Store(&storeSource{reader: r, dir: dir})
}

// SetMaxStreams changes how many streams are served at once (0:
// DefaultMaxStreams), for a reload. Streams already served above a
// lowered limit go on; new ones wait until they are under it.
func (s *Server) SetMaxStreams(n int) {
	if n <= 0 {
		n = DefaultMaxStreams
	}
	s.maxStreams.Store(int64(n))
}
