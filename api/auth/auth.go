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
	"strings"
	"sync"
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

// Authenticator checks requests against a Config.
type Authenticator struct {
	tokens []token
	users  map[string]*user
	// dummy is checked when a basic-auth user is unknown, so that an
	// unknown name costs what a wrong password does and names cannot be
	// told apart by timing.
	dummy    *credential.PasswordHash
	checking chan struct{} // a slot per password check under way
	// verified remembers right basic-auth logins for verifiedFor.
	verified    *lru.Cache[[sha256.Size]byte, time.Time]
	loginSecret []byte
	limits      map[string]*rate.Limiter // by principal key
	sources     *lru.Cache[string, *source]
	logMu       sync.Mutex // guards each source's limiter and log state
	log         *zap.Logger
	now         func() time.Time
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
	verified, err := lru.New[[sha256.Size]byte, time.Time](maxSources)
	if err != nil {
		return nil, err
	}
	loginSecret := make([]byte, 32)
	if _, err := rand.Read(loginSecret); err != nil {
		return nil, fmt.Errorf("cannot read random bytes: %w", err)
	}
	a := &Authenticator{
		verified:    verified,
		loginSecret: loginSecret,
		users:       map[string]*user{},
		limits:      map[string]*rate.Limiter{},
		sources:     sources,
		log:         log,
		now:         time.Now,
		checking:    make(chan struct{}, max(2, runtime.GOMAXPROCS(0))),
	}
	perSecond := cfg.RateLimit
	if perSecond == 0 {
		perSecond = DefaultRateLimit
	}
	limiter := func() *rate.Limiter {
		if perSecond < 0 {
			return rate.NewLimiter(rate.Inf, 0)
		}
		return rate.NewLimiter(rate.Limit(perSecond), max(1, int(2*perSecond)))
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
		if a.limits[key] != nil {
			return nil, fmt.Errorf("API token %q is configured twice: give each token its own name", t.Name)
		}
		a.limits[key] = limiter()
		a.tokens = append(a.tokens, token{hash: h, name: t.Name, scopes: t.Scopes, expires: t.Expires})
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
		if a.users[u.Name] != nil {
			return nil, fmt.Errorf("API user %q is configured twice", u.Name)
		}
		a.users[u.Name] = &user{hash: h, scopes: u.Scopes}
		a.limits[userKey(u.Name)] = limiter()
		if a.dummy == nil {
			a.dummy = h
		}
	}
	return a, nil
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
func (a *Authenticator) Open() bool { return len(a.tokens) == 0 && len(a.users) == 0 }
