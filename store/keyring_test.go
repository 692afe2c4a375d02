package store

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"filippo.io/age"
)

func TestEncryptedStoreHidesItsRecordsAndVerifiesWithTheKeyring(t *testing.T) {
	keys := newKeyring(t)
	dir, _ := smallStore(t, Options{KeyFile: keys}, false)
	for _, path := range segFiles(t, dir) {
		if b := readFile(t, path); bytes.Contains(b, []byte("pipe:1")) || bytes.Contains(b, []byte("write")) {
			t.Fatalf("%s holds a record's text in the clear", path)
		}
	}
	kr := loadKeyring(t, keys)
	if r := mustVerify(t, dir, VerifyOptions{Keyring: kr}); !r.OK || len(r.Levels) != 2 {
		t.Fatalf("with the keyring: ok %v, levels %v: %s", r.OK, r.Levels, statuses(r))
	}
	if r := mustVerify(t, dir, VerifyOptions{}); !r.OK {
		t.Fatalf("without a key, the chain alone fails: %s", statuses(r))
	}
}

func TestARebuiltChainFailsOnlyWithTheKeyring(t *testing.T) {
	keys := newKeyring(t)
	dir, _ := smallStore(t, Options{KeyFile: keys}, false)
	// Change a byte of the ciphertext of segment 2's first block and
	// make every hash after it agree again.
	rechain(t, dir, func(seg, k uint64, b []byte) []byte {
		if seg == 2 && k == 0 {
			b[len(b)-hashSize-tagSize-1] ^= 1
		}
		return b
	}, nil)
	if r := mustVerify(t, dir, VerifyOptions{}); !r.OK {
		t.Fatalf("the rebuilt chain fails without a key, so this test tests nothing: %s", statuses(r))
	}
	r := mustVerify(t, dir, VerifyOptions{Keyring: loadKeyring(t, keys)})
	if r.OK || r.Segments[1].Status != StatusModified || !strings.Contains(r.Segments[1].Detail, "GCM tag") {
		t.Fatalf("with the keyring: %s, %+v", statuses(r), r.Segments[1])
	}
}

func TestWrongKeyringIsAKeyError(t *testing.T) {
	dir, _ := smallStore(t, Options{KeyFile: newKeyring(t)}, false)
	other := loadKeyring(t, newKeyring(t))
	_, err := Verify(dir, VerifyOptions{Keyring: other})
	var ke *KeyError
	if !errors.As(err, &ke) || !strings.Contains(err.Error(), "does not hold") {
		t.Fatalf("verify with another keyring: %v, want a KeyError saying it does not hold the key", err)
	}
}

func TestKeyringReadableByOthersIsRefused(t *testing.T) {
	keys := newKeyring(t)
	if err := os.Chmod(keys, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadKeyring(keys); err == nil || !strings.Contains(err.Error(), "chmod 600") {
		t.Fatalf("a world-readable keyring loads: %v", err)
	}
	if _, err := Open(t.TempDir(), Options{KeyFile: keys}); err == nil {
		t.Fatal("a store opens with a world-readable keyring")
	}
}

func TestKeyringFromSystemdCredentials(t *testing.T) {
	creds := t.TempDir()
	t.Setenv("CREDENTIALS_DIRECTORY", creds)
	if got := ResolveKeyFile(""); got != "" {
		t.Fatalf("with no credential, the key file is %q", got)
	}
	path := filepath.Join(creds, CredentialName)
	if _, err := NewKeyring(path, nil); err != nil {
		t.Fatal(err)
	}
	if got := ResolveKeyFile(""); got != path {
		t.Fatalf("key file %q, want the credential %q", got, path)
	}
	if got := ResolveKeyFile("/etc/other"); got != "/etc/other" {
		t.Fatalf("a key file given is replaced by %q", got)
	}
}

func TestRotatedKeyringEncryptsNewSegmentsAndReadsOldOnes(t *testing.T) {
	keys := newKeyring(t)
	dir := t.TempDir()
	clock := newClock(testBase())
	o := Options{KeyFile: keys, Clock: clock.now, BlockSize: 200, SegmentSize: 1200}
	w, err := Open(dir, o)
	if err != nil {
		t.Fatal(err)
	}
	ops := plainOps(40, testBase())
	for i, op := range ops {
		if i == 20 {
			if err := loadKeyring(t, keys).Rotate(nil); err != nil {
				t.Fatal(err)
			}
		}
		if err := w.Append(op); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	ids := map[[keyIDSize]byte]bool{}
	for _, path := range segFiles(t, dir) {
		h, err := parseHeader(readFile(t, path))
		if err != nil {
			t.Fatal(err)
		}
		ids[h.KeyID] = true
	}
	if len(ids) != 2 {
		t.Fatalf("the segments use %d keys, want the first and the rotated one", len(ids))
	}
	if r := mustVerify(t, dir, VerifyOptions{Keyring: loadKeyring(t, keys)}); !r.OK {
		t.Fatalf("the rotated keyring does not read both: %s", statuses(r))
	}
}

func TestAgeRecipientsAloneReadRetiredKeys(t *testing.T) {
	id, err := age.GenerateX25519Identity()
	if err != nil {
		t.Fatal(err)
	}
	keys := newKeyring(t, id.Recipient().String())
	dir, _ := smallStore(t, Options{KeyFile: keys}, false)
	if err := loadKeyring(t, keys).Rotate(nil); err != nil {
		t.Fatal(err)
	}
	// The host's keyring no longer holds the old key in the clear.
	kr := loadKeyring(t, keys)
	_, err = Verify(dir, VerifyOptions{Keyring: kr})
	if err == nil || !strings.Contains(err.Error(), "--identity") {
		t.Fatalf("verify with the host's keyring after rotation: %v, want a key error asking for --identity", err)
	}
	idFile := filepath.Join(t.TempDir(), "id.txt")
	writeFile(t, idFile, []byte(id.String()+"\n"))
	ids, err := LoadIdentities(idFile)
	if err != nil {
		t.Fatal(err)
	}
	if err := kr.Unwrap(ids); err != nil {
		t.Fatal(err)
	}
	if r := mustVerify(t, dir, VerifyOptions{Keyring: kr}); !r.OK {
		t.Fatalf("with the recipient's identity: %s", statuses(r))
	}
	other, _ := age.GenerateX25519Identity()
	if err := loadKeyring(t, keys).Unwrap([]age.Identity{other}); err == nil {
		t.Fatal("another identity unwraps the keys")
	}
}
