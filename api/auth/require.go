package auth

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"net"
	"net/http"
	"strconv"
	"time"

	"go.uber.org/zap"
	"golang.org/x/time/rate"

	"github.com/icptrack/icptrack/api/auth/credential"
)

// Challenge is the WWW-Authenticate header of every 401.
const Challenge = `Bearer realm="icptrack", Basic realm="icptrack"`

// Failed logins a source may make at once, and then one a second. A
// source over it gets 429 whatever it sends, so that a right guess among
// wrong ones cannot be told apart while it is held back.
const (
	failureBurst = 10
	failureRate  = 1
)

// source is what is kept about an address that failed to log in.
type source struct {
	failures   *rate.Limiter
	logged     time.Time // the last failed-login line for it
	suppressed int       // failed logins since that line, not logged
}

// Require lets a request through to h when it carries a credential with
// scope; the credential's Principal is then in its context.
func (a *Authenticator) Require(scope string, h http.Handler) http.Handler {
	if err := credential.CheckScope(scope); err != nil {
		panic("auth.Require: " + err.Error()) // a route table's mistake
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// One configuration for the whole request, even if a reload
		// swaps it meanwhile.
		c := a.creds.Load()
		if c.open() {
			h.ServeHTTP(w, r.WithContext(withGrant(r.Context(), c, openPrincipal())))
			return
		}
		values := r.Header.Values("Authorization")
		if len(values) == 0 {
			unauthorized(w)
			return
		}
		now := a.now()
		addr := remoteHost(r)
		if wait := a.heldBack(addr, now); wait > 0 {
			tooMany(w, wait)
			return
		}
		p, key, reason := a.authenticate(c, values)
		if reason != "" {
			a.failed(addr, reason, now)
			unauthorized(w)
			return
		}
		if wait := take(c.limits[key], now); wait > 0 {
			tooMany(w, wait)
			return
		}
		if !p.Has(scope) {
			writeError(w, http.StatusForbidden, fmt.Sprintf("this credential lacks the scope %s", scope))
			return
		}
		h.ServeHTTP(w, r.WithContext(withGrant(r.Context(), c, p)))
	})
}

// openPrincipal is whoever asks an API that has no credentials.
func openPrincipal() Principal { return Principal{Name: "open", Scopes: credential.Scopes} }

// withGrant puts the principal, and how it was let in, in ctx.
func withGrant(ctx context.Context, c *credentials, p Principal) context.Context {
	ctx = withPrincipal(ctx, p)
	return context.WithValue(ctx, grantKey{}, &grant{creds: c, p: p})
}

// authenticate checks the Authorization header's values against c.
// reason, for the log only, is why they were refused.
func (a *Authenticator) authenticate(c *credentials, values []string) (p Principal, key, reason string) {
	if len(values) != 1 {
		return Principal{}, "", "more than one Authorization header"
	}
	h, err := parseAuthorization(values[0])
	if err != nil {
		return Principal{}, "", err.Error()
	}
	if h.bearer {
		return a.checkToken(c, h.token)
	}
	p, key, reason = a.checkUser(c, h.user, h.password)
	if reason != "" {
		reason += " " + strconv.Quote(truncate(h.user, 64))
	}
	return p, key, reason
}

// heldBack is how long addr must wait after too many failed logins.
func (a *Authenticator) heldBack(addr string, now time.Time) time.Duration {
	s, ok := a.sources.Get(addr)
	if !ok {
		return 0
	}
	return wait(s.failures, now)
}

// failed counts a failed login from addr against its allowance, and logs
// it: at most a line a second per address, with how many were not.
func (a *Authenticator) failed(addr, reason string, now time.Time) {
	a.logMu.Lock()
	defer a.logMu.Unlock()
	s, ok := a.sources.Get(addr)
	if !ok {
		s = &source{failures: rate.NewLimiter(failureRate, failureBurst)}
		a.sources.Add(addr, s)
	}
	s.failures.AllowN(now, 1)
	if now.Sub(s.logged) < time.Second {
		s.suppressed++
		return
	}
	a.log.Warn("API login failed", zap.String("source", addr), zap.String("reason", reason),
		zap.Int("suppressed", s.suppressed))
	s.logged, s.suppressed = now, 0
}

// take spends one of lim's requests, or says how long until there is one.
func take(lim *rate.Limiter, now time.Time) time.Duration {
	if d := wait(lim, now); d > 0 {
		return d
	}
	lim.AllowN(now, 1)
	return 0
}

// wait is how long until lim has a request to spend.
func wait(lim *rate.Limiter, now time.Time) time.Duration {
	if lim.Limit() == rate.Inf {
		return 0
	}
	t := lim.TokensAt(now)
	if t >= 1 {
		return 0
	}
	return time.Duration((1 - t) / float64(lim.Limit()) * float64(time.Second))
}

func remoteHost(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n] + "…"
	}
	return s
}

func unauthorized(w http.ResponseWriter) {
	w.Header().Set("WWW-Authenticate", Challenge)
	writeError(w, http.StatusUnauthorized, "a valid credential is required: send Authorization: Bearer TOKEN, or basic auth")
}

func tooMany(w http.ResponseWriter, d time.Duration) {
	secs := int(math.Ceil(d.Seconds()))
	w.Header().Set("Retry-After", strconv.Itoa(max(1, secs)))
	writeError(w, http.StatusTooManyRequests, fmt.Sprintf("too many requests: retry after %d s", max(1, secs)))
}

func writeError(w http.ResponseWriter, status int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(map[string]string{"error": msg})
}
