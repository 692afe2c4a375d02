// Package authtest checks that a server's routes are guarded as they
// should be: Matrix sends every kind of credential, for tokens and for
// basic auth, to every endpoint, and checks each answer.
//
// The server under test must be built with Config(), whose credentials
// Matrix knows.
package authtest

import (
	"strings"
	"sync"
	"time"

	"golang.org/x/crypto/argon2"
	"golang.org/x/crypto/bcrypt"

	"github.com/icptrack/icptrack/api/auth"
	"github.com/icptrack/icptrack/api/auth/credential"
)

// The names of Config's credentials: a token and a user for each scope
// (named after it), and an expired token.
const expiredName = "expired"

// userName is the user with scope: a basic-auth name cannot hold a colon.
func userName(scope string) string { return strings.ReplaceAll(scope, ":", "-") }

// credentials are Config's, with their secrets, made once per process.
type credentials struct {
	cfg      auth.Config
	tokens   map[string]string // scope → token
	expired  string
	password map[string]string // scope → the password of the user named as the scope
}

var (
	once  sync.Once
	creds credentials
)

func load() *credentials {
	once.Do(func() {
		creds = credentials{cfg: auth.Config{RateLimit: -1}, tokens: map[string]string{}, password: map[string]string{}}
		for i, scope := range credential.Scopes {
			tok, hash, err := credential.NewToken()
			if err != nil {
				panic(err)
			}
			creds.tokens[scope] = tok
			creds.cfg.Tokens = append(creds.cfg.Tokens, auth.Token{Name: scope, Hash: hash, Scopes: []string{scope}})
			pw, _, _ := credential.NewToken() // random text
			pw = "pw-" + pw[len(credential.TokenPrefix):]
			creds.password[scope] = pw
			creds.cfg.Users = append(creds.cfg.Users, auth.User{Name: userName(scope), Hash: passwordHash(pw, i%2 == 1), Scopes: []string{scope}})
		}
		tok, hash, err := credential.NewToken()
		if err != nil {
			panic(err)
		}
		creds.expired = tok
		creds.cfg.Tokens = append(creds.cfg.Tokens, auth.Token{Name: expiredName, Hash: hash, Scopes: []string{auth.ScopeAdmin},
			Expires: time.Now().Add(-time.Hour)})
	})
	return &creds
}

// passwordHash is a cheap hash (the matrix checks who is let in, not the
// cost): bcrypt or argon2id, so that both are exercised.
func passwordHash(pw string, useBcrypt bool) string {
	if useBcrypt {
		h, err := bcrypt.GenerateFromPassword([]byte(pw), bcrypt.MinCost)
		if err != nil {
			panic(err)
		}
		return string(h)
	}
	salt := []byte("authtest-salt")
	return credential.FormatArgon2id(64, 1, 1, salt, argon2.IDKey([]byte(pw), salt, 1, 64, 1, 32))
}

// Config is the credentials Matrix sends, with no rate limit: build the
// server under test with it. Each call returns a fresh copy.
func Config() auth.Config {
	c := load().cfg
	c.Tokens = append([]auth.Token(nil), c.Tokens...)
	c.Users = append([]auth.User(nil), c.Users...)
	return c
}

// Token is Config's token for scope, for tests that need one.
func Token(scope string) string { return load().tokens[scope] }
