package api

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/icptrack/icptrack/api/auth/authtest"
)

// Every route, with every kind of credential for tokens and for basic
// auth: none, wrong, expired, unknown user, wrong password, a weaker
// scope, the route's scope and admin (authtest.Matrix). The list is
// checked against the OpenAPI document, so that a route added there and
// not here fails.
func TestEveryRouteAnswersEveryCredentialAsItShould(t *testing.T) {
	ops := testOps(400)
	c := newClock(ops[len(ops)-1].Time)
	s := newTestServer(t, Options{Now: c.now, Ready: func() bool { return true }})
	for _, op := range ops {
		s.Add(op)
	}
	s.graph.sync()
	endpoints := []authtest.Endpoint{
		{Path: "/api/v1/operations?limit=5", Scope: ScopeRead, Want: 200},
		{Path: "/api/v1/operations?filter=pid%20%3D%3D%20100", Scope: ScopeRead, Want: 200},
		{Path: "/api/v1/operations?filter=payload%20contains%20%22hello%22", Scope: ScopePayload, Want: 200},
		{Path: "/api/v1/operations/stream", Scope: ScopeRead, Want: 200},
		{Path: "/api/v1/graph?window=1m", Scope: ScopeRead, Want: 200},
		{Path: "/api/v1/graph/stream", Scope: ScopeRead, Want: 200},
		{Path: "/api/v1/channels/pipe:500", Scope: ScopeRead, Want: 200},
		{Path: "/api/v1/processes/100", Scope: ScopeRead, Want: 200},
		{Path: "/api/v1/status", Scope: ScopeRead, Want: 200},
		{Path: "/api/v1/openapi.json", Scope: ScopeRead, Want: 200},
		{Path: "/healthz", Want: 200},
		{Path: "/readyz", Want: 200},
		{Path: "/", Want: 200},
		{Path: "/static/js/main.js", Want: 200},
	}
	authtest.Matrix(t, s.Handler(), endpoints)

	b, err := os.ReadFile("openapi.json")
	if err != nil {
		t.Fatal(err)
	}
	var doc struct{ Paths map[string]any }
	if err := json.Unmarshal(b, &doc); err != nil {
		t.Fatal(err)
	}
	for p := range doc.Paths {
		prefix := strings.Split(p, "{")[0]
		if !slices.ContainsFunc(endpoints, func(e authtest.Endpoint) bool { return strings.HasPrefix(e.Path, prefix) }) {
			t.Errorf("the OpenAPI document's %s is not in the matrix", p)
		}
	}
}

// The page and its files carry the same headers as the API, and a path
// that is neither the page nor the API is a 404, not the page.
func TestThePageIsServedWithTheSecurityHeaders(t *testing.T) {
	s := newTestServer(t, Options{})
	srv := httptest.NewServer(s.Handler())
	defer srv.Close()
	for _, path := range []string{"/", "/static/js/main.js", "/static/vendor/SHA256SUMS"} {
		resp, err := http.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 || resp.Header.Get("Content-Security-Policy") == "" || resp.Header.Get("Cache-Control") != "no-store" {
			t.Errorf("%s: %d, headers %v", path, resp.StatusCode, resp.Header)
		}
	}
	if code, _ := get(t, s.Handler(), "/index.php"); code != 404 {
		t.Errorf("/index.php: %d, want 404", code)
	}
}
