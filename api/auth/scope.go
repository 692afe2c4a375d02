package auth

import (
	"context"
	"slices"

	"github.com/icptrack/icptrack/api/auth/credential"
)

// The scopes a handler may require (README: "API security").
const (
	ScopeRead        = credential.Read
	ScopeReadPayload = credential.ReadPayload
	ScopeAdmin       = credential.Admin
)

// Principal is who made a request: a token's or a user's name, and the
// scopes configured for it.
type Principal struct {
	Name   string
	Scopes []string
}

// Has reports whether p may do what scope guards; admin implies
// read:payload, which implies read.
func (p Principal) Has(scope string) bool { return credential.Grants(p.Scopes, scope) }

type principalKey struct{}

// FromContext is the principal Require let through.
func FromContext(ctx context.Context) (Principal, bool) {
	p, ok := ctx.Value(principalKey{}).(Principal)
	return p, ok
}

func withPrincipal(ctx context.Context, p Principal) context.Context {
	p.Scopes = slices.Clone(p.Scopes) // a handler cannot widen what others see
	return context.WithValue(ctx, principalKey{}, p)
}
