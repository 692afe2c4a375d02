package api

import (
	"encoding/json"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/icptrack/icptrack/filter"
	"github.com/icptrack/icptrack/flow"
)

// want is what a query should give: the ops that match, in order, as
// event-log lines (payload dropped unless asked).
func want(ops []*flow.Operation, expr string, from, to time.Time, payload bool) []string {
	var f *filter.Filter
	if expr != "" {
		f, _ = filter.Parse(expr)
	}
	var out []string
	for _, op := range ops {
		if !inTime(op.Time, from, to) || (f != nil && !f.Match(op)) {
			continue
		}
		if !payload {
			c := *op
			c.Payload, c.PayloadCaptured = nil, false
			op = &c
		}
		out = append(out, eventLine(op))
	}
	return out
}

// pages reads every page of q, following next_cursor; between pages,
// more operations arrive when between is set.
func pages(t *testing.T, s *Server, q url.Values, between func(), scopes ...string) []string {
	t.Helper()
	var got []string
	for range 1000 {
		p := getPage(t, s.Handler(), q, scopes...)
		for _, op := range p.Operations {
			got = append(got, string(op))
		}
		if p.NextCursor == "" {
			return got
		}
		q.Set("cursor", p.NextCursor)
		if between != nil {
			between()
		}
	}
	t.Fatal("no end to the pages")
	return nil
}

func sameLines(t *testing.T, what string, got, want []string) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d operations, want %d", what, len(got), len(want))
	}
	for i := range got {
		if got[i] != want[i] {
			t.Fatalf("%s: operation %d is\n%s\nwant\n%s", what, i, got[i], want[i])
		}
	}
}

func TestOperationsFromTheWindowPageThroughWhatTheFilterMatches(t *testing.T) {
	ops := testOps(3000)
	s := newTestServer(t, Options{Window: 5000, Now: func() time.Time { return testBase.Add(time.Hour) }})
	for _, op := range ops[:2000] {
		s.Add(op)
	}
	// Pages stay stable while new operations arrive between them: the
	// pages end where the window did when they began... and then go on
	// with what came since, none twice and none left out.
	more := ops[2000:]
	between := func() {
		for _, op := range more[:min(100, len(more))] {
			s.Add(op)
		}
		more = more[min(100, len(more)):]
	}
	q := url.Values{"filter": {"pid == 104 or mechanism == unix_stream"}, "limit": {"37"}}
	got := pages(t, s, q, between, "read")
	sameLines(t, "filtered pages", got, want(ops[:len(ops)-len(more)], q.Get("filter"), time.Time{}, time.Time{}, false))

	// A time range, with the payload for a client that may see it.
	from, to := testBase.Add(500*time.Millisecond), testBase.Add(700*time.Millisecond)
	q = url.Values{"from": {from.Format(time.RFC3339Nano)}, "to": {to.Format(time.RFC3339Nano)}, "limit": {"10000"}}
	p := getPage(t, s.Handler(), q, "read:payload")
	var lines []string
	for _, op := range p.Operations {
		lines = append(lines, string(op))
	}
	sameLines(t, "time range", lines, want(ops, "", from, to, true))
	if !strings.Contains(strings.Join(lines, ""), `"payload"`) {
		t.Error("read:payload saw no payloads")
	}
	if p.Window.Source != "memory" || !p.Window.From.Equal(ops[0].Time) || !p.Window.To.Equal(ops[len(ops)-1].Time) {
		t.Errorf("window %+v, want memory from %s to %s", p.Window, ops[0].Time, ops[len(ops)-1].Time)
	}
}

func TestOperationsWithoutPayloadScopeHaveNoPayload(t *testing.T) {
	s := newTestServer(t, Options{})
	for _, op := range testOps(50) {
		s.Add(op)
	}
	p := getPage(t, s.Handler(), url.Values{"limit": {"50"}}, "read")
	if len(p.Operations) != 50 {
		t.Fatalf("%d operations, want 50", len(p.Operations))
	}
	for _, op := range p.Operations {
		if strings.Contains(string(op), `"payload`) {
			t.Fatalf("read alone saw a payload: %s", op)
		}
	}
}

func TestOperationsRelativeTimesCountFromNow(t *testing.T) {
	ops := testOps(1000) // a second of them
	now := testBase.Add(time.Second)
	s := newTestServer(t, Options{Now: func() time.Time { return now }})
	for _, op := range ops {
		s.Add(op)
	}
	got := pages(t, s, url.Values{"from": {"-250ms"}, "limit": {"10000"}}, nil, "read")
	sameLines(t, "the last 250ms", got, want(ops, "", now.Add(-250*time.Millisecond), time.Time{}, false))
}

func TestOperationsOlderThanTheWindowAreGone(t *testing.T) {
	ops := testOps(500)
	s := newTestServer(t, Options{Window: 100})
	for _, op := range ops {
		s.Add(op)
	}
	got := pages(t, s, url.Values{"limit": {"1000"}}, nil, "read")
	sameLines(t, "a window of 100", got, want(ops[400:], "", time.Time{}, time.Time{}, false))
}

func TestOperationsBadParametersSayWhichAndWhere(t *testing.T) {
	s := newTestServer(t, Options{})
	for _, c := range []struct {
		query, param string
		line, col    int
	}{
		{"filter=" + url.QueryEscape("pid ==\n  bogus 3"), "filter", 2, 3},
		{"filter=" + url.QueryEscape("comm = x"), "filter", 1, 6},
		{"from=yesterday", "from", 0, 0},
		{"to=-5x", "to", 0, 0},
		{"from=-1m&to=-2m", "to", 0, 0},
		{"limit=0", "limit", 0, 0},
		{"limit=10001", "limit", 0, 0},
		{"limit=ten", "limit", 0, 0},
		{"cursor=bm90IGEgY3Vyc29y", "cursor", 0, 0},
		{"cursor=%21%21", "cursor", 0, 0},
	} {
		code, body := get(t, s.Handler(), "/api/v1/operations?"+c.query, "read")
		var e paramError
		if err := json.Unmarshal(body, &e); err != nil || code != 400 {
			t.Errorf("%s: %d %s, want 400 and an error", c.query, code, body)
			continue
		}
		if e.Parameter != c.param || e.Error == "" {
			t.Errorf("%s: %+v, want an error about %s", c.query, e, c.param)
		}
		if c.line != 0 && (e.Line != c.line || e.Column != c.col) {
			t.Errorf("%s: at %d:%d, want %d:%d (%s)", c.query, e.Line, e.Column, c.line, c.col, e.Error)
		}
	}
}

func TestOperationsNeedAuthWhenAuthIsThere(t *testing.T) {
	s := newTestServer(t, Options{})
	if code, body := get(t, s.Handler(), "/api/v1/operations"); code != 401 {
		t.Errorf("without a credential: %d %s, want 401", code, body)
	}
	if code, body := get(t, s.Handler(), "/healthz"); code != 200 || string(body) != "ok\n" {
		t.Errorf("/healthz without a credential: %d %q, want 200 ok", code, body)
	}
}

// A client that may not see payloads may not filter on them either: what
// matches would tell it the bytes.
func TestOperationsFilterOnPayloadNeedsThePayloadScope(t *testing.T) {
	s := newTestServer(t, Options{})
	for _, op := range testOps(100) {
		s.Add(op)
	}
	q := "/api/v1/operations?filter=" + url.QueryEscape(`payload contains "hello 5"`)
	for _, path := range []string{q, "/api/v1/graph?filter=" + url.QueryEscape(`payload contains "x"`),
		"/api/v1/operations/stream?filter=" + url.QueryEscape(`payload contains "x"`)} {
		code, body := get(t, s.Handler(), path, "read")
		var e paramError
		if err := json.Unmarshal(body, &e); err != nil || code != 403 || e.Parameter != "filter" || !strings.Contains(e.Error, "read:payload") {
			t.Errorf("%s with read: %d %s, want 403 naming read:payload", path, code, body)
		}
	}
	p := getPage(t, s.Handler(), url.Values{"filter": {`payload contains "hello 5"`}}, "read:payload")
	if len(p.Operations) != 3 { // hello 5, hello 50 and hello 55
		t.Errorf("with read:payload: %d operations, want 3", len(p.Operations))
	}
}
