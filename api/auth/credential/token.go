package credential

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
)

// TokenPrefix starts every token, so that a leaked one is recognisable
// (secret scanners look for such prefixes).
const TokenPrefix = "icpt_"

// tokenBytes of randomness: a token is as strong as a 256-bit key, so a
// fast hash is enough to store it (no password-style stretching needed).
const tokenBytes = 32

// TokenLen is a token's length in characters.
var TokenLen = len(TokenPrefix) + base64.RawURLEncoding.EncodedLen(tokenBytes)

// hashPrefix names the hash function in a stored token hash.
const hashPrefix = "sha256:"

// NewToken makes a random token and the hash to put in the configuration.
func NewToken() (token, hash string, err error) {
	b := make([]byte, tokenBytes)
	if _, err := rand.Read(b); err != nil {
		return "", "", fmt.Errorf("cannot read random bytes for a token: %w", err)
	}
	token = TokenPrefix + base64.RawURLEncoding.EncodeToString(b)
	return token, HashToken(token), nil
}

// HashToken is the stored form of a token: the SHA-256 of the whole
// token string, in hex, after "sha256:".
func HashToken(token string) string {
	sum := sha256.Sum256([]byte(token))
	return hashPrefix + hex.EncodeToString(sum[:])
}

// ParseTokenHash reads a stored token hash into its 32 bytes.
func ParseTokenHash(s string) ([]byte, error) {
	h, ok := strings.CutPrefix(s, hashPrefix)
	b, err := hex.DecodeString(h)
	if !ok || err != nil || len(b) != sha256.Size {
		return nil, errors.New("is not a token hash: use the sha256:… line that icptrack token new prints")
	}
	return b, nil
}

// LooksLikeToken reports whether s has a token's shape. It says nothing
// about whether s is a valid token; it lets a caller refuse junk before
// hashing it.
func LooksLikeToken(s string) bool {
	if len(s) != TokenLen || !strings.HasPrefix(s, TokenPrefix) {
		return false
	}
	for _, c := range s[len(TokenPrefix):] {
		if !(c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}
