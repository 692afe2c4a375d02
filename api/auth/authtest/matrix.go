package authtest

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/icptrack/icptrack/api/auth"
	"github.com/icptrack/icptrack/api/auth/credential"
)

// Endpoint is a route and the scope it needs.
type Endpoint struct {
	Method string // default GET
	Path   string // with its query, such as /api/v1/graph?window=1m
	// Scope is what the route requires; "" for a route with no auth
	// (health, the page), which every credential must reach alike.
	Scope string
	// Want is the status with a good enough credential; 0 means any 2xx.
	Want int
}

// reporter is what Matrix needs of a *testing.T.
type reporter interface {
	Helper()
	Errorf(format string, args ...any)
}

// Matrix sends every kind of credential to every endpoint of h, for
// tokens and for basic auth: none, wrong, expired or unknown, a weaker
// scope, the scope itself and admin. A route with a scope must answer
// 401 (with the challenge) to the first three, 403 to a weaker scope, and
// let the others through; 401 and 403 bodies must be an error (and the
// parameter it is about) and nothing else. Every answer must carry
// auth.Headers' headers. h must be built with Config().
func Matrix(t testing.TB, h http.Handler, endpoints []Endpoint) {
	t.Helper()
	matrix(t, h, endpoints)
}

// kind is one credential sent, and what a route with scope must answer.
type kind struct {
	name   string
	header string // Authorization, "" for none
	want   int    // 401, 403, or 0: let through
}

func kinds(scope string) []kind {
	c := load()
	basic := func(user, pw string) string {
		return "Basic " + base64.StdEncoding.EncodeToString([]byte(user+":"+pw))
	}
	wrongToken, _, _ := credential.NewToken()
	ks := []kind{
		{"no credential", "", http.StatusUnauthorized},
		{"token: wrong", "Bearer " + wrongToken, http.StatusUnauthorized},
		{"token: expired", "Bearer " + c.expired, http.StatusUnauthorized},
		{"token: right scope", "Bearer " + c.tokens[scope], 0},
		{"token: admin", "Bearer " + c.tokens[auth.ScopeAdmin], 0},
		{"basic: wrong password", basic(userName(scope), c.password[scope]+"x"), http.StatusUnauthorized},
		{"basic: unknown user", basic("nobody", c.password[scope]), http.StatusUnauthorized},
		{"basic: right scope", basic(userName(scope), c.password[scope]), 0},
		{"basic: admin", basic(userName(auth.ScopeAdmin), c.password[auth.ScopeAdmin]), 0},
	}
	if i := slices.Index(credential.Scopes, scope); i > 0 {
		weaker := credential.Scopes[i-1]
		ks = append(ks,
			kind{"token: weaker scope " + weaker, "Bearer " + c.tokens[weaker], http.StatusForbidden},
			kind{"basic: weaker scope " + weaker, basic(userName(weaker), c.password[weaker]), http.StatusForbidden})
	}
	return ks
}

// source gives each request its own address, so that the wrong
// credentials do not add up to a failed-login hold-back (429).
var source atomic.Uint32

func matrix(t reporter, h http.Handler, endpoints []Endpoint) {
	t.Helper()
	for _, e := range endpoints {
		method := e.Method
		if method == "" {
			method = http.MethodGet
		}
		scope := e.Scope
		if scope == "" {
			scope = auth.ScopeRead // the credentials to send; all must pass
		}
		for _, k := range kinds(scope) {
			what := fmt.Sprintf("%s %s with %s", method, e.Path, k.name)
			got := send(h, method, e.Path, k.header)
			if got == nil {
				t.Errorf("%s: no answer within %s", what, answerTimeout)
				continue
			}
			want := k.want
			if e.Scope == "" {
				want = 0
			}
			check(t, what, e, want, got)
		}
	}
}

func check(t reporter, what string, e Endpoint, want int, got *httptest.ResponseRecorder) {
	t.Helper()
	status := got.Code
	switch {
	case want != 0 && status != want:
		t.Errorf("%s: status %d, want %d", what, status, want)
		return
	case want == 0 && e.Want != 0 && status != e.Want:
		t.Errorf("%s: status %d, want %d", what, status, e.Want)
		return
	case want == 0 && e.Want == 0 && (status < 200 || status > 299):
		t.Errorf("%s: status %d, want 2xx", what, status)
		return
	}
	for _, h := range []string{"Cache-Control", "X-Content-Type-Options", "Content-Security-Policy"} {
		if got.Header().Get(h) == "" {
			t.Errorf("%s: no %s header (wrap the server in auth.Headers)", what, h)
		}
	}
	if status != http.StatusUnauthorized && status != http.StatusForbidden {
		return
	}
	if status == http.StatusUnauthorized && got.Header().Get("WWW-Authenticate") != auth.Challenge {
		t.Errorf("%s: 401 with WWW-Authenticate %q, want %q", what, got.Header().Get("WWW-Authenticate"), auth.Challenge)
	}
	// An error and, at most, the parameter it is about: no data.
	var body map[string]any
	err := json.Unmarshal(got.Body.Bytes(), &body)
	delete(body, "parameter")
	if err != nil || len(body) != 1 || body["error"] == nil {
		t.Errorf("%s: %d body %q, want only {\"error\": ...}", what, status, truncate(got.Body.String()))
	}
}

// answerTimeout bounds a request; a stream is cut once it has answered.
const answerTimeout = 10 * time.Second

// send makes one request. A stream (SSE) would not end by itself, so its
// request is cancelled as soon as the status is written.
func send(h http.Handler, method, path, authorization string) *httptest.ResponseRecorder {
	ctx, cancel := context.WithTimeout(context.Background(), answerTimeout)
	defer cancel()
	r := httptest.NewRequest(method, path, nil).WithContext(ctx)
	n := source.Add(1)
	r.RemoteAddr = fmt.Sprintf("[2001:db8::%x:%x]:40000", n>>16, n&0xffff)
	if authorization != "" {
		r.Header.Set("Authorization", authorization)
	}
	w := &cutOff{ResponseRecorder: httptest.NewRecorder(), cancel: cancel}
	done := make(chan struct{})
	go func() {
		defer close(done)
		h.ServeHTTP(w, r)
	}()
	select {
	case <-done:
		return w.ResponseRecorder
	case <-time.After(answerTimeout + time.Second):
		return nil
	}
}

// cutOff cancels the request once its status is written.
type cutOff struct {
	*httptest.ResponseRecorder
	cancel context.CancelFunc
}

func (c *cutOff) WriteHeader(code int) {
	c.ResponseRecorder.WriteHeader(code)
	c.cancel()
}

func (c *cutOff) Write(b []byte) (int, error) {
	defer c.cancel()
	return c.ResponseRecorder.Write(b)
}

func (c *cutOff) Flush() {
	c.ResponseRecorder.Flush()
	c.cancel()
}

func truncate(s string) string {
	if len(s) > 200 {
		return s[:200] + "…"
	}
	return strings.TrimSpace(s)
}
