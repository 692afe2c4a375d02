package auth

import (
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/icptrack/icptrack/api/auth/credential"
)

// without is cfg less the token named name, plus tokens.
func without(cfg Config, name string, tokens ...Token) Config {
	next := cfg
	next.Tokens = slices.DeleteFunc(slices.Clone(cfg.Tokens), func(t Token) bool { return t.Name == name })
	next.Tokens = append(next.Tokens, tokens...)
	return next
}

func newTokenFor(t *testing.T, name, scope string) (string, Token) {
	t.Helper()
	tok, hash, err := credential.NewToken()
	if err != nil {
		t.Fatal(err)
	}
	return tok, Token{Name: name, Hash: hash, Scopes: []string{scope}}
}

// A reload revokes a token at once: the next request with it gets the
// same 401 as any unknown token, and the token added works.
func TestReloadRevokesATokenAndAddsAnother(t *testing.T) {
	f := newFixture(t, 0)
	if got := f.do(t, ScopeRead, "192.0.2.1", bearer(f.tok["read"])); got.status != 200 {
		t.Fatalf("before the reload: %d", got.status)
	}
	newTok, tok := newTokenFor(t, "grafana", ScopeRead)
	if err := f.a.Reload(without(f.cfg, "read", tok)); err != nil {
		t.Fatal(err)
	}
	refused(t, "the revoked token", f.do(t, ScopeRead, "192.0.2.1", bearer(f.tok["read"])))
	if got := f.do(t, ScopeRead, "192.0.2.1", bearer(newTok)); got.status != 200 || got.body != secret+" for grafana" {
		t.Errorf("the added token: %d %q", got.status, got.body)
	}
	if got := f.do(t, ScopeRead, "192.0.2.1", bearer(f.tok["admin"])); got.status != 200 {
		t.Errorf("a token the reload kept: %d", got.status)
	}
}

// A configuration with a mistake is refused whole: the revocation it
// holds is not half applied.
func TestReloadWithAMistakeChangesNothing(t *testing.T) {
	f := newFixture(t, 0)
	_, tok := newTokenFor(t, "grafana", ScopeRead)
	bad := without(f.cfg, "read", tok, Token{Name: "typo", Hash: "sha256:abc", Scopes: []string{ScopeRead}})
	if err := f.a.Reload(bad); err == nil {
		t.Fatal("a token with a broken hash was taken")
	}
	if got := f.do(t, ScopeRead, "192.0.2.1", bearer(f.tok["read"])); got.status != 200 {
		t.Errorf("after a refused reload, the token it would have revoked: %d, want 200", got.status)
	}
	if f.a.Open() {
		t.Error("a refused reload left the authenticator open")
	}
}

func TestReloadChangesScopes(t *testing.T) {
	f := newFixture(t, 0)
	if got := f.do(t, ScopeReadPayload, "192.0.2.1", bearer(f.tok["read"])); got.status != http.StatusForbidden {
		t.Fatalf("read token on a read:payload route: %d, want 403", got.status)
	}
	next := f.cfg
	next.Tokens = slices.Clone(f.cfg.Tokens)
	next.Tokens[0].Scopes = []string{ScopeReadPayload} // "read"
	if err := f.a.Reload(next); err != nil {
		t.Fatal(err)
	}
	if got := f.do(t, ScopeReadPayload, "192.0.2.1", bearer(f.tok["read"])); got.status != 200 {
		t.Errorf("after the scope became read:payload: %d", got.status)
	}
	// And back: a narrowed scope takes effect too.
	if err := f.a.Reload(f.cfg); err != nil {
		t.Fatal(err)
	}
	if got := f.do(t, ScopeReadPayload, "192.0.2.1", bearer(f.tok["read"])); got.status != http.StatusForbidden {
		t.Errorf("after the scope went back to read: %d, want 403", got.status)
	}
}

// A right password is remembered for a minute; a reload that changes the
// user's password must not let the old one in on that memory, and one
// that leaves it alone keeps the memory (no slow hash again).
func TestReloadedPasswordIsNotLetInByTheRememberedOne(t *testing.T) {
	f := newFixture(t, 0)
	checks := 0
	orig := verifyPassword
	verifyPassword = func(h *credential.PasswordHash, p string) bool { checks++; return orig(h, p) }
	defer func() { verifyPassword = orig }()
	if got := f.do(t, ScopeRead, "192.0.2.1", basic("alice", alicePassword)); got.status != 200 {
		t.Fatalf("alice: %d", got.status)
	}
	_, tok := newTokenFor(t, "grafana", ScopeRead)
	if err := f.a.Reload(without(f.cfg, "none", tok)); err != nil {
		t.Fatal(err)
	}
	if got := f.do(t, ScopeRead, "192.0.2.1", basic("alice", alicePassword)); got.status != 200 || checks != 1 {
		t.Errorf("alice after a reload that kept her hash: %d after %d password checks, want 200 after 1", got.status, checks)
	}
	next := f.cfg
	next.Users = slices.Clone(f.cfg.Users)
	next.Users[0].Hash = cheapArgon2id(t, "a new password") // alice
	if err := f.a.Reload(next); err != nil {
		t.Fatal(err)
	}
	refused(t, "alice's old password", f.do(t, ScopeRead, "192.0.2.1", basic("alice", alicePassword)))
	if got := f.do(t, ScopeRead, "192.0.2.2", basic("alice", "a new password")); got.status != 200 {
		t.Errorf("alice's new password: %d", got.status)
	}
	next.Users = next.Users[1:]
	if err := f.a.Reload(next); err != nil {
		t.Fatal(err)
	}
	refused(t, "alice removed", f.do(t, ScopeRead, "192.0.2.3", basic("alice", "a new password")))
}

// A reload keeps what the authenticator knows of its clients: a
// credential that spent its rate stays limited, and an address held back
// for its failed logins stays held back.
func TestReloadKeepsRateLimitsAndFailedLogins(t *testing.T) {
	f := newFixture(t, 5) // burst 10
	for i := range 10 {
		if got := f.do(t, ScopeRead, "192.0.2.1", bearer(f.tok["read"])); got.status != 200 {
			t.Fatalf("request %d within the burst: %d", i, got.status)
		}
	}
	for i := range failureBurst {
		refused(t, "guess "+strconv.Itoa(i), f.do(t, ScopeRead, "198.51.100.7", bearer("icpt_guess")))
	}
	_, tok := newTokenFor(t, "grafana", ScopeRead)
	if err := f.a.Reload(without(f.cfg, "none", tok)); err != nil {
		t.Fatal(err)
	}
	if got := f.do(t, ScopeRead, "192.0.2.1", bearer(f.tok["read"])); got.status != http.StatusTooManyRequests {
		t.Errorf("a token over its rate, after a reload: %d, want 429", got.status)
	}
	if got := f.do(t, ScopeRead, "198.51.100.7", bearer(f.tok["admin"])); got.status != http.StatusTooManyRequests {
		t.Errorf("an address held back for failed logins, after a reload: %d, want 429", got.status)
	}
	// A new rate starts each credential afresh at it.
	next := without(f.cfg, "none", tok)
	next.RateLimit = 1 // burst 2
	if err := f.a.Reload(next); err != nil {
		t.Fatal(err)
	}
	for i := range 2 {
		if got := f.do(t, ScopeRead, "192.0.2.1", bearer(f.tok["read"])); got.status != 200 {
			t.Errorf("request %d at the new rate: %d", i, got.status)
		}
	}
	if got := f.do(t, ScopeRead, "192.0.2.1", bearer(f.tok["read"])); got.status != http.StatusTooManyRequests {
		t.Errorf("over the new rate: %d, want 429", got.status)
	}
}

// Requests and reloads at once (run with -race): every answer is one
// configuration's or the next one's, a 200 or a 401, and once the last
// reload returns the revoked token is refused.
func TestReloadWhileRequestsAreServed(t *testing.T) {
	f := newFixture(t, -1)
	f.a.now = time.Now
	tokA, a := newTokenFor(t, "a", ScopeRead)
	tokB, b := newTokenFor(t, "b", ScopeRead)
	withA, withB := Config{Tokens: []Token{a}, RateLimit: -1}, Config{Tokens: []Token{b}, RateLimit: -1}
	if err := f.a.Reload(withA); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	var stop atomic.Bool
	var odd atomic.Int64
	for i := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			tok := []string{tokA, tokB}[i%2]
			// Each request from another address: one that kept
			// failing would be held back (429), which is not what
			// this test is about.
			for n := 0; !stop.Load(); n++ {
				addr := "10." + strconv.Itoa(i) + "." + strconv.Itoa(n>>8&255) + "." + strconv.Itoa(n&255)
				got := f.do(t, ScopeRead, addr, bearer(tok))
				if got.status != 200 && got.status != http.StatusUnauthorized {
					odd.Add(1)
				}
			}
		}()
	}
	for i := range 200 {
		if err := f.a.Reload([]Config{withB, withA}[i%2]); err != nil {
			t.Fatal(err)
		}
	}
	stop.Store(true)
	wg.Wait()
	if n := odd.Load(); n > 0 {
		t.Errorf("%d answers were neither 200 nor 401", n)
	}
	refused(t, "b after the last reload (a only)", f.do(t, ScopeRead, "192.0.2.9", bearer(tokB)))
	if got := f.do(t, ScopeRead, "192.0.2.9", bearer(tokA)); got.status != 200 {
		t.Errorf("a after the last reload: %d", got.status)
	}
}

func TestWouldOpen(t *testing.T) {
	_, tok := newTokenFor(t, "a", ScopeRead)
	if !WouldOpen(Config{RateLimit: 3}) || WouldOpen(Config{Tokens: []Token{tok}}) || WouldOpen(Config{Users: []User{{Name: "u"}}}) {
		t.Error("WouldOpen must be true exactly when there are no tokens and no users")
	}
}

// letIn runs a request with auth through Require(scope) and returns it as
// the handler saw it, for Recheck.
func (f *fixture) letIn(t *testing.T, scope, auth string) *http.Request {
	t.Helper()
	var seen *http.Request
	r := httptest.NewRequest("GET", "/api/v1/operations/stream", nil)
	r.RemoteAddr = "192.0.2.7:40000"
	r.Header.Set("Authorization", auth)
	w := httptest.NewRecorder()
	f.a.Require(scope, http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) { seen = r })).ServeHTTP(w, r)
	if seen == nil {
		t.Fatalf("%s was not let in: %d %s", auth, w.Code, w.Body)
	}
	return seen
}

// A stream opened with a credential ends when a reload takes the
// credential away or narrows it, or when the token expires: Recheck,
// which the streams ask every second, says so.
func TestRecheckFollowsReloadsAndExpiry(t *testing.T) {
	f := newFixture(t, -1)
	read := f.letIn(t, ScopeRead, bearer(f.tok["read"]))
	payload := f.letIn(t, ScopeRead, bearer(f.tok["payload"]))
	alice := f.letIn(t, ScopeRead, basic("alice", alicePassword))
	for what, ok := range map[string]bool{
		"read token, read":        f.a.Recheck(read, ScopeRead),
		"payload token, payload":  f.a.Recheck(payload, ScopeReadPayload),
		"alice, read":             f.a.Recheck(alice, ScopeRead),
		"read token, not payload": !f.a.Recheck(read, ScopeReadPayload),
		"a request never let in":  !f.a.Recheck(httptest.NewRequest("GET", "/", nil), ScopeRead),
	} {
		if !ok {
			t.Errorf("before any reload: %s is wrong", what)
		}
	}

	// The read token revoked, the payload token narrowed to read.
	next := without(f.cfg, "read")
	for i, tok := range next.Tokens {
		if tok.Name == "payload" {
			next.Tokens[i].Scopes = []string{ScopeRead}
		}
	}
	if err := f.a.Reload(next); err != nil {
		t.Fatal(err)
	}
	if f.a.Recheck(read, ScopeRead) {
		t.Error("a stream of the revoked token goes on after the reload")
	}
	if !f.a.Recheck(payload, ScopeRead) || f.a.Recheck(payload, ScopeReadPayload) {
		t.Error("a stream of the narrowed token must read on without payloads")
	}
	if !f.a.Recheck(alice, ScopeRead) {
		t.Error("a stream of a credential the reload kept was ended")
	}
	// Each recheck judges the credentials in force: the token put back
	// is good again (a stream that found it gone has ended by then).
	if err := f.a.Reload(f.cfg); err != nil {
		t.Fatal(err)
	}
	if !f.a.Recheck(read, ScopeRead) {
		t.Error("the token is back: a recheck finds it good again")
	}

	// The payload token expires an hour after the fixture's now.
	f.now = f.now.Add(time.Hour)
	if f.a.Recheck(payload, ScopeRead) {
		t.Error("a stream of an expired token goes on")
	}
}
