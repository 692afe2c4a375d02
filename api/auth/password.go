package auth

import (
	"crypto/rand"
	"fmt"

	"golang.org/x/crypto/argon2"

	"github.com/icptrack/icptrack/api/auth/credential"
)

// argon2id's cost for new hashes: OWASP's recommendation (19 MiB, two
// passes, one thread), which keeps a login near 20 ms on a small machine.
const (
	hashMemory  = 19 * 1024
	hashTime    = 2
	hashThreads = 1
)

// HashPassword makes the argon2id hash of password for api.users.
func HashPassword(password string) (string, error) {
	salt := make([]byte, 16)
	if _, err := rand.Read(salt); err != nil {
		return "", fmt.Errorf("cannot read random bytes for a salt: %w", err)
	}
	key := argon2.IDKey([]byte(password), salt, hashTime, hashMemory, hashThreads, 32)
	return credential.FormatArgon2id(hashMemory, hashTime, hashThreads, salt, key), nil
}
