package api

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/icptrack/icptrack/filter"
	"github.com/icptrack/icptrack/flow"
	"github.com/icptrack/icptrack/store"
)

// DefaultGraphWindow is the graph's window when the request names none.
const DefaultGraphWindow = time.Minute

// recentOps is how many operations a channel's or a process's page
// lists: the last ones in the window.
const recentOps = 100

// graphQuery is a request for a graph: its window, filter and end.
type graphQuery struct {
	window time.Duration
	filter *filter.Filter
	at     time.Time
	atNow  bool
}

func (s *Server) parseGraphQuery(r *http.Request) (graphQuery, *paramError) {
	q := graphQuery{at: s.o.Now()}
	var pe *paramError
	if q.window, pe = parseWindow(r, DefaultGraphWindow, s.o.GraphWindow); pe != nil {
		return q, pe
	}
	if q.filter, pe = s.parseFilter(r); pe != nil {
		return q, pe
	}
	at, pe := parseTime(r, "at", q.at)
	if pe != nil {
		return q, pe
	}
	q.atNow = at.IsZero()
	if !q.atNow {
		q.at = at
	}
	return q, nil
}

// eachOp calls fn with the operations in [from, to) that f matches,
// oldest first, from the store if there is one, else the window, until
// fn returns false. op is good only until fn returns: who keeps it keeps
// its Clone.
func (s *Server) eachOp(ctx context.Context, from, to time.Time, f *filter.Filter, fn func(*flow.Operation) bool) error {
	if st := s.storeReader(); st != nil {
		_, err := st.Query(ctx, store.Query{From: from, To: to, Filter: f}, func(rec *store.Record) error {
			if rec.Op != nil && !fn(rec.Op) {
				return store.ErrStop
			}
			return nil
		})
		return err
	}
	return s.live.each(-1, from, to, func(_ uint64, op *flow.Operation) bool {
		return (f != nil && !f.Match(op)) || fn(op)
	})
}

// buildGraph answers q: from the live aggregator when it can (no
// filter, ending now, and live data or nothing else to read), else by
// adding up the operations of the window.
func (s *Server) buildGraph(ctx context.Context, q graphQuery) (*Graph, error) {
	if q.filter == nil && q.atNow && (s.storeReader() == nil || s.live.added() > 0) {
		return s.graph.graph(q.window), nil
	}
	g := newGraphBuilder()
	// The window ends at at, and includes it: a graph at the last
	// operation's time shows that operation.
	err := s.eachOp(ctx, q.at.Add(-q.window), q.at.Add(time.Nanosecond), q.filter, func(op *flow.Operation) bool {
		g.add(op)
		return true
	})
	if err != nil {
		return nil, err
	}
	return g.graph(q.at, q.window), nil
}

// graphOrFail builds q's graph, or answers 500 with why and returns
// false.
func (s *Server) graphOrFail(w http.ResponseWriter, r *http.Request, q graphQuery) (*Graph, bool) {
	g, err := s.buildGraph(r.Context(), q)
	if err != nil {
		writeJSON(w, http.StatusInternalServerError, errorBody{Error: err.Error()})
		return nil, false
	}
	return g, true
}

func (s *Server) graphNow(w http.ResponseWriter, r *http.Request) {
	q, pe := s.parseGraphQuery(r)
	if pe != nil {
		pe.write(w)
		return
	}
	g, ok := s.graphOrFail(w, r, q)
	if !ok {
		return
	}
	writeJSON(w, http.StatusOK, g)
}

// graphEvery is how often the graph stream sends what changed.
var graphEvery = time.Second

func (s *Server) graphStream(w http.ResponseWriter, r *http.Request) {
	q, pe := s.parseGraphQuery(r)
	if pe != nil {
		pe.write(w)
		return
	}
	release, ok := s.streamSlot(w)
	if !ok {
		return
	}
	defer release()
	g, ok := s.graphOrFail(w, r, q)
	if !ok {
		return
	}
	out := startSSE(w)
	b := marshal(g)
	if out.event("snapshot", b) != nil {
		return
	}
	tick := time.NewTicker(graphEvery)
	defer tick.Stop()
	for {
		select {
		case <-r.Context().Done():
			return
		case <-s.streams.closed:
			return
		case <-tick.C:
		}
		// A credential a reload took away, or that expired, ends it.
		if !s.stillLetIn(r, ScopeRead) {
			return
		}
		if !q.atNow {
			q.at = q.at.Add(graphEvery)
		} else {
			q.at = s.o.Now()
		}
		next, err := s.buildGraph(r.Context(), q)
		if err != nil {
			return
		}
		b := marshal(diffGraphs(g, next))
		if out.event("diff", b) != nil {
			return
		}
		g = next
	}
}

// recent gives the last recentOps operations f matches in q's window.
func (s *Server) recent(ctx context.Context, q graphQuery, f *filter.Filter) ([]*flow.Operation, error) {
	ring := make([]*flow.Operation, 0, recentOps)
	next := 0
	err := s.eachOp(ctx, q.at.Add(-q.window), q.at.Add(time.Nanosecond), f, func(op *flow.Operation) bool {
		if len(ring) < recentOps {
			ring = append(ring, op.Clone())
		} else {
			ring[next] = op.Clone()
			next = (next + 1) % recentOps
		}
		return true
	})
	out := make([]*flow.Operation, 0, len(ring))
	for i := range ring {
		out = append(out, ring[(next+i)%len(ring)])
	}
	return out, err
}

// renderOps renders ops as the event log's lines, without payloads
// unless r may see them.
func (s *Server) renderOps(r *http.Request, ops []*flow.Operation) []json.RawMessage {
	payload := s.has(r, ScopePayload)
	out := make([]json.RawMessage, len(ops))
	for i, op := range ops {
		out[i] = appendOp(nil, op, payload)
	}
	return out
}

func mustFilter(format string, args ...any) *filter.Filter {
	f, err := filter.Parse(fmt.Sprintf(format, args...))
	if err != nil {
		panic(err) // the expressions are this file's, with quoted values
	}
	return f
}

// channelBody is GET /api/v1/channels/{id}'s answer.
type channelBody struct {
	Channel    channelSummary    `json:"channel"`
	Edges      []Edge            `json:"edges"`
	Operations []json.RawMessage `json:"operations"`
}

type channelSummary struct {
	ID          string  `json:"id"`
	Mechanism   string  `json:"mechanism"`
	Endpoint    string  `json:"endpoint"`
	OpsPerSec   float64 `json:"ops_per_sec"`
	BytesPerSec float64 `json:"bytes_per_sec"`
	P50NS       int64   `json:"p50_ns"`
	P99NS       int64   `json:"p99_ns"`
	Errors      int64   `json:"errors"`
	Ends        []Node  `json:"ends"`
}

func (s *Server) channel(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	q, pe := s.parseGraphQuery(r)
	if pe != nil {
		pe.write(w)
		return
	}
	g, ok := s.graphOrFail(w, r, q)
	if !ok {
		return
	}
	body := channelBody{Channel: channelSummary{ID: id, Ends: []Node{}}, Edges: []Edge{}}
	ends := map[string]bool{}
	for _, e := range g.Edges {
		if e.Channel != id && e.ID != id {
			continue
		}
		body.Edges = append(body.Edges, e)
		c := &body.Channel
		c.ID, c.Mechanism, c.Endpoint = e.Channel, e.Mechanism, e.Endpoint
		c.OpsPerSec += e.OpsPerSec
		c.BytesPerSec += e.BytesPerSec
		c.Errors += e.Errors
		// The channel's latency is its slowest direction's.
		c.P50NS, c.P99NS = max(c.P50NS, e.P50NS), max(c.P99NS, e.P99NS)
		ends[e.Source], ends[e.Target] = true, true
	}
	if len(body.Edges) == 0 {
		writeJSON(w, http.StatusNotFound, errorBody{Error: fmt.Sprintf("no channel %q in the last %s", id, q.window)})
		return
	}
	for _, n := range g.Nodes {
		if ends[n.ID] {
			body.Channel.Ends = append(body.Channel.Ends, n)
		}
	}
	ops, err := s.recent(r.Context(), q, mustFilter("channel == %q", body.Channel.ID))
	if err != nil {
		writeJSON(w, http.StatusInternalServerError, errorBody{Error: err.Error()})
		return
	}
	body.Operations = s.renderOps(r, ops)
	writeJSON(w, http.StatusOK, body)
}

// processBody is GET /api/v1/processes/{pid}'s answer.
type processBody struct {
	Process    Node              `json:"process"`
	Edges      []Edge            `json:"edges"`
	Operations []json.RawMessage `json:"operations"`
}

func (s *Server) process(w http.ResponseWriter, r *http.Request) {
	pid, err := strconv.ParseUint(r.PathValue("pid"), 10, 32)
	if err != nil {
		badParam("pid", "%q is not a process id", r.PathValue("pid")).write(w)
		return
	}
	q, pe := s.parseGraphQuery(r)
	if pe != nil {
		pe.write(w)
		return
	}
	g, ok := s.graphOrFail(w, r, q)
	if !ok {
		return
	}
	id := nodeID(uint32(pid))
	body := processBody{Edges: []Edge{}}
	found := false
	for _, n := range g.Nodes {
		if n.ID == id {
			body.Process, found = n, true
		}
	}
	if !found {
		writeJSON(w, http.StatusNotFound, errorBody{Error: fmt.Sprintf("no process %d in the last %s", pid, q.window)})
		return
	}
	for _, e := range g.Edges {
		if e.Source == id || e.Target == id {
			body.Edges = append(body.Edges, e)
		}
	}
	ops, err := s.recent(r.Context(), q, mustFilter("pid == %d", pid))
	if err != nil {
		writeJSON(w, http.StatusInternalServerError, errorBody{Error: err.Error()})
		return
	}
	body.Operations = s.renderOps(r, ops)
	writeJSON(w, http.StatusOK, body)
}
