package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

const apiTokenHash = "sha256:e69f145108b57eeb996d8986c093342ecea465c6863d393debac2b8253e23730"

func TestAPICredentialsAreRead(t *testing.T) {
	key := filepath.Join(t.TempDir(), "api.key")
	os.WriteFile(key, []byte("key"), 0o600)
	f, err := Parse("icptrack.yaml", []byte(`api:
  tls: {cert_file: /etc/icptrack/api.pem, key_file: `+key+`}
  rate_limit: 0
  tokens:
    - {name: grafana, hash: "`+apiTokenHash+`", scopes: [read], expires: 2027-01-01T00:00:00Z}
    - name: ops
      hash: "`+apiTokenHash+`"
      scopes: [read:payload, admin]
  users:
    - {name: alice, hash: "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHRzYWx0$YWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYWE", scopes: [read]}
`))
	if err != nil {
		t.Fatal(err)
	}
	a := f.API.Auth
	if len(a.Tokens) != 2 || a.Tokens[0].Name != "grafana" || a.Tokens[0].Hash != apiTokenHash ||
		!a.Tokens[0].Expires.Equal(time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC)) || !a.Tokens[1].Expires.IsZero() ||
		strings.Join(a.Tokens[1].Scopes, ",") != "read:payload,admin" {
		t.Errorf("tokens: %+v", a.Tokens)
	}
	if len(a.Users) != 1 || a.Users[0].Name != "alice" || a.Users[0].Scopes[0] != "read" {
		t.Errorf("users: %+v", a.Users)
	}
	if a.KeyFile != key || a.CertFile != "/etc/icptrack/api.pem" || !f.Has("api.rate_limit") || a.RateLimit != 0 {
		t.Errorf("api: %+v", a)
	}
}

func TestAPICredentialMistakesNameTheirLine(t *testing.T) {
	open := filepath.Join(t.TempDir(), "open.key")
	os.WriteFile(open, []byte("key"), 0o644)
	for _, c := range []struct{ yaml, want string }{
		{"api:\n  tokens:\n    - {name: g, hash: \"sha256:abc\", scopes: [read]}\n", "x.yaml:3: api.tokens: hash is not a token hash"},
		{"api:\n  tokens:\n    - name: g\n      hash: \"" + apiTokenHash + "\"\n      scopes:\n        - read\n        - write\n", `x.yaml:7: api.tokens: "write" is not a scope: use read, read:payload, admin`},
		{"api:\n  tokens:\n    - {name: g, hash: \"" + apiTokenHash + "\", scopes: []}\n", "x.yaml:3: api.tokens: scopes must be a list"},
		{"api:\n  tokens:\n    - {name: g, hash: \"" + apiTokenHash + "\"}\n", "x.yaml:3: api.tokens: a token needs scopes"},
		{"api:\n  tokens:\n    - {name: g, hash: \"" + apiTokenHash + "\", scopes: [read], expires: tomorrow}\n", `x.yaml:3: api.tokens: expires "tomorrow" is not a time`},
		{"api:\n  tokens:\n    - {name: g, hash: \"" + apiTokenHash + "\", scopes: [read]}\n    - {name: g, hash: \"" + apiTokenHash + "\", scopes: [read]}\n", `x.yaml:4: api.tokens: token "g" is configured twice`},
		{"api:\n  tokens:\n    - {name: g, token: icpt_x, scopes: [read]}\n", `x.yaml:3: api.tokens: "token" is not a token setting: use name, hash, scopes, expires`},
		{"api:\n  tokens:\n    - {name: \"a b\", hash: \"" + apiTokenHash + "\", scopes: [read]}\n", `x.yaml:3: api.tokens: "a b" is not a name`},
		{"api:\n  users:\n    - {name: alice, hash: hunter2, scopes: [read]}\n", "x.yaml:3: api.users: hash is not a password hash"},
		{"api:\n  users:\n    - {name: alice, hash: \"$argon2id$v=19$m=9999999,t=2,p=1$c2FsdHNhbHRzYWx0$YWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYWE\", scopes: [read]}\n", "x.yaml:3: api.users: hash argon2id m=9999999,t=2 is too costly"},
		{"api:\n  tls:\n    key_file: " + open + "\n", "x.yaml:3: api.tls.key_file: API TLS key " + open + " is readable by every user: chmod 600"},
		{"api:\n  tls:\n    key_file: /nonexistent/api.key\n", "x.yaml:3: api.tls.key_file: API TLS key: stat /nonexistent/api.key: no such file"},
		{"api:\n  rate_limit: -1\n", "x.yaml:2: api.rate_limit: must be requests a second"},
		{"api:\n  tokens: icpt_abc\n", "x.yaml:2: api.tokens: must be a list of tokens"},
	} {
		_, err := Parse("x.yaml", []byte(c.yaml))
		if err == nil || !strings.HasPrefix(err.Error(), c.want) {
			t.Errorf("%s: %v\nwant %s", c.yaml, err, c.want)
		}
	}
}
