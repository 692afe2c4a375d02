package auth

import (
	"crypto/sha256"
	"crypto/subtle"
	"strconv"

	"golang.org/x/crypto/argon2"
	"golang.org/x/crypto/bcrypt"

	"github.com/icptrack/icptrack/api/auth/credential"
)

// compare is how token hashes are compared: in constant time, so that
// how long a refusal takes says nothing of how close a guess was. A
// variable so that a test can see it is on the path.
var compare = subtle.ConstantTimeCompare

// verifyPassword checks a password against its stored hash (a variable
// so that a test can count that an unknown user costs a check too).
var verifyPassword = func(h *credential.PasswordHash, password string) bool {
	if h.Bcrypt {
		return bcrypt.CompareHashAndPassword([]byte(h.Encoded), []byte(password)) == nil
	}
	key := argon2.IDKey([]byte(password), h.Salt, h.Time, h.Memory, h.Threads, uint32(len(h.Key)))
	return subtle.ConstantTimeCompare(key, h.Key) == 1
}

// checkToken finds the configured token whose hash is tok's. Every token
// is compared, whatever matched, so that the time taken does not depend
// on where in the list a match is.
func (a *Authenticator) checkToken(tok string) (Principal, string, string) {
	if !credential.LooksLikeToken(tok) {
		return Principal{}, "", "malformed token"
	}
	sum := sha256.Sum256([]byte(tok))
	var found *token
	for i := range a.tokens {
		if compare(sum[:], a.tokens[i].hash) == 1 && found == nil {
			found = &a.tokens[i]
		}
	}
	if found == nil {
		return Principal{}, "", "unknown token"
	}
	if !found.expires.IsZero() && !a.now().Before(found.expires) {
		return Principal{}, "", "token " + strconv.Quote(found.name) + " expired"
	}
	return Principal{Name: found.name, Scopes: found.scopes}, tokenKey(found.name), ""
}

// checkUser checks a basic-auth user and password.
func (a *Authenticator) checkUser(name, password string) (Principal, string, string) {
	// At most a few checks at once: each takes argon2id's memory (19
	// MiB by default), and logins from many addresses must not add up to
	// all of the machine's.
	a.checking <- struct{}{}
	defer func() { <-a.checking }()
	u := a.users[name]
	if u == nil {
		if a.dummy != nil {
			verifyPassword(a.dummy, password)
		}
		return Principal{}, "", "unknown user"
	}
	if !verifyPassword(u.hash, password) {
		return Principal{}, "", "wrong password"
	}
	return Principal{Name: name, Scopes: u.scopes}, userKey(name), ""
}
