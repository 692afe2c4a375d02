package main

import (
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/icptrack/icptrack/internal/config"
)

// startReloadable runs icptrack trace with a configuration file written
// with text, until it traces.
func startReloadable(t *testing.T, text string) *traceAgent {
	t.Helper()
	a := startTraceAgent(t, writeConfig(t, text))
	a.waitFor("icptrack is tracing", 1)
	return a
}

// bearerGet gets url with the bearer token tok (none if ""), and returns
// the status and the body.
func bearerGet(t *testing.T, url, tok string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest("GET", url, nil)
	if tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// waitReady waits until the API at base answers /readyz with 200.
func waitReady(t *testing.T, base string) {
	t.Helper()
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		if resp, err := http.Get(base + "/readyz"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("the API at %s was not ready in 20s", base)
		}
	}
}

// An operator revokes a token by editing api.tokens and reloading, and
// the attacker who holds it is out from the next request: its 401 is
// every other 401. A mistake in the file, or a file that would leave an
// API beyond loopback with no credentials, changes nothing; a scope
// changed by a reload takes effect.
func TestReloadRevokesAnAPITokenAtOnce(t *testing.T) {
	needsBPF(t)
	tokA, lineA := newToken(t, "leaked", "read")
	tokB, lineB := newToken(t, "grafana", "read")
	port := strings.Split(freeAddr(t), ":")[1]
	base := "http://127.0.0.1:" + port
	// Every address, plain HTTP: the case where an open API would be
	// anyone's, which is why a reload must not leave it open.
	head := "trace:\n  comms: [no-such-process]\napi:\n  address: 0.0.0.0:" + port + "\n  insecure: true\n"
	a := startReloadable(t, head+"  tokens:\n"+lineA+"\n")
	waitReady(t, base)

	get := func(path, tok string) (int, string) {
		t.Helper()
		return bearerGet(t, base+path, tok)
	}
	const ops = "/api/v1/operations?limit=1"
	payloadOps := "/api/v1/operations?limit=1&filter=" + url.QueryEscape(`payload contains "x"`)
	_, unknown := get(ops, "icpt_"+strings.Repeat("A", 43))
	if code, _ := get(ops, tokA); code != 200 {
		t.Fatalf("token A before the reload: %d", code)
	}
	if code, _ := get(ops, tokB); code != 401 {
		t.Fatalf("token B before it is configured: %d", code)
	}
	// The holder of A follows the operations stream: revoking A must end
	// it too, not only refuse A's next request.
	req, _ := http.NewRequest("GET", base+"/api/v1/operations/stream", nil)
	req.Header.Set("Authorization", "Bearer "+tokA)
	stream, err := http.DefaultClient.Do(req)
	if err != nil || stream.StatusCode != 200 {
		t.Fatalf("token A's stream: %v %v", err, stream)
	}
	defer stream.Body.Close()
	streamEnded := make(chan time.Time, 1)
	go func() {
		_, _ = io.Copy(io.Discard, stream.Body)
		streamEnded <- time.Now()
	}()

	// A out, B in; and a listener setting, which waits for a restart.
	a.reload(head+"  window: 5000\n  tokens:\n"+lineB+"\n", 1)
	reloaded := time.Now()
	select {
	case end := <-streamEnded:
		t.Logf("token A's stream ended %s after the reload", end.Sub(reloaded).Round(time.Millisecond))
	case <-time.After(10 * time.Second):
		t.Error("token A's stream still runs 10 s after the reload revoked A")
	}
	if code, body := get(ops, tokA); code != 401 || body != unknown {
		t.Errorf("the revoked token A: %d %q, want the 401 any unknown token gets (%q)", code, body, unknown)
	}
	if code, _ := get(ops, tokB); code != 200 {
		t.Errorf("token B once added: %d", code)
	}
	if log := a.stderr.String(); !strings.Contains(log, "credentials changed") || !strings.Contains(log, "api.window") {
		t.Errorf("the log does not say the credentials changed and api.window waits for a restart:\n%s", log)
	}

	// A broken entry: the file is refused whole, A stays out, B in.
	a.refuse(head+"  tokens:\n"+lineB+"\n"+strings.Replace(lineA, "sha256:", "sha256:zz", 1)+"\n", 1)
	if code, _ := get(ops, tokA); code != 401 {
		t.Errorf("token A after a broken reload: %d, want 401", code)
	}
	if code, _ := get(ops, tokB); code != 200 {
		t.Errorf("token B after a broken reload: %d, want 200", code)
	}

	// B's scope widened to read:payload: its payload filter is let in.
	if code, _ := get(payloadOps, tokB); code != 403 {
		t.Fatalf("token B (read) filtering on payloads: %d, want 403", code)
	}
	a.reload(head+"  tokens:\n"+strings.Replace(lineB, "[read]", "[read:payload]", 1)+"\n", 2)
	if code, body := get(payloadOps, tokB); code != 200 {
		t.Errorf("token B (read:payload) filtering on payloads: %d %s, want 200", code, body)
	}

	// No credentials at all on 0.0.0.0 would let anyone in: refused, and
	// the API still asks for B.
	a.refuse(head, 2)
	if !strings.Contains(a.stderr.String(), "beyond this host") {
		t.Errorf("the refusal does not say why:\n%s", a.stderr)
	}
	if code, _ := get(ops, ""); code != 401 {
		t.Errorf("no token after a reload to no credentials: %d, want 401", code)
	}
	if code, _ := get(ops, tokB); code != 200 {
		t.Errorf("token B after the refused reload: %d, want 200", code)
	}
	a.stop()
}

// On loopback, an API may be open (as at a start with no credentials):
// a reload may take every credential away, with a warning, and give them
// back.
func TestReloadOpensAndClosesALoopbackAPI(t *testing.T) {
	needsBPF(t)
	tok, line := newToken(t, "ci", "read")
	addr := freeAddr(t)
	head := "trace:\n  comms: [no-such-process]\napi:\n  address: " + addr + "\n"
	a := startReloadable(t, head+"  tokens:\n"+line+"\n")
	base := "http://" + addr
	waitReady(t, base)
	status := func(tok string) int {
		t.Helper()
		code, _ := bearerGet(t, base+"/api/v1/status", tok)
		return code
	}
	if status("") != 401 || status(tok) != 200 {
		t.Fatal("before the reload, the token is not asked for")
	}
	a.reload(head, 1)
	if code := status(""); code != 200 || !strings.Contains(a.stderr.String(), "no credentials now") {
		t.Errorf("open on loopback: %d, want 200 and a warning:\n%s", code, a.stderr)
	}
	a.reload(head+"  tokens:\n"+line+"\n", 2)
	if status("") != 401 || status(tok) != 200 {
		t.Error("credentials given back by a reload are not asked for")
	}
	a.stop()
}

// The credentials and the store are reloaded; the API's listener waits
// for a restart, and the warning names each of its settings that changed.
func TestRestartOnlyChangesNameTheAPIListenerAlone(t *testing.T) {
	a := &config.File{}
	b := &config.File{}
	b.API.Auth.Tokens = []config.APIToken{{Name: "ci"}}
	b.API.Auth.RateLimit, b.API.MaxStreams = 3, 9
	b.Store.Dir, b.Store.MaxAge = "/var/lib/icptrack", time.Hour
	if got := restartOnlyChanges(a, b); len(got) != 0 {
		t.Errorf("credentials, max_streams and the store: %v, want nothing for a restart", got)
	}
	b.API.Address, b.API.Window, b.API.Auth.CertFile, b.API.Auth.Insecure = "0.0.0.0:9470", 5, "cert.pem", true
	if got := strings.Join(restartOnlyChanges(a, b), " "); got != "api.address api.window api.tls api.insecure" {
		t.Errorf("the listener's settings: %q, want api.address api.window api.tls api.insecure", got)
	}
}

// serve reloads its credentials on SIGHUP too: a token taken out of the
// file is refused, one put in works, and serve runs on.
func TestServeReloadsItsCredentialsOnSIGHUP(t *testing.T) {
	dir := payloadStore(t, 10)
	tokA, lineA := newToken(t, "old", "read")
	tokB, lineB := newToken(t, "new", "read")
	addr := freeAddr(t)
	head := "store:\n  dir: " + dir + "\napi:\n  address: " + addr + "\n"
	cfg := writeConfig(t, head+"  tokens:\n"+lineA+"\n")
	p := startAPIServer(t, addr, "serve", "--config", cfg)
	status := func(tok string) int {
		t.Helper()
		code, _ := bearerGet(t, "http://"+addr+"/api/v1/operations?limit=1", tok)
		return code
	}
	if a, b := status(tokA), status(tokB); a != 200 || b != 401 {
		t.Fatalf("before the reload: A %d, B %d; want 200 and 401", a, b)
	}
	if err := os.WriteFile(cfg, []byte(head+"  tokens:\n"+lineB+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := p.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(10 * time.Second); !strings.Contains(p.stderr.String(), "reloaded the configuration"); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("serve did not say it reloaded:\n%s", p.stderr)
		}
	}
	if a, b := status(tokA), status(tokB); a != 401 || b != 200 {
		t.Errorf("after the reload: A %d, B %d; want 401 and 200", a, b)
	}
}
