package api

import (
	"context"
	"net/http"
	"time"

	"go.uber.org/zap"

	"github.com/icptrack/icptrack/exporter"
	"github.com/icptrack/icptrack/filter"
	"github.com/icptrack/icptrack/flow"
	"github.com/icptrack/icptrack/store"
)

// appendOp appends op as the event log writes it, without its payload
// unless the client may see payloads.
func appendOp(b []byte, op *flow.Operation, payload bool) []byte {
	if !payload && op.PayloadCaptured {
		c := *op
		c.Payload, c.PayloadCaptured, c.PayloadTruncated = nil, false, false
		op = &c
	}
	return exporter.AppendJSON(b, op)
}

// span is where a page of operations came from.
type span struct {
	From   *time.Time `json:"from,omitempty"`
	To     *time.Time `json:"to,omitempty"`
	Source string     `json:"source"`
}

// opsQuery is a request for a page of operations.
type opsQuery struct {
	filter   *filter.Filter
	from, to time.Time
	limit    int
	after    *cursor
	// store is the store to read (nil: the window), and storeTag its
	// directory's, taken once, so that the cursor is checked against the
	// source that is read.
	store    *store.Reader
	storeTag string
}

func (s *Server) parseOpsQuery(r *http.Request) (opsQuery, *paramError) {
	var q opsQuery
	var pe *paramError
	now := s.o.Now()
	if q.filter, pe = s.parseFilter(r); pe != nil {
		return q, pe
	}
	if q.from, pe = parseTime(r, "from", now); pe != nil {
		return q, pe
	}
	if q.to, pe = parseTime(r, "to", now); pe != nil {
		return q, pe
	}
	if !q.from.IsZero() && !q.to.IsZero() && !q.from.Before(q.to) {
		return q, badParam("to", "to (%s) must come after from (%s)", q.to.Format(time.RFC3339Nano), q.from.Format(time.RFC3339Nano))
	}
	if q.limit, pe = parseLimit(r); pe != nil {
		return q, pe
	}
	if q.after, pe = parseCursor(r); pe != nil {
		return q, pe
	}
	src := s.store.Load()
	q.store, q.storeTag = src.reader, storeTag(src.dir)
	if q.after != nil && (q.after.memory != (q.store == nil) || !q.after.memory && q.after.store != q.storeTag) {
		return q, badParam("cursor", "this cursor is from another source than this server's: start again without it")
	}
	return q, nil
}

// inTime reports whether t is within [from, to) (a zero bound is open).
func inTime(t, from, to time.Time) bool {
	return (from.IsZero() || !t.Before(from)) && (to.IsZero() || t.Before(to))
}

func (s *Server) operations(w http.ResponseWriter, r *http.Request) {
	q, pe := s.parseOpsQuery(r)
	if pe != nil {
		pe.write(w)
		return
	}
	payload := s.has(r, ScopePayload)
	b := append(make([]byte, 0, 64<<10), `{"operations":[`...)
	var next *cursor
	var sp span
	n := 0
	emit := func(op *flow.Operation) {
		if n > 0 {
			b = append(b, ',')
		}
		b = appendOp(b, op, payload)
		n++
	}
	if q.store != nil {
		var err error
		next, err = s.queryStore(r.Context(), q, emit)
		if err != nil {
			s.o.Log.Warn("api: store query failed", zap.Error(err))
			writeJSON(w, http.StatusInternalServerError, errorBody{Error: err.Error()})
			return
		}
		sp = span{Source: "store"}
		if !q.from.IsZero() {
			sp.From = &q.from
		}
		if !q.to.IsZero() {
			sp.To = &q.to
		}
	} else {
		next = s.queryWindow(q, emit)
		sp = s.windowSpan()
	}
	b = append(b, ']')
	if next != nil {
		b = append(b, `,"next_cursor":"`...)
		b = append(b, next.String()...)
		b = append(b, '"')
	}
	b = append(b, `,"window":`...)
	b = append(b, marshal(sp)...)
	b = append(b, "}\n"...)
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(b)
}

func (s *Server) windowSpan() span {
	sp := span{Source: "memory"}
	if n, from, to := s.live.span(); n > 0 {
		sp.From, sp.To = &from, &to
	}
	return sp
}

// queryWindow gives emit a page of the window's operations, and the
// cursor after it when there may be more.
func (s *Server) queryWindow(q opsQuery, emit func(*flow.Operation)) *cursor {
	after := int64(-1)
	if q.after != nil {
		after = int64(q.after.seq)
	}
	n := 0
	var next *cursor
	// The window holds nothing that does not decode: it wrote it.
	_ = s.live.each(after, q.from, q.to, func(seq uint64, op *flow.Operation) bool {
		if q.filter != nil && !q.filter.Match(op) {
			return true
		}
		if n == q.limit {
			next = &cursor{memory: true, seq: seq - 1}
			return false
		}
		emit(op)
		n++
		return true
	})
	return next
}

// queryStore gives emit a page of the store's operations, and the cursor
// after it when there are more.
func (s *Server) queryStore(ctx context.Context, q opsQuery, emit func(*flow.Operation)) (*cursor, error) {
	sq := store.Query{From: q.from, To: q.to, Filter: q.filter}
	if q.after != nil {
		p, err := store.ParsePosition(q.after.pos)
		if err != nil {
			return nil, err
		}
		sq.After = &p
	}
	n := 0
	var last store.Position
	var next *cursor
	_, err := q.store.Query(ctx, sq, func(rec *store.Record) error {
		if rec.Op == nil {
			return nil
		}
		if n == q.limit {
			next = &cursor{store: q.storeTag, pos: last.String()}
			return store.ErrStop
		}
		emit(rec.Op)
		last = rec.Pos
		n++
		return nil
	})
	return next, err
}
