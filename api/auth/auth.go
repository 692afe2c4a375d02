// Package auth guards icptrack's API: bearer tokens and basic-auth users
// with scopes, failed logins logged and slowed, per-credential rate
// limits, security headers, and the policy for what address the API may
// listen on (README: "API security"). It knows nothing of the routes'
// data; the server asks it for a scope per route.
package auth

import (
	"crypto/rand"
	"crypto/sha256"
	"fmt"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	lru "github.com/hashicorp/golang-lru/v2"
	"go.uber.org/zap"
	"golang.org/x/time/rate"

	"github.com/icptrack/icptrack/api/auth/credential"
)

// DefaultRateLimit is requests a second per credential when the
// configuration gives none (api.rate_limit); the burst is twice it.
const DefaultRateLimit = 20

// Token is a configured bearer token (api.tokens).
type Token struct {
	Name    string
	Hash    string // sha256:HEX, as icptrack token new prints
	Scopes  []string
	Expires time.Time // zero: never
}

// User is a configured basic-auth user (api.users).
type User struct {
	Name   string
	Hash   string // bcrypt or argon2id
	Scopes []string
}

// Config is the API's credentials. With none, the API is open, and Listen
// keeps it on loopback.
type Config struct {
	Tokens []Token
	Users  []User
	// RateLimit is requests a second per credential: 0 means
	// DefaultRateLimit, a negative value no limit.
	RateLimit float64
}

// Authenticator checks requests against a Config. Reload gives it
// another: an operator revokes a token without a restart.
type Authenticator struct {
	// creds are the configured credentials, swapped whole by Reload: a
	// request is checked against one configuration or the next, never a
	// mix of the two.
	creds atomic.Pointer[credentials]
	// reloading makes Reloads one at a time: each carries over what the
	// one before it kept.
	reloading sync.Mutex
	checking  chan struct{} // a slot per password check under way
	// verified remembers right basic-auth logins for verifiedFor.
	verified    *lru.Cache[[sha256.Size]byte, verifiedLogin]
	loginSecret []byte
	sources     *lru.Cache[string, *source]
	logMu       sync.Mutex // guards each source's limiter and log state
	log         *zap.Logger
	now         func() time.Time
}

// credentials are one configuration's tokens and users, and a rate
// limiter for each.
type credentials struct {
	tokens []token
	users  map[string]*user
	// dummy is checked when a basic-auth user is unknown, so that an
	// unknown name costs what a wrong password does and names cannot be
	// told apart by timing.
	dummy  *credential.PasswordHash
	limits map[string]*rate.Limiter // by principal key
	// perSecond is the limiters' rate (negative: none).
	perSecond float64
}

type token struct {
	hash    []byte
	name    string
	scopes  []string
	expires time.Time
}

type user struct {
	hash   *credential.PasswordHash
	scopes []string
}

// verifiedLogin is a right basic-auth login remembered: until when, and
// against which of the user's hashes, so that a password changed by a
// reload is not let in on the strength of the old one.
type verifiedLogin struct {
	until time.Time
	hash  *credential.PasswordHash
}

// maxSources bounds the failed-login state kept, so that requests from
// many addresses cannot grow memory without end.
const maxSources = 10000

// New checks cfg and builds its Authenticator.
func New(cfg Config, log *zap.Logger) (*Authenticator, error) {
	if log == nil {
		log = zap.NewNop()
	}
	sources, err := lru.New[string, *source](maxSources)
	if err != nil {
		return nil, err
	}
	verified, err := lru.New[[sha256.Size]byte, verifiedLogin](maxSources)
	if err != nil {
		return nil, err
	}
	loginSecret := make([]byte, 32)
	if _, err := rand.Read(loginSecret); err != nil {
		return nil, fmt.Errorf("cannot read random bytes: %w", err)
	}
	c, err := newCredentials(cfg, nil)
	if err != nil {
		return nil, err
	}
	a := &Authenticator{
		verified:    verified,
		loginSecret: loginSecret,
		sources:     sources,
		log:         log,
		now:         time.Now,
		checking:    make(chan struct{}, max(2, runtime.GOMAXPROCS(0))),
	}
	a.creds.Store(c)
	return a, nil
}

// Reload checks cfg and, if it is right, checks every request from now
// on against it; if it is not, nothing changes. What the Authenticator
// knows of the clients stays: the failed logins of each address, and the
// rate limit of each credential that is still configured (unless the
// rate changed). Requests already let in finish. It does not judge
// whether cfg suits the listener: see WouldOpen.
func (a *Authenticator) Reload(cfg Config) error {
	apply, err := a.Prepare(cfg)
	if err != nil {
		return err
	}
	apply()
	return nil
}

// Prepare is Reload in two steps, for a reload of more than the
// credentials: it checks cfg and returns apply, which cannot fail, to
// put it in place once the rest is ready too.
func (a *Authenticator) Prepare(cfg Config) (apply func(), err error) {
	a.reloading.Lock()
	defer a.reloading.Unlock()
	c, err := newCredentials(cfg, a.creds.Load())
	if err != nil {
		return nil, err
	}
	return func() {
		a.reloading.Lock()
		defer a.reloading.Unlock()
		a.creds.Store(c)
	}, nil
}

// newCredentials checks cfg and builds its credentials. From prev (nil
// at the start) it keeps the limiter of each credential still there, and
// a user's parsed hash while its text is the same, so that the logins
// remembered against it stay good.
func newCredentials(cfg Config, prev *credentials) (*credentials, error) {
	c := &credentials{users: map[string]*user{}, limits: map[string]*rate.Limiter{}, perSecond: cfg.RateLimit}
	if c.perSecond == 0 {
		c.perSecond = DefaultRateLimit
	}
	limiter := func(key string) *rate.Limiter {
		if prev != nil && prev.perSecond == c.perSecond && prev.limits[key] != nil {
			return prev.limits[key]
		}
		if c.perSecond < 0 {
			return rate.NewLimiter(rate.Inf, 0)
		}
		return rate.NewLimiter(rate.Limit(c.perSecond), max(1, int(2*c.perSecond)))
	}
	for _, t := range cfg.Tokens {
		if err := checkCredential("token", t.Name, t.Scopes); err != nil {
			return nil, err
		}
		h, err := credential.ParseTokenHash(t.Hash)
		if err != nil {
			return nil, fmt.Errorf("API token %q: hash %w", t.Name, err)
		}
		key := tokenKey(t.Name)
		if c.limits[key] != nil {
			return nil, fmt.Errorf("API token %q is configured twice: give each token its own name", t.Name)
		}
		c.limits[key] = limiter(key)
		c.tokens = append(c.tokens, token{hash: h, name: t.Name, scopes: slices.Clone(t.Scopes), expires: t.Expires})
	}
	for _, u := range cfg.Users {
		if err := checkCredential("user", u.Name, u.Scopes); err != nil {
			return nil, err
		}
		if strings.ContainsAny(u.Name, ":") || hasControl(u.Name) {
			return nil, fmt.Errorf("API user %q: a basic-auth name cannot hold a colon or a control character", u.Name)
		}
		h, err := credential.ParsePasswordHash(u.Hash)
		if err != nil {
			return nil, fmt.Errorf("API user %q: hash %w", u.Name, err)
		}
		if c.users[u.Name] != nil {
			return nil, fmt.Errorf("API user %q is configured twice", u.Name)
		}
		if prev != nil && prev.users[u.Name] != nil && prev.users[u.Name].hash.Encoded == u.Hash {
			h = prev.users[u.Name].hash
		}
		c.users[u.Name] = &user{hash: h, scopes: slices.Clone(u.Scopes)}
		c.limits[userKey(u.Name)] = limiter(userKey(u.Name))
		if c.dummy == nil {
			c.dummy = h
		}
	}
	return c, nil
}

func checkCredential(kind, name string, scopes []string) error {
	if name == "" {
		return fmt.Errorf("an API %s has no name: give it one, such as name: grafana", kind)
	}
	if len(scopes) == 0 {
		return fmt.Errorf("API %s %q has no scopes: give it scopes: [read]", kind, name)
	}
	for _, s := range scopes {
		if err := credential.CheckScope(s); err != nil {
			return fmt.Errorf("API %s %q: %w", kind, name, err)
		}
	}
	return nil
}

func tokenKey(name string) string { return "token:" + name }
func userKey(name string) string  { return "user:" + name }

// Open reports whether no credentials are configured: then every request
// has every scope, and Listen serves on loopback only.
func (a *Authenticator) Open() bool { return a.creds.Load().open() }

func (c *credentials) open() bool { return len(c.tokens) == 0 && len(c.users) == 0 }

// WouldOpen reports whether cfg has no credentials: an Authenticator
// reloaded with it lets every request in.
func WouldOpen(cfg Config) bool { return len(cfg.Tokens) == 0 && len(cfg.Users) == 0 }
