package api

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/legacy"
)

func loadOpenAPI(t *testing.T) (*openapi3.T, routers.Router) {
	t.Helper()
	doc, err := openapi3.NewLoader().LoadFromData(openapiJSON)
	if err != nil {
		t.Fatal(err)
	}
	if err := doc.Validate(context.Background()); err != nil {
		t.Fatalf("openapi.json is not a valid OpenAPI 3 document: %v", err)
	}
	// The document names no host; the router must take any.
	doc.Servers = nil
	router, err := legacy.NewRouter(doc)
	if err != nil {
		t.Fatal(err)
	}
	return doc, router
}

// checkAgainstOpenAPI makes the request, and checks it and its answer
// against the document.
func checkAgainstOpenAPI(t *testing.T, router routers.Router, base, path string, wantCode int) []byte {
	t.Helper()
	req, _ := http.NewRequest("GET", base+path, nil)
	if wantCode != 401 {
		req.Header.Set("Authorization", bearer(ScopeAdmin))
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != wantCode {
		t.Fatalf("%s: %d %s, want %d", path, resp.StatusCode, body, wantCode)
	}
	route, params, err := router.FindRoute(req)
	if err != nil {
		t.Fatalf("%s is not in openapi.json: %v", path, err)
	}
	opts := &openapi3filter.Options{AuthenticationFunc: openapi3filter.NoopAuthenticationFunc, IncludeResponseStatus: true, MultiError: true}
	in := &openapi3filter.RequestValidationInput{Request: req, PathParams: params, Route: route, Options: opts}
	if wantCode != 400 {
		if err := openapi3filter.ValidateRequest(context.Background(), in); err != nil {
			t.Errorf("%s: the request does not fit openapi.json: %v", path, err)
		}
	}
	out := &openapi3filter.ResponseValidationInput{RequestValidationInput: in, Status: resp.StatusCode, Header: resp.Header, Options: opts}
	out.SetBodyBytes(body)
	if err := openapi3filter.ValidateResponse(context.Background(), out); err != nil {
		t.Errorf("%s: the answer does not fit openapi.json: %v\n%s", path, err, body)
	}
	return body
}

// checkSchema checks a stream event's data against a schema of the
// document.
func checkSchema(t *testing.T, doc *openapi3.T, schema, data string) {
	t.Helper()
	var v any
	if err := json.Unmarshal([]byte(data), &v); err != nil {
		t.Fatalf("%s: %v: %s", schema, err, data)
	}
	if err := doc.Components.Schemas[schema].Value.VisitJSON(v); err != nil {
		t.Errorf("a stream's %s does not fit openapi.json: %v\n%s", schema, err, data)
	}
}

func TestEveryEndpointAnswersAsOpenAPISays(t *testing.T) {
	defer func(d time.Duration) { graphEvery = d }(graphEvery)
	graphEvery = 20 * time.Millisecond
	doc, router := loadOpenAPI(t)
	ops := testOps(3000)
	c := newClock(ops[len(ops)-1].Time)
	live := newTestServer(t, Options{Now: c.now, Version: "test", Status: func() Status {
		return Status{Kernel: "6.12", Mechanisms: []Mechanism{{Name: "pipe", On: true}, {Name: "shm", Reason: "no BTF"}}, Drops: map[string]uint64{"ringbuf": 1}}
	}})
	for _, op := range ops {
		live.Add(op)
	}
	live.graph.sync()
	dir := writeStore(t, ops)
	served := newTestServer(t, Options{Store: openStore(t, dir), StoreDir: dir, Now: c.now})
	at := url.QueryEscape(c.now().Format(time.RFC3339Nano))
	for _, s := range []*Server{live, served} {
		srv := httptest.NewServer(s.Handler())
		t.Cleanup(srv.Close)
		for _, tc := range []struct {
			path string
			code int
		}{
			{"/api/v1/operations?limit=5&filter=" + url.QueryEscape("pid == 100"), 200},
			{"/api/v1/operations?limit=10000&from=-1h", 200},
			{"/api/v1/operations?filter=" + url.QueryEscape("pid = 1"), 400},
			{"/api/v1/operations?limit=0", 400},
			{"/api/v1/operations", 401},
			{"/api/v1/graph?window=1m&at=" + at, 200},
			{"/api/v1/graph?window=1m&filter=mechanism%20%3D%3D%20pipe&at=" + at, 200},
			{"/api/v1/graph?window=1y", 400},
			{"/api/v1/channels/" + url.PathEscape("pipe:500") + "?at=" + at, 200},
			{"/api/v1/channels/" + url.PathEscape("pipe:500|100>101") + "?at=" + at, 200},
			{"/api/v1/channels/nope?at=" + at, 404},
			{"/api/v1/processes/101?at=" + at, 200},
			{"/api/v1/processes/1?at=" + at, 404},
			{"/api/v1/status", 200},
			{"/api/v1/openapi.json", 200},
			{"/healthz", 200},
			{"/readyz", 200},
		} {
			body := checkAgainstOpenAPI(t, router, srv.URL, tc.path, tc.code)
			if tc.code == 200 && strings.HasPrefix(tc.path, "/api/v1/operations") && !bytes.Contains(body, []byte(`"time"`)) {
				t.Errorf("%s: no operations in %s", tc.path, body)
			}
		}
	}

	srv := httptest.NewServer(live.Handler())
	t.Cleanup(srv.Close)
	ops1 := openStream(t, srv, "/api/v1/operations/stream")
	graph := openStream(t, srv, "/api/v1/graph/stream")
	waitForClients(t, live, 1)
	live.Add(ops[0])
	ev := <-ops1
	checkSchema(t, doc, "Operation", ev.data)
	ev = <-graph
	checkSchema(t, doc, "Graph", ev.data)
	ev = <-graph
	checkSchema(t, doc, "GraphDiff", ev.data)
}
