package config

import (
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/icptrack/icptrack/api/auth/credential"
)

// APIAuth holds the API's security settings (README: "API security"):
// api.tokens, api.users, api.tls, api.insecure and api.rate_limit.
type APIAuth struct {
	Tokens    []APIToken
	Users     []APIUser
	CertFile  string
	KeyFile   string
	Insecure  bool
	RateLimit float64 // requests a second per credential; 0: no limit
}

// APIToken is one of api.tokens.
type APIToken struct {
	Name    string
	Hash    string
	Scopes  []string
	Expires time.Time // zero: never
}

// APIUser is one of api.users.
type APIUser struct {
	Name   string
	Hash   string
	Scopes []string
}

// CredentialName is what a token's or user's name may be: it is written
// into logs and YAML without quoting.
var CredentialName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$`)

// lineError is a mistake at a line inside a key's value, such as one
// field of one token.
type lineError struct {
	line int
	err  error
}

func (e *lineError) Error() string { return e.err.Error() }
func (e *lineError) Unwrap() error { return e.err }

func init() {
	keys["api.insecure"] = boolean(func(f *File) *bool { return &f.API.Auth.Insecure })
	keys["api.rate_limit"] = func(f *File, n *yaml.Node) error {
		v, err := number(n)
		if err != nil {
			return err
		}
		if v < 0 {
			return errors.New("must be requests a second per credential, or 0 for no limit")
		}
		f.API.Auth.RateLimit = v
		return nil
	}
	keys["api.tls.cert_file"] = str(func(f *File) *string { return &f.API.Auth.CertFile })
	keys["api.tls.key_file"] = func(f *File, n *yaml.Node) error {
		if err := scalar(n, &f.API.Auth.KeyFile); err != nil {
			return err
		}
		_, err := credential.CheckKeyFile(f.API.Auth.KeyFile)
		return err
	}
	keys["api.tokens"] = func(f *File, n *yaml.Node) error {
		return credentials(n, "token", []string{"name", "hash", "scopes", "expires"}, func(c map[string]*yaml.Node) error {
			t := APIToken{Name: c["name"].Value, Hash: c["hash"].Value}
			if _, err := credential.ParseTokenHash(t.Hash); err != nil {
				return &lineError{c["hash"].Line, fmt.Errorf("hash %w", err)}
			}
			if e := c["expires"]; e != nil {
				at, err := time.Parse(time.RFC3339, e.Value)
				if err != nil {
					return &lineError{e.Line, fmt.Errorf("expires %q is not a time: use RFC 3339, such as 2027-01-01T00:00:00Z", e.Value)}
				}
				t.Expires = at
			}
			t.Scopes = scopesOf(c["scopes"])
			f.API.Auth.Tokens = append(f.API.Auth.Tokens, t)
			return nil
		})
	}
	keys["api.users"] = func(f *File, n *yaml.Node) error {
		return credentials(n, "user", []string{"name", "hash", "scopes"}, func(c map[string]*yaml.Node) error {
			u := APIUser{Name: c["name"].Value, Hash: c["hash"].Value, Scopes: scopesOf(c["scopes"])}
			if _, err := credential.ParsePasswordHash(u.Hash); err != nil {
				return &lineError{c["hash"].Line, fmt.Errorf("hash %w", err)}
			}
			f.API.Auth.Users = append(f.API.Auth.Users, u)
			return nil
		})
	}
}

// credentials reads a list of tokens or users: mappings with fields,
// each with a name, a hash and scopes, the names unique.
func credentials(n *yaml.Node, kind string, fields []string, add func(map[string]*yaml.Node) error) error {
	if n.Kind != yaml.SequenceNode {
		return fmt.Errorf("must be a list of %ss, such as - {name: grafana, hash: \"…\", scopes: [read]}", kind)
	}
	names := map[string]bool{}
	for _, item := range n.Content {
		if item.Kind != yaml.MappingNode {
			return &lineError{item.Line, fmt.Errorf("each %s must be a mapping of %s", kind, strings.Join(fields, ", "))}
		}
		c := map[string]*yaml.Node{}
		for i := 0; i+1 < len(item.Content); i += 2 {
			k, v := item.Content[i], item.Content[i+1]
			if !slices.Contains(fields, k.Value) {
				return &lineError{k.Line, fmt.Errorf("%q is not a %s setting: use %s", k.Value, kind, strings.Join(fields, ", "))}
			}
			if c[k.Value] != nil {
				return &lineError{k.Line, fmt.Errorf("%s is set twice", k.Value)}
			}
			if k.Value != "scopes" && v.Kind != yaml.ScalarNode {
				return &lineError{v.Line, fmt.Errorf("%s must be a single value", k.Value)}
			}
			c[k.Value] = v
		}
		for _, need := range []string{"name", "hash", "scopes"} {
			if c[need] == nil {
				return &lineError{item.Line, fmt.Errorf("a %s needs %s", kind, need)}
			}
		}
		name := c["name"]
		if !CredentialName.MatchString(name.Value) {
			return &lineError{name.Line, fmt.Errorf("%q is not a name: use letters, digits, and . _ @ -", name.Value)}
		}
		if names[name.Value] {
			return &lineError{name.Line, fmt.Errorf("%s %q is configured twice: give each its own name", kind, name.Value)}
		}
		names[name.Value] = true
		if err := checkScopes(c["scopes"]); err != nil {
			return err
		}
		if err := add(c); err != nil {
			return err
		}
	}
	return nil
}

func checkScopes(n *yaml.Node) error {
	var scopes []string
	if n.Kind != yaml.SequenceNode || n.Decode(&scopes) != nil || len(scopes) == 0 {
		return &lineError{n.Line, fmt.Errorf("scopes must be a list, such as [read] or [read, admin]; scopes are %s", strings.Join(credential.Scopes, ", "))}
	}
	for i, s := range scopes {
		if err := credential.CheckScope(s); err != nil {
			return &lineError{n.Content[i].Line, err}
		}
	}
	return nil
}

func scopesOf(n *yaml.Node) []string {
	var scopes []string
	n.Decode(&scopes) // checked by checkScopes
	return scopes
}
