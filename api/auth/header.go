package auth

import (
	"encoding/base64"
	"errors"
	"strings"
)

// presented is what a request's Authorization header claims.
type presented struct {
	bearer   bool
	token    string // bearer
	user     string // basic
	password string // basic
}

// maxHeader bounds what is decoded: a real credential is far shorter.
const maxHeader = 1024

var errHeader = errors.New("malformed Authorization header")

// parseAuthorization reads "Bearer TOKEN" or "Basic BASE64(user:password)"
// (RFC 6750, RFC 7617). It is strict: one space after the scheme, no
// parameters, no control characters, so that nothing odd reaches the
// comparisons or the log.
func parseAuthorization(h string) (presented, error) {
	if len(h) > maxHeader {
		return presented{}, errHeader
	}
	scheme, rest, ok := strings.Cut(h, " ")
	if !ok || rest == "" || !token68(rest) {
		return presented{}, errHeader
	}
	switch {
	case strings.EqualFold(scheme, "Bearer"):
		return presented{bearer: true, token: rest}, nil
	case strings.EqualFold(scheme, "Basic"):
		b, err := base64.StdEncoding.Strict().DecodeString(rest)
		if err != nil {
			return presented{}, errHeader
		}
		user, password, ok := strings.Cut(string(b), ":")
		if !ok || user == "" || hasControl(user) || hasControl(password) {
			return presented{}, errHeader
		}
		return presented{user: user, password: password}, nil
	}
	return presented{}, errHeader
}

// token68 is RFC 7235's token68: the characters a bearer token or a
// base64 credential may hold.
func token68(s string) bool {
	end := len(s)
	for end > 0 && s[end-1] == '=' {
		end--
	}
	if end == 0 {
		return false
	}
	for i := 0; i < end; i++ {
		c := s[i]
		if !(c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' ||
			c == '-' || c == '.' || c == '_' || c == '~' || c == '+' || c == '/') {
			return false
		}
	}
	return true
}

func hasControl(s string) bool {
	for _, c := range s {
		if c < 0x20 || c == 0x7f {
			return true
		}
	}
	return false
}
