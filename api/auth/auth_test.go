package auth

import (
	"encoding/base64"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"
	"golang.org/x/crypto/argon2"
	"golang.org/x/crypto/bcrypt"

	"github.com/icptrack/icptrack/api/auth/credential"
)

// fixture is an Authenticator with a token per scope, an expired token,
// an argon2id user and a bcrypt user, a clock the test moves, and the
// log it writes.
type fixture struct {
	a    *Authenticator
	cfg  Config // a's
	now  time.Time
	logs *observer.ObservedLogs
	tok  map[string]string // by name: read, payload, admin, expired
}

const (
	alicePassword = "correct horse battery staple"
	bobPassword   = "Tr0ub4dor&3"
)

// cheapArgon2id hashes with tiny parameters: the tests check the
// format and the comparison, not the cost.
func cheapArgon2id(t *testing.T, password string) string {
	salt := []byte("saltsaltsalt")
	return credential.FormatArgon2id(64, 1, 1, salt, argon2.IDKey([]byte(password), salt, 1, 64, 1, 32))
}

func newFixture(t *testing.T, rateLimit float64) *fixture {
	t.Helper()
	f := &fixture{now: time.Date(2026, 12, 5, 12, 0, 0, 0, time.UTC), tok: map[string]string{}}
	cfg := Config{RateLimit: rateLimit}
	for _, c := range []struct {
		name    string
		scope   string
		expires time.Time
	}{
		{"read", ScopeRead, time.Time{}},
		{"payload", ScopeReadPayload, f.now.Add(time.Hour)},
		{"admin", ScopeAdmin, time.Time{}},
		{"expired", ScopeAdmin, f.now.Add(-time.Second)},
	} {
		tok, hash, err := credential.NewToken()
		if err != nil {
			t.Fatal(err)
		}
		f.tok[c.name] = tok
		cfg.Tokens = append(cfg.Tokens, Token{Name: c.name, Hash: hash, Scopes: []string{c.scope}, Expires: c.expires})
	}
	bob, err := bcrypt.GenerateFromPassword([]byte(bobPassword), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Users = []User{
		{Name: "alice", Hash: cheapArgon2id(t, alicePassword), Scopes: []string{ScopeRead}},
		{Name: "bob", Hash: string(bob), Scopes: []string{ScopeAdmin}},
	}
	core, logs := observer.New(zapcore.DebugLevel)
	f.logs = logs
	f.a, err = New(cfg, zap.New(core))
	if err != nil {
		t.Fatal(err)
	}
	f.cfg = cfg
	f.a.now = func() time.Time { return f.now }
	return f
}

// secret is what the guarded handler answers: it must never be seen
// without the right credential.
const secret = "captured operations"

func guarded(a *Authenticator, scope string) http.Handler {
	return a.Require(scope, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, ok := FromContext(r.Context())
		if !ok {
			http.Error(w, "no principal", http.StatusInternalServerError)
			return
		}
		io.WriteString(w, secret+" for "+p.Name)
	}))
}

type answer struct {
	status int
	header http.Header
	body   string
}

func (f *fixture) do(t *testing.T, scope, from string, auth ...string) answer {
	t.Helper()
	r := httptest.NewRequest("GET", "/api/v1/operations", nil)
	r.RemoteAddr = from + ":40000"
	for _, v := range auth {
		r.Header.Add("Authorization", v)
	}
	w := httptest.NewRecorder()
	guarded(f.a, scope).ServeHTTP(w, r)
	return answer{w.Code, w.Header(), w.Body.String()}
}

func bearer(tok string) string { return "Bearer " + tok }
func basic(user, password string) string {
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(user+":"+password))
}

// refused checks an answer is a 401 that says nothing: the challenge,
// and the same body whatever was wrong.
func refused(t *testing.T, what string, got answer) {
	t.Helper()
	if got.status != http.StatusUnauthorized {
		t.Errorf("%s: status %d, want 401 (body %q)", what, got.status, got.body)
	}
	if h := got.header.Get("WWW-Authenticate"); h != Challenge {
		t.Errorf("%s: WWW-Authenticate %q, want %q", what, h, Challenge)
	}
	const body = `{"error":"a valid credential is required: send Authorization: Bearer TOKEN, or basic auth"}` + "\n"
	if got.body != body {
		t.Errorf("%s: body %q, want the one 401 body %q", what, got.body, body)
	}
}

func TestRightCredentialReachesTheHandlerWithItsName(t *testing.T) {
	f := newFixture(t, 0)
	for _, c := range []struct{ auth, scope, name string }{
		{bearer(f.tok["read"]), ScopeRead, "read"},
		{bearer(f.tok["payload"]), ScopeRead, "payload"},
		{bearer(f.tok["payload"]), ScopeReadPayload, "payload"},
		{bearer(f.tok["admin"]), ScopeReadPayload, "admin"},
		{bearer(f.tok["admin"]), ScopeAdmin, "admin"},
		{strings.Replace(bearer(f.tok["read"]), "Bearer", "bearer", 1), ScopeRead, "read"},
		{basic("alice", alicePassword), ScopeRead, "alice"},
		{basic("bob", bobPassword), ScopeAdmin, "bob"},
	} {
		got := f.do(t, c.scope, "192.0.2.1", c.auth)
		if got.status != 200 || got.body != secret+" for "+c.name {
			t.Errorf("%s at %s: %d %q, want 200 for %s", c.name, c.scope, got.status, got.body, c.name)
		}
	}
}

func TestWrongTokenIsRefused(t *testing.T) {
	f := newFixture(t, 0)
	other, _, _ := credential.NewToken()
	refused(t, "a token not configured", f.do(t, ScopeRead, "192.0.2.1", bearer(other)))
	refused(t, "the token's hash sent as the token", f.do(t, ScopeRead, "192.0.2.1", bearer(credential.HashToken(f.tok["admin"]))))
}

func TestTokenWithOneBitFlippedIsRefused(t *testing.T) {
	f := newFixture(t, -1)
	tok := f.tok["admin"]
	raw, err := base64.RawURLEncoding.DecodeString(strings.TrimPrefix(tok, credential.TokenPrefix))
	if err != nil {
		t.Fatal(err)
	}
	for _, bit := range []int{0, 7, 128, 255} {
		flipped := append([]byte(nil), raw...)
		flipped[bit/8] ^= 1 << (bit % 8)
		bad := credential.TokenPrefix + base64.RawURLEncoding.EncodeToString(flipped)
		refused(t, "bit "+strconv.Itoa(bit)+" flipped", f.do(t, ScopeRead, "192.0.2."+strconv.Itoa(bit), bearer(bad)))
	}
	// And in the text: the prefix, and the last character.
	refused(t, "prefix bit flipped", f.do(t, ScopeRead, "192.0.2.9", bearer("ipct_"+tok[5:])))
	last := tok[:len(tok)-1] + string(tok[len(tok)-1]^1)
	refused(t, "last character's bit flipped", f.do(t, ScopeRead, "192.0.2.10", bearer(last)))
}

func TestCredentialWithoutTheScopeIsForbidden(t *testing.T) {
	f := newFixture(t, 0)
	for _, c := range []struct{ auth, scope string }{
		{bearer(f.tok["read"]), ScopeReadPayload},
		{bearer(f.tok["read"]), ScopeAdmin},
		{bearer(f.tok["payload"]), ScopeAdmin},
		{basic("alice", alicePassword), ScopeAdmin},
	} {
		got := f.do(t, c.scope, "192.0.2.1", c.auth)
		if got.status != http.StatusForbidden || strings.Contains(got.body, secret) || got.header.Get("WWW-Authenticate") != "" {
			t.Errorf("%s at %s: %d %q, want a bare 403", c.auth, c.scope, got.status, got.body)
		}
	}
}

func TestExpiredTokenIsRefused(t *testing.T) {
	f := newFixture(t, 0)
	refused(t, "expired", f.do(t, ScopeRead, "192.0.2.1", bearer(f.tok["expired"])))
	// payload's expires an hour on: it works until then, and not after.
	if got := f.do(t, ScopeRead, "192.0.2.1", bearer(f.tok["payload"])); got.status != 200 {
		t.Fatalf("before it expires: %d", got.status)
	}
	f.now = f.now.Add(time.Hour)
	refused(t, "at its expiry", f.do(t, ScopeRead, "192.0.2.1", bearer(f.tok["payload"])))
}

func TestUnknownUserCostsAPasswordCheckAndIsRefused(t *testing.T) {
	f := newFixture(t, 0)
	checks := 0
	orig := verifyPassword
	verifyPassword = func(h *credential.PasswordHash, pw string) bool { checks++; return orig(h, pw) }
	defer func() { verifyPassword = orig }()
	refused(t, "unknown user", f.do(t, ScopeRead, "192.0.2.1", basic("mallory", alicePassword)))
	if checks != 1 {
		t.Errorf("an unknown user cost %d password checks, want 1 (as a wrong password does), so that names cannot be told apart by time", checks)
	}
	refused(t, "right user, wrong password", f.do(t, ScopeRead, "192.0.2.1", basic("alice", bobPassword)))
	refused(t, "bcrypt user, wrong password", f.do(t, ScopeRead, "192.0.2.1", basic("bob", alicePassword)))
	refused(t, "user name in another case", f.do(t, ScopeRead, "192.0.2.1", basic("Alice", alicePassword)))
	refused(t, "empty password", f.do(t, ScopeRead, "192.0.2.1", basic("alice", "")))
}

func TestTokensAndPasswordsDoNotCrossSchemes(t *testing.T) {
	f := newFixture(t, 0)
	refused(t, "token over basic, named", f.do(t, ScopeRead, "192.0.2.1", basic("read", f.tok["read"])))
	refused(t, "token as basic's whole credential", f.do(t, ScopeRead, "192.0.2.1", "Basic "+f.tok["read"]))
	refused(t, "password as a bearer token", f.do(t, ScopeRead, "192.0.2.1", bearer(alicePassword)))
	refused(t, "basic's credential as a bearer token", f.do(t, ScopeRead, "192.0.2.1", strings.Replace(basic("alice", alicePassword), "Basic", "Bearer", 1)))
}

func TestMalformedOrInjectedHeadersAreRefusedAlike(t *testing.T) {
	f := newFixture(t, -1)
	tok := f.tok["admin"]
	for i, h := range []string{
		"",
		"Bearer",
		"Bearer ",
		"Bearer  " + tok,
		tok,
		"Token " + tok,
		"Bearer " + tok + " ",
		"Bearer " + tok + "\r\nX-Scope: admin",
		"Bearer " + tok + "\nX",
		"Bearer " + tok + ", Basic YWxpY2U6eA==",
		"Bearer " + tok + "\x00",
		"Bearer\t" + tok,
		"Basic " + base64.StdEncoding.EncodeToString([]byte("alice\r\nX-Admin: 1:"+alicePassword)),
		"Basic " + base64.StdEncoding.EncodeToString([]byte("alice")),
		"Basic " + base64.StdEncoding.EncodeToString([]byte(":"+alicePassword)),
		"Basic " + base64.RawStdEncoding.EncodeToString([]byte("alice:"+alicePassword+"x")),
		"Basic " + strings.Repeat("A", 2000),
	} {
		refused(t, strconv.Quote(h), f.do(t, ScopeRead, "192.0.2."+strconv.Itoa(i), h))
	}
	refused(t, "two Authorization headers", f.do(t, ScopeRead, "192.0.2.100", bearer(tok), bearer(tok)))
	refused(t, "no Authorization header", f.do(t, ScopeRead, "192.0.2.101"))
}

func TestTokenIsComparedInConstantTimeWithEveryToken(t *testing.T) {
	f := newFixture(t, 0)
	calls := 0
	orig := compare
	compare = func(x, y []byte) int { calls++; return orig(x, y) }
	defer func() { compare = orig }()
	// read is the first token configured: a search that stopped at the
	// match would make it the fastest to find.
	if got := f.do(t, ScopeRead, "192.0.2.1", bearer(f.tok["read"])); got.status != 200 {
		t.Fatalf("status %d", got.status)
	}
	if calls != len(f.a.creds.Load().tokens) {
		t.Errorf("the constant-time compare ran %d times for %d tokens: every token must be compared, through it", calls, len(f.a.creds.Load().tokens))
	}
}

func TestBruteForceIsHeldBackWith429(t *testing.T) {
	f := newFixture(t, 0)
	for i := range failureBurst {
		refused(t, "guess "+strconv.Itoa(i), f.do(t, ScopeRead, "198.51.100.7", basic("alice", "guess"+strconv.Itoa(i))))
	}
	got := f.do(t, ScopeRead, "198.51.100.7", basic("alice", alicePassword))
	if got.status != http.StatusTooManyRequests || got.header.Get("Retry-After") != "1" || strings.Contains(got.body, secret) {
		t.Fatalf("the right password after %d wrong ones: %d Retry-After %q %q, want 429 Retry-After 1 (a right guess must look like a wrong one while held back)",
			failureBurst, got.status, got.header.Get("Retry-After"), got.body)
	}
	if got := f.do(t, ScopeRead, "198.51.100.8", basic("alice", alicePassword)); got.status != 200 {
		t.Errorf("another address is held back too: %d", got.status)
	}
	f.now = f.now.Add(time.Second)
	if got := f.do(t, ScopeRead, "198.51.100.7", basic("alice", alicePassword)); got.status != 200 {
		t.Errorf("a second later: %d, want 200", got.status)
	}
}

func TestEachCredentialIsRateLimited(t *testing.T) {
	f := newFixture(t, 5) // burst 10
	for i := range 10 {
		if got := f.do(t, ScopeRead, "192.0.2.1", bearer(f.tok["read"])); got.status != 200 {
			t.Fatalf("request %d within the burst: %d", i, got.status)
		}
	}
	got := f.do(t, ScopeRead, "192.0.2.2", bearer(f.tok["read"]))
	if got.status != http.StatusTooManyRequests || got.header.Get("Retry-After") != "1" {
		t.Fatalf("over the rate, from another address: %d Retry-After %q, want 429 and 1", got.status, got.header.Get("Retry-After"))
	}
	if got := f.do(t, ScopeRead, "192.0.2.1", bearer(f.tok["admin"])); got.status != 200 {
		t.Errorf("another credential is limited too: %d", got.status)
	}
	f.now = f.now.Add(200 * time.Millisecond)
	if got := f.do(t, ScopeRead, "192.0.2.1", bearer(f.tok["read"])); got.status != 200 {
		t.Errorf("one request's time later (5/s): %d", got.status)
	}
}

func TestFailedLoginsAreLoggedALineASecondPerSource(t *testing.T) {
	f := newFixture(t, 0)
	for range 5 {
		f.do(t, ScopeRead, "203.0.113.5", basic("alice", "hunter2"))
	}
	f.do(t, ScopeRead, "203.0.113.6", bearer(f.tok["expired"]))
	f.now = f.now.Add(time.Second)
	f.do(t, ScopeRead, "203.0.113.5", basic("mallory", alicePassword))
	lines := f.logs.All()
	if len(lines) != 3 {
		t.Fatalf("%d lines, want 3 (one per source per second): %v", len(lines), lines)
	}
	want := []struct {
		source, reason string
		suppressed     int64
	}{
		{"203.0.113.5", `wrong password "alice"`, 0},
		{"203.0.113.6", `token "expired" expired`, 0},
		{"203.0.113.5", `unknown user "mallory"`, 4},
	}
	for i, w := range want {
		m := lines[i].ContextMap()
		if m["source"] != w.source || m["reason"] != w.reason || m["suppressed"] != w.suppressed {
			t.Errorf("line %d: %v, want source %s reason %q suppressed %d", i, m, w.source, w.reason, w.suppressed)
		}
		for _, s := range []string{"hunter2", alicePassword, f.tok["expired"]} {
			if strings.Contains(lines[i].Message+" "+strings.Join(fieldStrings(m), " "), s) {
				t.Errorf("line %d logs a secret: %v", i, m)
			}
		}
	}
}

func fieldStrings(m map[string]any) []string {
	var out []string
	for _, v := range m {
		if s, ok := v.(string); ok {
			out = append(out, s)
		}
	}
	return out
}

func TestOpenAuthenticatorLetsEverythingThroughWithEveryScope(t *testing.T) {
	a, err := New(Config{}, nil)
	if err != nil || !a.Open() {
		t.Fatalf("New(no credentials): open %v, %v", a != nil && a.Open(), err)
	}
	w := httptest.NewRecorder()
	a.Require(ScopeAdmin, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, _ := FromContext(r.Context())
		if !p.Has(ScopeAdmin) || !p.Has(ScopeReadPayload) || !p.Has(ScopeRead) {
			t.Errorf("open principal %v lacks a scope", p)
		}
	})).ServeHTTP(w, httptest.NewRequest("GET", "/", nil))
	if w.Code != 200 {
		t.Errorf("status %d", w.Code)
	}
	if f := newFixture(t, 0); f.a.Open() {
		t.Error("an authenticator with credentials says it is open")
	}
}

func TestBadConfigurationIsRefused(t *testing.T) {
	_, hash, _ := credential.NewToken()
	for _, c := range []struct {
		cfg  Config
		want string
	}{
		{Config{Tokens: []Token{{Name: "g", Hash: "sha256:abc", Scopes: []string{"read"}}}}, "is not a token hash"},
		{Config{Tokens: []Token{{Name: "g", Hash: hash, Scopes: []string{"write"}}}}, `"write" is not a scope`},
		{Config{Tokens: []Token{{Name: "g", Hash: hash}}}, "has no scopes"},
		{Config{Tokens: []Token{{Name: "g", Hash: hash, Scopes: []string{"read"}}, {Name: "g", Hash: hash, Scopes: []string{"read"}}}}, "configured twice"},
		{Config{Users: []User{{Name: "a", Hash: "plaintext", Scopes: []string{"read"}}}}, "is not a password hash"},
		{Config{Users: []User{{Hash: "plaintext", Scopes: []string{"read"}}}}, "has no name"},
		{Config{Users: []User{{Name: "read:payload", Hash: "plaintext", Scopes: []string{"read"}}}}, "cannot hold a colon"},
	} {
		_, err := New(c.cfg, nil)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%+v: %v, want %q", c.cfg, err, c.want)
		}
	}
}

func TestHashPasswordVerifies(t *testing.T) {
	h, err := HashPassword(alicePassword)
	if err != nil {
		t.Fatal(err)
	}
	p, err := credential.ParsePasswordHash(h)
	if err != nil {
		t.Fatalf("%s: %v", h, err)
	}
	if p.Memory != hashMemory || !verifyPassword(p, alicePassword) || verifyPassword(p, alicePassword+" ") {
		t.Errorf("%s does not verify its password alone", h)
	}
	if h2, _ := HashPassword(alicePassword); h2 == h {
		t.Error("two hashes of one password are equal: the salt is not random")
	}
}

func TestHeadersAreSetOnEveryResponse(t *testing.T) {
	w := httptest.NewRecorder()
	Headers(http.NotFoundHandler()).ServeHTTP(w, httptest.NewRequest("GET", "/x", nil))
	for k, v := range map[string]string{
		"Cache-Control":           "no-store",
		"X-Content-Type-Options":  "nosniff",
		"Referrer-Policy":         "no-referrer",
		"X-Frame-Options":         "DENY",
		"Content-Security-Policy": "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'",
	} {
		if got := w.Header().Get(k); got != v {
			t.Errorf("%s: %q, want %q", k, got, v)
		}
	}
}

func TestPasswordChecksAreBoundedUnderConcurrentLogins(t *testing.T) {
	f := newFixture(t, -1)
	f.a.now = time.Now // goroutines read it
	var mu sync.Mutex
	running, most := 0, 0
	orig := verifyPassword
	verifyPassword = func(h *credential.PasswordHash, pw string) bool {
		mu.Lock()
		running++
		most = max(most, running)
		mu.Unlock()
		time.Sleep(5 * time.Millisecond)
		mu.Lock()
		running--
		mu.Unlock()
		return orig(h, pw)
	}
	defer func() { verifyPassword = orig }()
	var wg sync.WaitGroup
	codes := make([]int, 40)
	for i := range codes {
		wg.Go(func() {
			pw := alicePassword
			if i%2 == 1 {
				pw = "wrong"
			}
			codes[i] = f.do(t, ScopeRead, "192.0.2."+strconv.Itoa(i), basic("alice", pw)).status
		})
	}
	wg.Wait()
	for i, c := range codes {
		if want := []int{200, 401}[i%2]; c != want {
			t.Errorf("login %d: %d, want %d", i, c, want)
		}
	}
	if most > cap(f.a.checking) || most < 2 {
		t.Errorf("%d password checks ran at once, want 2 to %d", most, cap(f.a.checking))
	}
}
