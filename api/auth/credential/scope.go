// Package credential holds what a configuration file says about the
// API's credentials: scopes, token hashes and password hashes. It needs
// only the standard library, so that internal/config (which the Collector
// receiver also reads) can check a file without the API's dependencies.
package credential

import (
	"fmt"
	"strings"
)

// The scopes, weakest first. Each implies the ones before it.
const (
	Read        = "read"
	ReadPayload = "read:payload"
	Admin       = "admin"
)

// Scopes lists every scope, weakest first.
var Scopes = []string{Read, ReadPayload, Admin}

// rank orders scopes by what they imply: admin ⊃ read:payload ⊃ read.
func rank(scope string) int {
	for i, s := range Scopes {
		if s == scope {
			return i + 1
		}
	}
	return 0
}

// CheckScope reports a scope that is not one of Scopes.
func CheckScope(scope string) error {
	if rank(scope) == 0 {
		return fmt.Errorf("%q is not a scope: use %s", scope, strings.Join(Scopes, ", "))
	}
	return nil
}

// Grants reports whether holding the scopes in have allows what scope
// guards.
func Grants(have []string, scope string) bool {
	want := rank(scope)
	if want == 0 {
		return false
	}
	for _, s := range have {
		if rank(s) >= want {
			return true
		}
	}
	return false
}

// ParseScopes reads a comma-separated list, such as "read,admin".
func ParseScopes(s string) ([]string, error) {
	var out []string
	for _, f := range strings.Split(s, ",") {
		f = strings.TrimSpace(f)
		if err := CheckScope(f); err != nil {
			return nil, err
		}
		out = append(out, f)
	}
	return out, nil
}
