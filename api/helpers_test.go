package api

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"
	"time"

	"github.com/icptrack/icptrack/api/auth"
	"github.com/icptrack/icptrack/api/auth/authtest"
	"github.com/icptrack/icptrack/api/auth/credential"
	"github.com/icptrack/icptrack/exporter"
	"github.com/icptrack/icptrack/flow"
)

var testBase = time.Date(2026, 12, 5, 10, 0, 0, 0, time.UTC)

// testOps makes n operations a millisecond apart from testBase: pairs of
// processes talking over pipes and unix sockets, each write followed by its read,
// every fifth with a payload, every seventh failing.
func testOps(n int) []*flow.Operation {
	ops := make([]*flow.Operation, n)
	for i := range ops {
		pair := uint32(i / 2 % 10)
		writer, reader := 100+2*pair, 101+2*pair
		op := &flow.Operation{
			ID: flow.OpID(i + 1), Time: testBase.Add(time.Duration(i) * time.Millisecond),
			Duration: time.Duration(1000 + i%50*100), Mechanism: flow.Pipe,
			Channel: fmt.Sprintf("pipe:%d", 500+pair), Endpoint: fmt.Sprintf("pipe:[%d]", 500+pair),
			QueueDepth: -1, Bytes: int64(10 + i%100),
		}
		if pair%2 == 1 {
			op.Mechanism = flow.UnixStream
			op.Channel = fmt.Sprintf("unix:%d", 500+pair)
		}
		if i%2 == 0 {
			op.PID, op.Comm, op.Op, op.Syscall = writer, fmt.Sprintf("w%d", pair), flow.Send, "write"
			op.Peer = flow.Peer{PID: reader, Comm: fmt.Sprintf("r%d", pair)}
		} else {
			op.PID, op.Comm, op.Op, op.Syscall = reader, fmt.Sprintf("r%d", pair), flow.Receive, "read"
			op.Peer = flow.Peer{PID: writer, Comm: fmt.Sprintf("w%d", pair)}
		}
		op.TID = op.PID
		if i%5 == 0 {
			op.Payload, op.PayloadCaptured = []byte(fmt.Sprintf("hello %d", i)), true
		}
		if i%7 == 0 {
			op.Error, op.Bytes = "EAGAIN", 0
		}
		ops[i] = op
	}
	return ops
}

// bearer is the Authorization header of authtest.Config()'s token for
// the strongest of scopes ("" for none: no credential).
func bearer(scopes ...string) string {
	if len(scopes) == 0 {
		return ""
	}
	best := scopes[0]
	for _, sc := range scopes[1:] {
		if credential.Grants([]string{sc}, best) {
			best = sc
		}
	}
	return "Bearer " + authtest.Token(best)
}

// get requests path with scopes (none: no credential) and returns the
// status and body.
func get(t *testing.T, h http.Handler, path string, scopes ...string) (int, []byte) {
	t.Helper()
	srv := httptest.NewServer(h)
	defer srv.Close()
	req, _ := http.NewRequest("GET", srv.URL+path, nil)
	if len(scopes) > 0 {
		req.Header.Set("Authorization", bearer(scopes...))
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, b
}

type page struct {
	Operations []json.RawMessage `json:"operations"`
	NextCursor string            `json:"next_cursor"`
	Window     struct {
		From, To *time.Time
		Source   string
	} `json:"window"`
}

func getPage(t *testing.T, h http.Handler, q url.Values, scopes ...string) page {
	t.Helper()
	code, body := get(t, h, "/api/v1/operations?"+q.Encode(), scopes...)
	if code != 200 {
		t.Fatalf("GET /api/v1/operations?%s: %d %s", q.Encode(), code, body)
	}
	var p page
	if err := json.Unmarshal(body, &p); err != nil {
		t.Fatalf("%v: %s", err, body)
	}
	return p
}

// eventLine is op as the event log writes it.
func eventLine(op *flow.Operation) string { return string(exporter.AppendJSON(nil, op)) }

func newTestServer(t *testing.T, o Options) *Server {
	t.Helper()
	if o.Auth == nil {
		a, err := auth.New(authtest.Config(), nil)
		if err != nil {
			t.Fatal(err)
		}
		o.Auth = a
	}
	s, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}
