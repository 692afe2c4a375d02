package api

import (
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/icptrack/icptrack/filter"
	"github.com/icptrack/icptrack/flow"
)

// StreamQueue is how many operations a stream's client may fall behind
// before it misses some.
const StreamQueue = 4096

// keepalive is how often an idle stream sends a comment, so that proxies
// and clients know it is alive.
var keepalive = 15 * time.Second

// subscriber is one client of the operations stream.
type subscriber struct {
	filter *filter.Filter
	queue  chan *flow.Operation
	missed atomic.Uint64
}

// streams are the operations stream's clients. The sink reads the list
// without a lock (it is replaced, never changed), so that a client
// coming or going never holds up the pipeline.
type streams struct {
	mu     sync.Mutex
	subs   atomic.Pointer[[]*subscriber]
	closed chan struct{}
}

func newStreams() *streams {
	s := &streams{closed: make(chan struct{})}
	s.subs.Store(&[]*subscriber{})
	return s
}

// offer hands op to each client whose filter matches it, or counts it
// missed when the client's queue is full.
// op is the caller's: the clients share one copy, made only when one of
// them takes it.
func (s *streams) offer(op *flow.Operation) {
	var c *flow.Operation
	for _, sub := range *s.subs.Load() {
		if sub.filter != nil && !sub.filter.Match(op) {
			continue
		}
		if len(sub.queue) == cap(sub.queue) {
			sub.missed.Add(1)
			continue
		}
		if c == nil {
			c = op.Clone()
		}
		select {
		case sub.queue <- c:
		default:
			sub.missed.Add(1)
		}
	}
}

func (s *streams) join(sub *subscriber) {
	s.mu.Lock()
	old := *s.subs.Load()
	next := append(append(make([]*subscriber, 0, len(old)+1), old...), sub)
	s.subs.Store(&next)
	s.mu.Unlock()
}

func (s *streams) leave(sub *subscriber) {
	s.mu.Lock()
	old := *s.subs.Load()
	next := make([]*subscriber, 0, len(old))
	for _, o := range old {
		if o != sub {
			next = append(next, o)
		}
	}
	s.subs.Store(&next)
	s.mu.Unlock()
}

func (s *streams) close() {
	s.mu.Lock()
	defer s.mu.Unlock()
	select {
	case <-s.closed:
	default:
		close(s.closed)
	}
}

// sse writes Server-Sent Events, flushing each.
type sse struct {
	w  http.ResponseWriter
	rc *http.ResponseController
}

func startSSE(w http.ResponseWriter) *sse {
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	e := &sse{w: w, rc: http.NewResponseController(w)}
	_ = e.rc.Flush()
	return e
}

// writeTimeout is how long a stream's client may leave an event unread
// before it is hung up on.
var writeTimeout = 30 * time.Second

// event writes one event; data must be one line (JSON is).
func (e *sse) event(name string, data []byte) error {
	_ = e.rc.SetWriteDeadline(time.Now().Add(writeTimeout))
	if _, err := fmt.Fprintf(e.w, "event: %s\ndata: %s\n\n", name, data); err != nil {
		return err
	}
	return e.rc.Flush()
}

func (e *sse) comment(text string) error {
	_ = e.rc.SetWriteDeadline(time.Now().Add(writeTimeout))
	if _, err := fmt.Fprintf(e.w, ": %s\n\n", text); err != nil {
		return err
	}
	return e.rc.Flush()
}

func (s *Server) operationsStream(w http.ResponseWriter, r *http.Request) {
	f, pe := s.parseFilter(r)
	if pe != nil {
		pe.write(w)
		return
	}
	release, ok := s.streamSlot(w)
	if !ok {
		return
	}
	defer release()
	payload := s.has(r, ScopePayload)
	sub := &subscriber{filter: f, queue: make(chan *flow.Operation, StreamQueue)}
	s.streams.join(sub)
	defer s.streams.leave(sub)
	out := startSSE(w)
	tick := time.NewTicker(keepalive)
	defer tick.Stop()
	recheck := time.NewTicker(recheckEvery)
	defer recheck.Stop()
	var buf []byte
	for {
		var err error
		select {
		case <-r.Context().Done():
			return
		case <-s.streams.closed:
			return
		case <-recheck.C:
			// A credential a reload took away ends the stream; one
			// that lost read:payload reads on without payloads.
			if !s.stillLetIn(r, ScopeRead) {
				return
			}
			payload = payload && s.stillLetIn(r, ScopePayload)
		case <-tick.C:
			err = out.comment("keepalive")
		case op := <-sub.queue:
			buf = appendOp(buf[:0], op, payload)
			err = out.event("operation", buf)
			// Said as soon as it is known, even while the queue stays
			// full: a client that never catches up still learns it.
			if n := sub.missed.Swap(0); err == nil && n > 0 {
				err = out.event("missed", fmt.Appendf(buf[:0], `{"missed":%d}`, n))
			}
		}
		if err != nil {
			return
		}
	}
}
