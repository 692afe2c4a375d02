package store

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"filippo.io/age"
)

// A keyring holds the key-encryption keys segments are encrypted under.
// The current one encrypts new segments; the others are kept to read
// old ones. With age recipients, every key is also kept wrapped for
// them, and a key that is no longer current is kept only wrapped: the
// host can then no longer read the segments it encrypted, and whoever
// holds a recipient's identity still can.
//
// The file is JSON, readable by its owner only:
//
//	{"icptrack_keyring": 1, "recipients": ["age1…"],
//	 "keys": [{"id": "…", "created": "…", "current": true, "key": "<base64>", "wrapped": "<base64 age>"}, …]}

// CredentialName is the keyring's name as a systemd credential
// (LoadCredential=icptrack-keyring:/etc/icptrack/keyring): with no key
// file given, $CREDENTIALS_DIRECTORY/icptrack-keyring is used.
const CredentialName = "icptrack-keyring"

const keyringVersion = 1

// Keyring is a loaded keyring file.
type Keyring struct {
	Path       string
	Recipients []string
	Keys       []*Key
}

// Key is one key-encryption key.
type Key struct {
	// ID is what segment headers name: 16 hex digits of SHA-256 of
	// "icptrack key id v1", a zero byte and the key.
	ID      string
	Created time.Time
	Current bool
	secret  []byte // nil while only wrapped
	wrapped []byte // age-encrypted secret; nil without recipients
}

// Readable reports whether the key's secret is at hand.
func (k *Key) Readable() bool { return k.secret != nil }

// Wrapped reports whether the key is kept for age recipients.
func (k *Key) Wrapped() bool { return k.wrapped != nil }

type keyringFile struct {
	Version    int        `json:"icptrack_keyring"`
	Recipients []string   `json:"recipients,omitempty"`
	Keys       []keyEntry `json:"keys"`
}

type keyEntry struct {
	ID      string    `json:"id"`
	Created time.Time `json:"created"`
	Current bool      `json:"current,omitempty"`
	Key     string    `json:"key,omitempty"`
	Wrapped string    `json:"wrapped,omitempty"`
}

func keyID(secret []byte) [keyIDSize]byte {
	h := sha256.New()
	h.Write([]byte("icptrack key id v1\x00"))
	h.Write(secret)
	var id [keyIDSize]byte
	copy(id[:], h.Sum(nil))
	return id
}

// ResolveKeyFile is the keyring to use: path, or with none, the systemd
// credential when $CREDENTIALS_DIRECTORY holds one ("" when neither).
func ResolveKeyFile(path string) string {
	if path != "" {
		return path
	}
	if dir := os.Getenv("CREDENTIALS_DIRECTORY"); dir != "" {
		p := filepath.Join(dir, CredentialName)
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	return ""
}

// checkPrivate refuses a secret file that users other than its owner
// may read or write.
func checkPrivate(path string, info fs.FileInfo) error {
	if perm := info.Mode().Perm(); perm&0o077 != 0 {
		return fmt.Errorf("%s can be read or written by other users (mode %04o): run chmod 600 %s", path, perm, path)
	}
	return nil
}

// LoadKeyring reads a keyring file, refusing one others may read.
func LoadKeyring(path string) (*Keyring, error) {
	f, err := os.Open(path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("keyring %s does not exist: create one with icptrack keys new --keyring %s", path, path)
		}
		return nil, fmt.Errorf("keyring: %w", err)
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("keyring: %w", err)
	}
	if err := checkPrivate(path, info); err != nil {
		return nil, fmt.Errorf("keyring refused: %w", err)
	}
	b, err := io.ReadAll(io.LimitReader(f, 16<<20))
	if err != nil {
		return nil, fmt.Errorf("keyring %s: %w", path, err)
	}
	var kf keyringFile
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&kf); err != nil || kf.Version != keyringVersion {
		return nil, fmt.Errorf("keyring %s is not an icptrack keyring (version %d): make one with icptrack keys new", path, keyringVersion)
	}
	kr := &Keyring{Path: path, Recipients: kf.Recipients}
	current := 0
	for _, e := range kf.Keys {
		k := &Key{ID: e.ID, Created: e.Created, Current: e.Current}
		if e.Key != "" {
			if k.secret, err = base64.StdEncoding.DecodeString(e.Key); err != nil || len(k.secret) != 32 {
				return nil, fmt.Errorf("keyring %s: key %s is damaged", path, e.ID)
			}
			if id := keyID(k.secret); hex.EncodeToString(id[:]) != e.ID {
				return nil, fmt.Errorf("keyring %s: key %s does not have that id: the file is damaged", path, e.ID)
			}
		}
		if e.Wrapped != "" {
			if k.wrapped, err = base64.StdEncoding.DecodeString(e.Wrapped); err != nil {
				return nil, fmt.Errorf("keyring %s: the wrapped copy of key %s is damaged", path, e.ID)
			}
		}
		if k.secret == nil && k.wrapped == nil {
			return nil, fmt.Errorf("keyring %s: key %s has neither a key nor a wrapped copy", path, e.ID)
		}
		if k.Current {
			current++
			if k.secret == nil {
				return nil, fmt.Errorf("keyring %s: the current key %s is only wrapped: icptrack keys rotate makes a new current key", path, e.ID)
			}
		}
		kr.Keys = append(kr.Keys, k)
	}
	if current > 1 {
		return nil, fmt.Errorf("keyring %s has %d current keys: the file is damaged", path, current)
	}
	return kr, nil
}

// NewKeyring creates a keyring at path with one new key, wrapped for
// recipients if any. It refuses to overwrite a file.
func NewKeyring(path string, recipients []string) (*Keyring, error) {
	kr := &Keyring{Path: path, Recipients: recipients}
	if err := kr.addKey(); err != nil {
		return nil, err
	}
	if err := kr.write(true); err != nil {
		return nil, err
	}
	return kr, nil
}

// Rotate adds a new current key. recipients, if given, replace the
// keyring's. With recipients, the keys no longer current are kept only
// wrapped.
func (kr *Keyring) Rotate(recipients []string) error {
	if recipients != nil {
		kr.Recipients = recipients
	}
	for _, k := range kr.Keys {
		k.Current = false
	}
	if err := kr.addKey(); err != nil {
		return err
	}
	if err := kr.write(false); err != nil {
		return err
	}
	for _, k := range kr.Keys {
		if !k.Current && k.wrapped != nil && k.secret != nil {
			clear(k.secret)
			k.secret = nil
		}
	}
	return nil
}

func (kr *Keyring) addKey() error {
	rcpts, err := parseRecipients(kr.Recipients)
	if err != nil {
		return err
	}
	secret := make([]byte, 32)
	if _, err := rand.Read(secret); err != nil {
		return err
	}
	id := keyID(secret)
	k := &Key{ID: hex.EncodeToString(id[:]), Created: time.Now().UTC().Truncate(time.Second), Current: true, secret: secret}
	kr.Keys = append(kr.Keys, k)
	if len(rcpts) == 0 {
		return nil
	}
	for _, k := range kr.Keys {
		if k.secret != nil && k.wrapped == nil {
			if k.wrapped, err = wrap(k.secret, rcpts); err != nil {
				return err
			}
		}
	}
	return nil
}

func parseRecipients(list []string) ([]age.Recipient, error) {
	if len(list) == 0 {
		return nil, nil
	}
	r, err := age.ParseRecipients(strings.NewReader(strings.Join(list, "\n")))
	if err != nil {
		return nil, fmt.Errorf("age recipient: %v: give a public key such as age1… (age-keygen -y prints one)", err)
	}
	return r, nil
}

func wrap(secret []byte, rcpts []age.Recipient) ([]byte, error) {
	var buf bytes.Buffer
	w, err := age.Encrypt(&buf, rcpts...)
	if err != nil {
		return nil, fmt.Errorf("wrap a key for age recipients: %w", err)
	}
	if _, err := w.Write(secret); err != nil {
		return nil, err
	}
	if err := w.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// write saves the keyring: a new file (fresh), or in place of the old
// through a temporary file, readable by its owner only.
func (kr *Keyring) write(fresh bool) error {
	kf := keyringFile{Version: keyringVersion, Recipients: kr.Recipients}
	for _, k := range kr.Keys {
		e := keyEntry{ID: k.ID, Created: k.Created, Current: k.Current}
		// A key kept for recipients is kept in the clear only while it
		// is current: the point of recipients is that the host forgets.
		if k.secret != nil && (k.Current || k.wrapped == nil) {
			e.Key = base64.StdEncoding.EncodeToString(k.secret)
		}
		if k.wrapped != nil {
			e.Wrapped = base64.StdEncoding.EncodeToString(k.wrapped)
		}
		kf.Keys = append(kf.Keys, e)
	}
	b, err := json.MarshalIndent(kf, "", "  ")
	if err != nil {
		return err
	}
	b = append(b, '\n')
	if fresh {
		f, err := os.OpenFile(kr.Path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if err != nil {
			if errors.Is(err, fs.ErrExist) {
				return fmt.Errorf("keyring %s exists already: use icptrack keys rotate to add a key to it", kr.Path)
			}
			return fmt.Errorf("keyring: %w", err)
		}
		if _, err := f.Write(b); err != nil {
			f.Close()
			return fmt.Errorf("keyring: %w", err)
		}
		if err := f.Sync(); err != nil {
			f.Close()
			return fmt.Errorf("keyring: %w", err)
		}
		return f.Close()
	}
	tmp := kr.Path + ".tmp"
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return fmt.Errorf("keyring: %w", err)
	}
	if err := os.Rename(tmp, kr.Path); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("keyring: %w", err)
	}
	return nil
}

// LoadIdentities reads age identities (age-keygen's file), refusing a
// file others may read.
func LoadIdentities(path string) ([]age.Identity, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("age identity: %w", err)
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if err := checkPrivate(path, info); err != nil {
		return nil, fmt.Errorf("age identity refused: %w", err)
	}
	ids, err := age.ParseIdentities(f)
	if err != nil {
		return nil, fmt.Errorf("age identity %s: %v", path, err)
	}
	return ids, nil
}

// Unwrap decrypts the keys kept only wrapped with the identities. Keys
// no identity opens stay unreadable; it is an error only if none opens.
func (kr *Keyring) Unwrap(ids []age.Identity) error {
	tried, opened := 0, 0
	for _, k := range kr.Keys {
		if k.secret != nil || k.wrapped == nil {
			continue
		}
		tried++
		r, err := age.Decrypt(bytes.NewReader(k.wrapped), ids...)
		if err != nil {
			continue
		}
		secret, err := io.ReadAll(io.LimitReader(r, 64))
		if err != nil || len(secret) != 32 {
			continue
		}
		if id := keyID(secret); hex.EncodeToString(id[:]) != k.ID {
			return fmt.Errorf("keyring %s: the wrapped copy of key %s holds another key: the file is damaged", kr.Path, k.ID)
		}
		k.secret = secret
		opened++
	}
	if tried > 0 && opened == 0 {
		return fmt.Errorf("keyring %s: none of its wrapped keys opens with that age identity: give the identity of one of its recipients", kr.Path)
	}
	return nil
}

// current is the key new segments use; nil when there is none.
func (kr *Keyring) current() *Key {
	if kr == nil {
		return nil
	}
	for _, k := range kr.Keys {
		if k.Current {
			return k
		}
	}
	return nil
}

// lookup finds the key with id.
func (kr *Keyring) lookup(id [keyIDSize]byte) *Key {
	s := hex.EncodeToString(id[:])
	for _, k := range kr.Keys {
		if k.ID == s {
			return k
		}
	}
	return nil
}

// keyMissing says why a segment under key id cannot be read.
func (kr *Keyring) keyMissing(id [keyIDSize]byte, segment uint64) error {
	if k := kr.lookup(id); k != nil {
		return fmt.Errorf("segment %d is encrypted with key %s, which keyring %s holds only wrapped for its age recipients: give --identity with a recipient's age identity", segment, k.ID, kr.Path)
	}
	return fmt.Errorf("segment %d is encrypted with key %x, which keyring %s does not hold: give the keyring it was written with", segment, id, kr.Path)
}
