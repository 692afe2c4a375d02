package store

import (
	"bytes"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// Sealing, after Schneier and Kelsey's audit logs and journald's Forward
// Secure Sealing. Time is cut into epochs of a fixed length from an
// origin. Epoch e's key is K(e) = SHA-256("icptrack seal key evolve v1",
// a zero byte, K(e-1)); K(0) is random. The writer keeps only the
// current epoch's key, in the store's seal.key, and overwrites it with
// the next when the epoch ends: whoever takes the host later cannot
// make an earlier epoch's seal. At the end of each epoch the writer
// seals the chain: a seal block holds the epoch and
// HMAC-SHA256(K(e), "icptrack seal v1", a zero byte, the segment header's
// hash, the seal block's bytes before the HMAC), and a closing block
// carries the same. The verification key is K(0) with the origin, the
// epoch length and the log id: with it, verify derives every K(e).
//
// A seal covers the blocks written since the seal before it, and each of
// them must have been written in the seal's epoch (its write time): a key
// taken later cannot seal data written earlier (journald's
// CVE-2023-31439 was a verifier that did not check this).

const (
	sealFile       = "seal.key"
	sealStateSize  = 112
	sealEvolveInfo = "icptrack seal key evolve v1\x00"
	sealTagInfo    = "icptrack seal v1\x00"
	// DefaultSealEvery is the epoch length.
	DefaultSealEvery = 15 * time.Minute
	vkPrefix         = "icptrack-vk1-"
)

var sealMagic = [8]byte{'I', 'C', 'P', 'T', 'S', 'E', 'A', 'L'}

// VerifyKey checks a store's seals. Keep it off the host: with it, seals
// can be made for any epoch.
type VerifyKey struct {
	LogID [16]byte
	Key   [32]byte // K(0)
	Start int64    // epoch origin, unix seconds
	Every uint32   // epoch length, seconds

	cachedEpoch uint64
	cachedKey   [32]byte
	cached      bool
}

// String is the key as keys new prints it and verify --verify-key takes
// it: icptrack-vk1- and base64url of log id, K(0), origin, epoch length
// and a 4-byte check.
func (k *VerifyKey) String() string {
	b := k.payload()
	sum := sha256.Sum256(b)
	return vkPrefix + base64.RawURLEncoding.EncodeToString(append(b, sum[:4]...))
}

func (k *VerifyKey) payload() []byte {
	b := make([]byte, 0, 60)
	b = append(b, k.LogID[:]...)
	b = append(b, k.Key[:]...)
	b = le.AppendUint64(b, uint64(k.Start))
	return le.AppendUint32(b, k.Every)
}

// ParseVerifyKey reads a verification key.
func ParseVerifyKey(s string) (*VerifyKey, error) {
	rest, ok := strings.CutPrefix(strings.TrimSpace(s), vkPrefix)
	if !ok {
		return nil, errors.New("not a verification key: it starts with " + vkPrefix + ", as icptrack keys new --store printed it")
	}
	b, err := base64.RawURLEncoding.DecodeString(rest)
	if err != nil || len(b) != 64 {
		return nil, errors.New("the verification key is damaged: copy it again, exactly as icptrack keys new --store printed it")
	}
	sum := sha256.Sum256(b[:60])
	if !bytes.Equal(sum[:4], b[60:]) {
		return nil, errors.New("the verification key is damaged (its check does not match): copy it again, exactly as icptrack keys new --store printed it")
	}
	k := &VerifyKey{Start: int64(le.Uint64(b[48:])), Every: le.Uint32(b[56:])}
	copy(k.LogID[:], b)
	copy(k.Key[:], b[16:])
	if k.Every == 0 {
		return nil, errors.New("the verification key is damaged (no epoch length)")
	}
	return k, nil
}

func evolve(k [32]byte) [32]byte {
	h := sha256.New()
	h.Write([]byte(sealEvolveInfo))
	h.Write(k[:])
	var out [32]byte
	h.Sum(out[:0])
	return out
}

// epochKey derives K(e); epochs are asked for in order, so it goes on
// from the last one.
func (k *VerifyKey) epochKey(e uint64) [32]byte {
	if !k.cached || e < k.cachedEpoch {
		k.cachedEpoch, k.cachedKey, k.cached = 0, k.Key, true
	}
	for k.cachedEpoch < e {
		k.cachedKey = evolve(k.cachedKey)
		k.cachedEpoch++
	}
	return k.cachedKey
}

// epochOf is the epoch of unix time t (nanoseconds).
func epochOf(t int64, start int64, every uint32) uint64 {
	s := t / 1e9
	if s < start || every == 0 {
		return 0
	}
	return uint64(s-start) / uint64(every)
}

func sealTag(key [32]byte, header [hashSize]byte, signed []byte) [hashSize]byte {
	m := hmac.New(sha256.New, key[:])
	m.Write([]byte(sealTagInfo))
	m.Write(header[:])
	m.Write(signed)
	var out [hashSize]byte
	m.Sum(out[:0])
	return out
}

// sealState is the writer's side: seal.key, holding the current epoch's
// key only.
//
//	0  8  "ICPTSEAL"
//	8  2  version (1)        10 2 zero
//	12 4  epoch length (s)   16 8 origin (unix s)
//	24 16 log id             40 8 epoch
//	48 32 K(epoch)           80 32 SHA-256 of bytes 0..80
type sealState struct {
	f     *os.File
	every uint32
	start int64
	logID [16]byte
	epoch uint64
	key   [32]byte
}

func (s *sealState) marshal() []byte {
	b := make([]byte, sealStateSize)
	copy(b, sealMagic[:])
	le.PutUint16(b[8:], 1)
	le.PutUint32(b[12:], s.every)
	le.PutUint64(b[16:], uint64(s.start))
	copy(b[24:], s.logID[:])
	le.PutUint64(b[40:], s.epoch)
	copy(b[48:], s.key[:])
	sum := sha256.Sum256(b[:80])
	copy(b[80:], sum[:])
	return b
}

// CreateSeal starts sealing the store in dir (made if missing), with
// epochs of every from start: it writes seal.key and returns the
// verification key, which exists nowhere else.
func CreateSeal(dir string, every time.Duration, start time.Time) (*VerifyKey, error) {
	if every < time.Second || every%time.Second != 0 {
		return nil, fmt.Errorf("seal epoch %s: use whole seconds, such as 15m", every)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("store %s: %w", dir, err)
	}
	s := &sealState{every: uint32(every / time.Second), start: start.Unix()}
	if segs, err := listSegments(dir); err != nil {
		return nil, fmt.Errorf("store %s: %w", dir, err)
	} else if len(segs) > 0 {
		r, err := openSegReader(segs[len(segs)-1].Path)
		if err != nil {
			return nil, fmt.Errorf("store %s: its newest segment cannot be read (%v): icptrack verify %s says more", dir, err, dir)
		}
		s.logID = r.hdr.LogID
		r.Close()
	} else if _, err := rand.Read(s.logID[:]); err != nil {
		return nil, err
	}
	if _, err := rand.Read(s.key[:]); err != nil {
		return nil, err
	}
	vk := &VerifyKey{LogID: s.logID, Key: s.key, Start: s.start, Every: s.every}
	path := filepath.Join(dir, sealFile)
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		if errors.Is(err, fs.ErrExist) {
			return nil, fmt.Errorf("store %s is sealed already (%s): its verification key was printed when it was made", dir, path)
		}
		return nil, fmt.Errorf("store %s: %w", dir, err)
	}
	defer f.Close()
	if _, err := f.Write(s.marshal()); err != nil {
		return nil, err
	}
	if err := f.Sync(); err != nil {
		return nil, err
	}
	return vk, syncDir(dir)
}

// openSeal reads dir's seal.key; nil when the store is not sealed.
func openSeal(dir string) (*sealState, error) {
	path := filepath.Join(dir, sealFile)
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("seal: %w", err)
	}
	info, err := f.Stat()
	if err == nil {
		err = checkPrivate(path, info)
	}
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("seal refused: %w", err)
	}
	b := make([]byte, sealStateSize)
	n, _ := f.ReadAt(b, 0)
	sum := sha256.Sum256(b[:80])
	if n != sealStateSize || !bytes.Equal(b[:8], sealMagic[:]) || le.Uint16(b[8:]) != 1 || !bytes.Equal(sum[:], b[80:]) {
		f.Close()
		return nil, fmt.Errorf("seal: %s is damaged: move it away and run icptrack keys new --store %s to seal from now on (with a new verification key)", path, dir)
	}
	s := &sealState{f: f, every: le.Uint32(b[12:]), start: int64(le.Uint64(b[16:])), epoch: le.Uint64(b[40:])}
	copy(s.logID[:], b[24:])
	copy(s.key[:], b[48:])
	return s, nil
}

// advance moves the key on to epoch e, overwriting the old one in place
// on disk and in memory. The seal of the epoch ending must already be
// written and synced.
func (s *sealState) advance(e uint64) error {
	if e <= s.epoch {
		return nil
	}
	for s.epoch < e {
		s.key = evolve(s.key)
		s.epoch++
	}
	b := s.marshal()
	if _, err := s.f.WriteAt(b[40:], 40); err != nil {
		return fmt.Errorf("seal: %w", err)
	}
	if err := s.f.Sync(); err != nil {
		return fmt.Errorf("seal: %w", err)
	}
	clear(b)
	return nil
}

func (s *sealState) close() {
	clear(s.key[:])
	s.f.Close()
}
