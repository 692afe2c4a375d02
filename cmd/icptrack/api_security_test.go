package main

import (
	"crypto/tls"
	"encoding/base64"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/icptrack/icptrack/internal/testca"
)

// payloadStore writes storeOps(n), each with a payload, into a new
// store, and returns its directory.
func payloadStore(t *testing.T, n int) string {
	t.Helper()
	ops := storeOps(n)
	for i, op := range ops {
		op.Payload, op.PayloadCaptured = []byte(fmt.Sprintf("secret-%05d", i)), true
	}
	dir := t.TempDir()
	writeTestStore(t, dir, "", ops)
	return dir
}

// newToken runs icptrack token new and returns the token and the line
// for api.tokens.
func newToken(t *testing.T, name, scope string) (token, line string) {
	t.Helper()
	r := run(t, "token", "new", "--scope", scope, "--name", name)
	lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
	if r.code != 0 || len(lines) != 3 {
		t.Fatalf("token new: exit %d, %q %q", r.code, r.stdout, r.stderr)
	}
	return lines[0], lines[2]
}

func writeConfig(t *testing.T, text string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "icptrack.yaml")
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// An API that would hand captured data to other hosts in clear, or to
// anyone at all, does not start; each refusal says what to set.
func TestTheAPIRefusesToServeOtherHostsWithoutCredentialsOrTLS(t *testing.T) {
	dir := payloadStore(t, 10)
	port := strings.Split(freeAddr(t), ":")[1]
	oneLineError(t, run(t, "serve", "--store", dir, "--api", "0.0.0.0:"+port), exitUsage,
		"no credentials", "loopback only", "127.0.0.1:"+port, "icptrack token new")
	_, line := newToken(t, "ci", "read")
	cfg := writeConfig(t, "api:\n  tokens:\n"+line+"\n")
	oneLineError(t, run(t, "serve", "--config", cfg, "--store", dir, "--api", "0.0.0.0:"+port), exitUsage,
		"in clear", "api.tls.cert_file", "api.insecure: true")
	oneLineError(t, run(t, "serve", "--store", dir, "--api", "nonsense"), exitUsage, "host:port")
	oneLineError(t, run(t, "serve", "--api", "127.0.0.1:"+port), exitUsage, "--store DIR")

	// api.insecure lets it serve plain HTTP on every address, with a
	// warning, and the credentials are still asked for.
	cfg = writeConfig(t, "api:\n  insecure: true\n  tokens:\n"+line+"\n")
	p := startAPIServer(t, "127.0.0.1:"+port, "serve", "--config", cfg, "--store", dir, "--api", "0.0.0.0:"+port)
	if !strings.Contains(p.stderr.String(), "plain HTTP on a non-loopback address") {
		t.Errorf("no warning at start:\n%s", p.stderr)
	}
	if resp, err := http.Get("http://127.0.0.1:" + port + "/api/v1/operations"); err != nil || resp.StatusCode != 401 {
		t.Errorf("insecure, no token: %v %v, want 401", resp, err)
	}
}

// serve with TLS and tokens made by icptrack token new, set up as the
// README says: plain HTTP, no token and a wrong token get nothing, a read
// token sees operations without their payload, and only a read:payload
// token sees payloads.
func TestTheAPIOverTLSWithTokens(t *testing.T) {
	dir := payloadStore(t, 50)
	readTok, readLine := newToken(t, "dashboard", "read")
	payloadTok, payloadLine := newToken(t, "forensics", "read:payload")
	adminTok, adminLine := newToken(t, "operator", "admin")
	ca := testca.New(t, "api")
	cert, key := ca.Issue(t, "api", false, "127.0.0.1")
	addr := freeAddr(t)
	cfg := writeConfig(t, fmt.Sprintf("api:\n  address: %s\n  tls: {cert_file: %s, key_file: %s}\n  tokens:\n%s\n%s\n%s\nstore:\n  dir: %s\n",
		addr, cert, key, readLine, payloadLine, adminLine, dir))
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: ca.Pool()}}}
	base := "https://" + addr
	p := startAPIServerAt(t, base, client, "serve", "--config", cfg)
	if log := p.stderr.String(); !strings.Contains(log, "serving the API and the live view") || !strings.Contains(log, base+"/") {
		t.Errorf("the start's log does not say where it serves:\n%s", log)
	}

	get := func(c *http.Client, u, token string) (int, http.Header, string) {
		t.Helper()
		req, _ := http.NewRequest("GET", u, nil)
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := c.Do(req)
		if err != nil {
			t.Fatalf("GET %s: %v", u, err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, resp.Header, string(b)
	}
	ops := base + "/api/v1/operations?limit=5"

	// Plain HTTP to the TLS port: a 400, and no data.
	if code, _, body := get(http.DefaultClient, "http://"+addr+"/api/v1/operations?limit=5", readTok); code != 400 || strings.Contains(body, "pipe") {
		t.Errorf("plain HTTP: %d %q, want 400 and nothing", code, body)
	}
	// A client that does not trust the certificate does not get in.
	if _, err := http.Get(ops); err == nil {
		t.Error("a client without the CA connected")
	}
	wrong, _ := newToken(t, "other", "admin") // a real token, not in this file
	for _, tok := range []string{"", wrong, readTok + "x", strings.TrimPrefix(readTok, "icpt_")} {
		code, h, body := get(client, ops, tok)
		if code != 401 || h.Get("WWW-Authenticate") == "" || strings.Contains(body, "pipe") {
			t.Errorf("token %q: %d %q, want 401 with a challenge and no data", tok, code, body)
		}
	}
	code, h, body := get(client, ops, readTok)
	if code != 200 || !strings.Contains(body, `"pipe:42"`) || strings.Contains(body, `"payload"`) {
		t.Errorf("read token: %d %s, want operations without payload", code, body)
	}
	if h.Get("Cache-Control") != "no-store" || !strings.Contains(h.Get("Content-Security-Policy"), "script-src 'self'") {
		t.Errorf("headers %v", h)
	}
	payloadFilter := base + "/api/v1/operations?filter=" + url.QueryEscape(`payload contains "secret-00007"`)
	if code, _, body := get(client, payloadFilter, readTok); code != 403 || strings.Contains(body, "pipe") {
		t.Errorf("read token, payload filter: %d %s, want 403", code, body)
	}
	if code, _, body := get(client, payloadFilter, payloadTok); code != 200 || !strings.Contains(body, base64.StdEncoding.EncodeToString([]byte("secret-00007"))) || strings.Count(body, `"pipe:42"`) != 1 {
		t.Errorf("read:payload token, payload filter: %d %s, want the one operation with its payload", code, body)
	}
	// status's details are for admin only.
	if _, _, body := get(client, base+"/api/v1/status", payloadTok); strings.Contains(body, `"store":{`) || !strings.Contains(body, "uptime_ns") {
		t.Errorf("status for read:payload: %s, want no store details", body)
	}
	if _, _, body := get(client, base+"/api/v1/status", adminTok); !strings.Contains(body, `"store":{`) || !strings.Contains(body, dir) {
		t.Errorf("status for admin: %s, want the store's details", body)
	}
	// The page needs no token: it asks for one.
	if code, _, body := get(client, base+"/", ""); code != 200 || !strings.Contains(body, "<script type=\"module\"") {
		t.Errorf("the page: %d %.200s", code, body)
	}
}
