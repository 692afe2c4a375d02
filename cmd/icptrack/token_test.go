package main

import (
	"encoding/base64"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/icptrack/icptrack/api/auth"
	"github.com/icptrack/icptrack/internal/config"
)

// loadAPIConfig writes lines under api.KEY in a configuration file, loads
// it as icptrack would, and builds its Authenticator.
func loadAPIConfig(t *testing.T, key string, lines ...string) *auth.Authenticator {
	t.Helper()
	path := filepath.Join(t.TempDir(), "icptrack.yaml")
	if err := os.WriteFile(path, []byte("api:\n  "+key+":\n"+strings.Join(lines, "\n")+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	f, err := config.Load(path)
	if err != nil {
		t.Fatalf("the printed line does not load: %v", err)
	}
	cfg, _, _ := auth.FromFile(f)
	a, err := auth.New(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func allowed(a *auth.Authenticator, scope, authorization string) int {
	w := httptest.NewRecorder()
	r := httptest.NewRequest("GET", "/api/v1/status", nil)
	r.Header.Set("Authorization", authorization)
	a.Require(scope, http.HandlerFunc(func(http.ResponseWriter, *http.Request) {})).ServeHTTP(w, r)
	return w.Code
}

func TestTokenNewPrintsATokenAndTheLineThatAcceptsIt(t *testing.T) {
	r := run(t, "token", "new", "--scope", "read:payload", "--name", "grafana", "--expires", "30d")
	lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
	if r.code != 0 || len(lines) != 3 || !strings.HasPrefix(lines[0], "icpt_") || !strings.HasPrefix(lines[2], "    - {name: grafana, hash: \"sha256:") ||
		!strings.Contains(lines[2], "scopes: [read:payload], expires: ") {
		t.Fatalf("exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
	}
	if strings.Contains(lines[2], lines[0]) {
		t.Fatal("the configuration line holds the token itself")
	}
	a := loadAPIConfig(t, "tokens", lines[2])
	if got := allowed(a, "read:payload", "Bearer "+lines[0]); got != 200 {
		t.Errorf("the new token at its scope: %d", got)
	}
	if got := allowed(a, "admin", "Bearer "+lines[0]); got != 403 {
		t.Errorf("the new token above its scope: %d", got)
	}
	if again := run(t, "token", "new", "--scope", "read"); strings.HasPrefix(again.stdout, lines[0]) {
		t.Error("two runs printed the same token")
	}
}

func TestTokenHashPasswordLineAcceptsThatPasswordOnly(t *testing.T) {
	cmd := exec.Command(binary, "token", "hash-password", "--name", "alice", "--scope", "read,admin")
	cmd.Stdin = strings.NewReader("correct horse\n")
	r := runCmd(t, cmd)
	if r.code != 0 || !strings.HasPrefix(r.stdout, "    - {name: alice, hash: \"$argon2id$v=19$") {
		t.Fatalf("exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
	}
	a := loadAPIConfig(t, "users", strings.TrimRight(r.stdout, "\n"))
	basic := func(pw string) string { return "Basic " + base64.StdEncoding.EncodeToString([]byte("alice:"+pw)) }
	if got := allowed(a, "admin", basic("correct horse")); got != 200 {
		t.Errorf("the password hashed: %d", got)
	}
	if got := allowed(a, "read", basic("correct horse\n")); got != 401 {
		t.Errorf("the password with its newline: %d, want 401 (the newline is not part of it)", got)
	}
}

func TestTokenMistakesAreUsageErrors(t *testing.T) {
	oneLineError(t, run(t, "token", "new"), exitUsage, "--scope is required")
	oneLineError(t, run(t, "token", "new", "--scope", "read,write"), exitUsage, `"write" is not a scope`)
	oneLineError(t, run(t, "token", "new", "--scope", "read", "--expires", "soon"), exitUsage, "--expires", "90d")
	oneLineError(t, run(t, "token", "new", "--scope", "read", "--expires", "2001-01-01T00:00:00Z"), exitUsage, "in the past")
	oneLineError(t, run(t, "token", "new", "--scope", "read", "--name", "a b"), exitUsage, "is not a name")
	cmd := exec.Command(binary, "token", "hash-password")
	cmd.Stdin = strings.NewReader("")
	oneLineError(t, runCmd(t, cmd), exitUsage, "the password is empty")
}
