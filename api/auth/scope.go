package auth

import (
	"context"
	"net/http"
	"slices"
	"sync"
	"time"

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
	// expires is when the token expires (zero: never, or basic auth).
	expires time.Time
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

// grant is how a request was let in, for Recheck: the credentials in
// force then and the principal they gave.
type grant struct {
	mu    sync.Mutex
	creds *credentials
	p     Principal
}

type grantKey struct{}

// Recheck reports whether the credential a request was let in with still
// grants scope, under the credentials in force now. A long request (a
// stream) asks it as it goes, so that a token a reload took away or
// narrowed, or one that expired, ends what it opened rather than read on
// until the client hangs up. The request's credential is checked again
// only once after each reload (a token's hash, or a basic-auth login
// remembered for its minute), and its expiry each time.
func (a *Authenticator) Recheck(r *http.Request, scope string) bool {
	g, ok := r.Context().Value(grantKey{}).(*grant)
	if !ok {
		return false
	}
	c := a.creds.Load()
	g.mu.Lock()
	defer g.mu.Unlock()
	expired := !g.p.expires.IsZero() && !a.now().Before(g.p.expires)
	if c != g.creds || expired {
		g.creds = c
		if c.open() {
			g.p = openPrincipal()
		} else if p, _, reason := a.authenticate(c, r.Header.Values("Authorization")); reason == "" {
			g.p = p
		} else {
			g.p = Principal{} // nothing from now on
		}
	}
	return g.p.Has(scope)
}
