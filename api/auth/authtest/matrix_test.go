package authtest

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/icptrack/icptrack/api/auth"
)

// routes mimics the contract's server: health and the page open, the
// API's routes at read, and handlers that trim by scope.
func routes(t *testing.T, mutate func(mux *http.ServeMux, a *auth.Authenticator)) http.Handler {
	a, err := auth.New(Config(), nil)
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, "ok") })
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, "<html>") })
	operations := func(w http.ResponseWriter, r *http.Request) {
		p, _ := auth.FromContext(r.Context())
		op := map[string]any{"op": "write", "bytes": 5}
		if p.Has(auth.ScopeReadPayload) {
			op["payload"] = "aGVsbG8="
		}
		json.NewEncoder(w).Encode(map[string]any{"operations": []any{op}})
	}
	stream := func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		w.WriteHeader(200)
		w.(http.Flusher).Flush()
		<-r.Context().Done() // a stream ends only when its client goes
	}
	mux.Handle("GET /api/v1/operations", a.Require(auth.ScopeRead, http.HandlerFunc(operations)))
	mux.Handle("GET /api/v1/operations/stream", a.Require(auth.ScopeRead, http.HandlerFunc(stream)))
	mux.Handle("GET /api/v1/payloads", a.Require(auth.ScopeReadPayload, http.HandlerFunc(operations)))
	mux.Handle("GET /api/v1/admin", a.Require(auth.ScopeAdmin, http.HandlerFunc(operations)))
	if mutate != nil {
		mutate(mux, a)
	}
	return auth.Headers(mux)
}

var endpoints = []Endpoint{
	{Path: "/healthz"},
	{Path: "/"},
	{Path: "/api/v1/operations?limit=5", Scope: auth.ScopeRead},
	{Path: "/api/v1/operations/stream", Scope: auth.ScopeRead},
	{Path: "/api/v1/payloads", Scope: auth.ScopeReadPayload},
	{Path: "/api/v1/admin", Scope: auth.ScopeAdmin},
}

func TestMatrixPassesAServerGuardedAsItShouldBe(t *testing.T) {
	start := time.Now()
	Matrix(t, routes(t, nil), endpoints)
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("the matrix took %s: a stream was not cut", d)
	}
}

// recorder is a testing.TB that keeps what Matrix reports.
type recorder struct {
	testing.TB
	errors []string
}

func (r *recorder) Helper() {}
func (r *recorder) Errorf(format string, args ...any) {
	r.errors = append(r.errors, fmt.Sprintf(format, args...))
}

func TestMatrixCatchesMisguardedRoutes(t *testing.T) {
	for _, c := range []struct {
		name   string
		mutate func(*http.ServeMux, *auth.Authenticator)
		ep     Endpoint
		want   []string
	}{
		{"a route left unguarded", func(mux *http.ServeMux, a *auth.Authenticator) {
			mux.HandleFunc("GET /api/v1/graph", func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, "{}") })
		}, Endpoint{Path: "/api/v1/graph", Scope: auth.ScopeRead}, []string{"with no credential: status 200, want 401", "token: wrong: status 200, want 401", "basic: unknown user: status 200, want 401"}},
		{"a route guarded below its scope", func(mux *http.ServeMux, a *auth.Authenticator) {
			mux.Handle("GET /api/v1/status", a.Require(auth.ScopeRead, http.NotFoundHandler()))
		}, Endpoint{Path: "/api/v1/status", Scope: auth.ScopeAdmin, Want: 404}, []string{"token: weaker scope read:payload: status 404, want 403"}},
		{"a route guarded above its scope", func(mux *http.ServeMux, a *auth.Authenticator) {
			mux.Handle("GET /api/v1/graph", a.Require(auth.ScopeAdmin, http.NotFoundHandler()))
		}, Endpoint{Path: "/api/v1/graph", Scope: auth.ScopeRead, Want: 404}, []string{"token: right scope: status 403, want 404", "basic: right scope: status 403, want 404"}},
		{"a 403 that leaks data", func(mux *http.ServeMux, a *auth.Authenticator) {
			mux.Handle("GET /api/v1/leak", a.Require(auth.ScopeRead, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				p, _ := auth.FromContext(r.Context())
				if !p.Has(auth.ScopeAdmin) {
					w.WriteHeader(403)
					fmt.Fprint(w, `{"error":"admin only","kernel":"6.1"}`)
				}
			})))
		}, Endpoint{Path: "/api/v1/leak", Scope: auth.ScopeAdmin}, []string{`403 body "{\"error\":\"admin only\",\"kernel\":\"6.1\"}", want only {"error": ...}`}},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := &recorder{}
			Matrix(r, routes(t, c.mutate), []Endpoint{c.ep})
			all := strings.Join(r.errors, "\n")
			for _, w := range c.want {
				if !strings.Contains(all, w) {
					t.Errorf("Matrix did not report %q; it reported:\n%s", w, all)
				}
			}
		})
	}
	t.Run("a response without the security headers", func(t *testing.T) {
		r := &recorder{}
		a, _ := auth.New(Config(), nil)
		Matrix(r, a.Require(auth.ScopeRead, http.NotFoundHandler()), []Endpoint{{Path: "/x", Scope: auth.ScopeRead, Want: 404}})
		if len(r.errors) == 0 || !strings.Contains(r.errors[0], "wrap the server in auth.Headers") {
			t.Errorf("reported %q", r.errors)
		}
	})
}
