package auth

import (
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"strconv"
	"time"

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

// checkToken finds the token of c whose hash is tok's. Every token is
// compared, whatever matched, so that the time taken does not depend on
// where in the list a match is.
func (a *Authenticator) checkToken(c *credentials, tok string) (Principal, string, string) {
	if !credential.LooksLikeToken(tok) {
		return Principal{}, "", "malformed token"
	}
	sum := sha256.Sum256([]byte(tok))
	var found *token
	for i := range c.tokens {
		if compare(sum[:], c.tokens[i].hash) == 1 && found == nil {
			found = &c.tokens[i]
		}
	}
	if found == nil {
		return Principal{}, "", "unknown token"
	}
	if !found.expires.IsZero() && !a.now().Before(found.expires) {
		return Principal{}, "", "token " + strconv.Quote(found.name) + " expired"
	}
	return Principal{Name: found.name, Scopes: found.scopes, expires: found.expires}, tokenKey(found.name), ""
}

// checkUser checks a basic-auth user and password against c's users.
func (a *Authenticator) checkUser(c *credentials, name, password string) (Principal, string, string) {
	u := c.users[name]
	if u != nil && a.recentlyVerified(name, password, u.hash) {
		return Principal{Name: name, Scopes: u.scopes}, userKey(name), ""
	}
	// At most a few checks at once: each takes argon2id's memory (19
	// MiB by default), and logins from many addresses must not add up to
	// all of the machine's.
	a.checking <- struct{}{}
	defer func() { <-a.checking }()
	if u == nil {
		if c.dummy != nil {
			verifyPassword(c.dummy, password)
		}
		return Principal{}, "", "unknown user"
	}
	if !verifyPassword(u.hash, password) {
		return Principal{}, "", "wrong password"
	}
	a.verified.Add(a.loginKey(name, password), verifiedLogin{until: a.now().Add(verifiedFor), hash: u.hash})
	return Principal{Name: name, Scopes: u.scopes}, userKey(name), ""
}

// verifiedFor is how long a right password is remembered: a script that
// polls with basic auth pays the slow hash once a minute, not per
// request. Only right passwords are remembered, so a hit tells a client
// nothing that the 200 does not.
const verifiedFor = time.Minute

// recentlyVerified reports whether name and password were found right
// against hash (the user's hash now) less than verifiedFor ago.
func (a *Authenticator) recentlyVerified(name, password string, hash *credential.PasswordHash) bool {
	v, ok := a.verified.Get(a.loginKey(name, password))
	return ok && v.hash == hash && a.now().Before(v.until)
}

// loginKey identifies a user and password in memory without keeping the
// password: an HMAC under a key made at start.
func (a *Authenticator) loginKey(name, password string) [sha256.Size]byte {
	m := hmac.New(sha256.New, a.loginSecret)
	m.Write([]byte(name))
	m.Write([]byte{0}) // names cannot hold NUL (parseAuthorization)
	m.Write([]byte(password))
	var k [sha256.Size]byte
	m.Sum(k[:0])
	return k
}
