package api

import (
	"encoding/json"
	"net/http/httptest"
	"strings"
	"testing"
)

// FuzzQueryParameters: whatever the query string, the data routes answer
// 200, or 400 with a JSON error that names a parameter (404 for a
// channel or process not there); never a 500 or a panic.
func FuzzQueryParameters(f *testing.F) {
	for _, seed := range []string{
		"filter=pid%20%3D%3D%201&from=-15m&limit=5",
		"filter=comm%20%3D%20x", "from=2026-12-05T10:00:00Z&to=2026-12-05T09:00:00Z",
		"limit=-1", "cursor=bTU", "cursor=czEuMi4z", "window=1h", "window=0s", "at=+1h",
		"filter=%28%28%28", "filter=payload%20contains%20%22x%22", "limit=99999999999999999999",
	} {
		f.Add("/api/v1/operations", seed)
		f.Add("/api/v1/graph", seed)
	}
	f.Add("/api/v1/channels/pipe:500", "window=10s")
	f.Add("/api/v1/processes/101", "at=-1s")
	s, err := New(Options{Window: 500})
	if err != nil {
		f.Fatal(err)
	}
	defer s.Close()
	for _, op := range testOps(500) {
		s.Add(op)
	}
	routes := []string{"/api/v1/operations", "/api/v1/graph", "/api/v1/channels/pipe:500", "/api/v1/processes/101", "/api/v1/status"}
	f.Fuzz(func(t *testing.T, path, query string) {
		if !strings.HasPrefix(path, "/api/v1/") {
			path = routes[len(path)%len(routes)]
		}
		req := httptest.NewRequest("GET", "/", nil)
		req.URL.Path, req.URL.RawQuery = path, query
		w := httptest.NewRecorder()
		s.Handler().ServeHTTP(w, req)
		switch w.Code {
		case 200, 404, 405, 301, 307:
		case 400:
			var e paramError
			if err := json.Unmarshal(w.Body.Bytes(), &e); err != nil || e.Error == "" || e.Parameter == "" {
				t.Fatalf("%s?%s: 400 without a parameter error: %s", path, query, w.Body)
			}
		default:
			t.Fatalf("%s?%s: %d %s", path, query, w.Code, w.Body)
		}
	})
}
