package api

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"net/http"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/icptrack/icptrack/filter"
	"github.com/icptrack/icptrack/store"
)

// Limits of a page of operations.
const (
	DefaultLimit = 100
	MaxLimit     = 10_000
)

// paramError is a request's bad parameter, answered with 400.
type paramError struct {
	Error     string `json:"error"`
	Parameter string `json:"parameter"`
	Line      int    `json:"line,omitempty"`
	Column    int    `json:"column,omitempty"`
	// status is the answer's code: 400 unless set.
	status int
}

func badParam(param, format string, args ...any) *paramError {
	return &paramError{Error: fmt.Sprintf(format, args...), Parameter: param}
}

// jsonBuffers keep the buffers of answers: a large graph's is megabytes,
// and growing it anew for each answer cost as much as encoding it.
var jsonBuffers = sync.Pool{New: func() any { return new(bytes.Buffer) }}

func writeJSON(w http.ResponseWriter, code int, v any) {
	b := jsonBuffers.Get().(*bytes.Buffer)
	defer jsonBuffers.Put(b)
	b.Reset()
	enc := json.NewEncoder(b)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(v)
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_, _ = w.Write(b.Bytes())
}

// marshal is JSON as the event log writes it: edge ids keep their ">"
// rather than \u003e, since nobody puts this JSON in HTML.
func marshal(v any) []byte {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(v)
	return bytes.TrimSuffix(b.Bytes(), []byte("\n"))
}

func (e *paramError) write(w http.ResponseWriter) {
	if e.status != 0 {
		writeJSON(w, e.status, e)
		return
	}
	writeJSON(w, http.StatusBadRequest, e)
}

// errorBody is any other error's answer.
type errorBody struct {
	Error string `json:"error"`
}

// parseFilter reads the filter parameter; an empty one keeps everything
// (nil). A filter on payloads is refused (403) to a client that may not
// see them: it could read them a byte at a time by what matches.
func (s *Server) parseFilter(r *http.Request) (*filter.Filter, *paramError) {
	expr := r.URL.Query().Get("filter")
	if strings.TrimSpace(expr) == "" {
		return nil, nil
	}
	f, err := filter.Parse(expr)
	if err != nil {
		pe := badParam("filter", "%v", err)
		var fe *filter.Error
		if errors.As(err, &fe) {
			pe.Line, pe.Column = fe.Line, fe.Col
		}
		return nil, pe
	}
	if f.UsesPayload() && !s.has(r, ScopePayload) {
		pe := badParam("filter", "this filter tests payload, which needs the read:payload scope: ask for a token with it, or leave payload out of the filter")
		pe.status = http.StatusForbidden
		return nil, pe
	}
	return f, nil
}

// parseTime reads a time parameter: RFC 3339, "now", or a duration
// relative to now ("-15m").
func parseTime(r *http.Request, param string, now time.Time) (time.Time, *paramError) {
	v := strings.TrimSpace(r.URL.Query().Get(param))
	switch {
	case v == "":
		return time.Time{}, nil
	case v == "now":
		return now, nil
	case v[0] == '-' || v[0] == '+':
		d, err := time.ParseDuration(v)
		if err != nil {
			return time.Time{}, badParam(param, "%s=%q is neither RFC 3339 (2026-12-05T10:00:00Z) nor relative to now (-15m)", param, v)
		}
		return now.Add(d), nil
	}
	t, err := time.Parse(time.RFC3339Nano, v)
	if err != nil {
		return time.Time{}, badParam(param, "%s=%q is neither RFC 3339 (2026-12-05T10:00:00Z) nor relative to now (-15m)", param, v)
	}
	return t, nil
}

// parseLimit reads limit: DefaultLimit when absent, at most MaxLimit.
func parseLimit(r *http.Request) (int, *paramError) {
	v := r.URL.Query().Get("limit")
	if v == "" {
		return DefaultLimit, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 || n > MaxLimit {
		return 0, badParam("limit", "limit=%q: give a number from 1 to %d", v, MaxLimit)
	}
	return n, nil
}

// parseWindow reads a duration parameter such as window=1m, within max.
func parseWindow(r *http.Request, def, max time.Duration) (time.Duration, *paramError) {
	v := r.URL.Query().Get("window")
	if v == "" {
		return def, nil
	}
	d, err := time.ParseDuration(v)
	if err != nil || d <= 0 || d > max {
		return 0, badParam("window", "window=%q: give a duration such as 1m, at most %s", v, max)
	}
	return d, nil
}

// A cursor is opaque to clients: where the last page ended, in the
// window ("m" and a sequence number) or in the store ("s", the store's
// tag and a store position), base64url so that nobody builds one by
// hand. The tag tells the stores apart: a reload that moves the store
// must not let a position in the old one be read in the new one.
type cursor struct {
	memory bool
	seq    uint64
	store  string // storeTag of the store's directory
	pos    string
}

// storeTag names a store's directory in its cursors.
func storeTag(dir string) string {
	h := fnv.New32a()
	h.Write([]byte(filepath.Clean(dir)))
	return strconv.FormatUint(uint64(h.Sum32()), 36)
}

func (c cursor) String() string {
	s := "s" + c.store + ":" + c.pos
	if c.memory {
		s = "m" + strconv.FormatUint(c.seq, 10)
	}
	return base64.RawURLEncoding.EncodeToString([]byte(s))
}

func parseCursor(r *http.Request) (*cursor, *paramError) {
	v := r.URL.Query().Get("cursor")
	if v == "" {
		return nil, nil
	}
	bad := badParam("cursor", "cursor=%q is not one this server gave: pass next_cursor from the last page as it is", v)
	raw, err := base64.RawURLEncoding.DecodeString(v)
	if err != nil || len(raw) < 2 {
		return nil, bad
	}
	switch raw[0] {
	case 'm':
		seq, err := strconv.ParseUint(string(raw[1:]), 10, 64)
		if err != nil {
			return nil, bad
		}
		return &cursor{memory: true, seq: seq}, nil
	case 's':
		tag, pos, ok := strings.Cut(string(raw[1:]), ":")
		if !ok {
			return nil, bad
		}
		if _, err := store.ParsePosition(pos); err != nil {
			return nil, bad
		}
		return &cursor{store: tag, pos: pos}, nil
	}
	return nil, bad
}
