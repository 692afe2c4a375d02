package credential

import (
	"encoding/base64"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
)

// PasswordHash is a stored password hash: bcrypt's modular crypt string,
// or argon2id's PHC string with its parameters read out.
type PasswordHash struct {
	Encoded string // as written in the configuration
	Bcrypt  bool
	// argon2id's parameters (zero for bcrypt)
	Memory  uint32 // KiB
	Time    uint32
	Threads uint8
	Salt    []byte
	Key     []byte
}

// bcryptHash is the modular crypt form: $2a$, $2b$ or $2y$, a two-digit
// cost, then 22 characters of salt and 31 of hash in bcrypt's base64.
var bcryptHash = regexp.MustCompile(`^\$2[aby]\$(0[4-9]|[12][0-9]|3[01])\$[./A-Za-z0-9]{53}$`)

// Limits on argon2id's parameters. A configuration is trusted, but a
// typo such as m=6553600 would make every login take gigabytes.
const (
	maxMemory = 1 << 20 // KiB: 1 GiB
	maxTime   = 64
	minSalt   = 8
	minKey    = 16
	maxKey    = 128
)

var errPasswordHash = errors.New(`is not a password hash: use bcrypt ($2b$…) or argon2id ($argon2id$v=19$m=…,t=…,p=…$salt$hash), such as icptrack token hash-password prints`)

// ParsePasswordHash reads a bcrypt or argon2id hash.
func ParsePasswordHash(s string) (*PasswordHash, error) {
	if strings.HasPrefix(s, "$2") {
		if !bcryptHash.MatchString(s) {
			return nil, errPasswordHash
		}
		return &PasswordHash{Encoded: s, Bcrypt: true}, nil
	}
	return parseArgon2id(s)
}

// parseArgon2id reads $argon2id$v=19$m=M,t=T,p=P$SALT$HASH, where SALT
// and HASH are unpadded standard base64 (the PHC string format).
func parseArgon2id(s string) (*PasswordHash, error) {
	f := strings.Split(s, "$")
	if len(f) != 6 || f[0] != "" || f[1] != "argon2id" {
		return nil, errPasswordHash
	}
	if f[2] != "v=19" {
		return nil, fmt.Errorf("argon2id version %q is not supported: use v=19", f[2])
	}
	h := &PasswordHash{Encoded: s}
	params := strings.Split(f[3], ",")
	if len(params) != 3 {
		return nil, errPasswordHash
	}
	for i, name := range []string{"m", "t", "p"} {
		v, ok := strings.CutPrefix(params[i], name+"=")
		n, err := strconv.ParseUint(v, 10, 32)
		if !ok || err != nil || n == 0 {
			return nil, errPasswordHash
		}
		switch name {
		case "m":
			h.Memory = uint32(n)
		case "t":
			h.Time = uint32(n)
		case "p":
			if n > 255 {
				return nil, errors.New("argon2id p (threads) must be 1 to 255")
			}
			h.Threads = uint8(n)
		}
	}
	if h.Memory > maxMemory || h.Time > maxTime {
		return nil, fmt.Errorf("argon2id m=%d,t=%d is too costly for a login: use at most m=%d (KiB) and t=%d", h.Memory, h.Time, maxMemory, maxTime)
	}
	if h.Memory < 8*uint32(h.Threads) {
		return nil, errors.New("argon2id m must be at least 8 KiB per thread (p)")
	}
	var err error
	if h.Salt, err = base64.RawStdEncoding.Strict().DecodeString(f[4]); err != nil || len(h.Salt) < minSalt {
		return nil, errPasswordHash
	}
	if h.Key, err = base64.RawStdEncoding.Strict().DecodeString(f[5]); err != nil || len(h.Key) < minKey || len(h.Key) > maxKey {
		return nil, errPasswordHash
	}
	return h, nil
}

// FormatArgon2id writes argon2id's PHC string.
func FormatArgon2id(memory, time uint32, threads uint8, salt, key []byte) string {
	return fmt.Sprintf("$argon2id$v=19$m=%d,t=%d,p=%d$%s$%s", memory, time, threads,
		base64.RawStdEncoding.EncodeToString(salt), base64.RawStdEncoding.EncodeToString(key))
}
