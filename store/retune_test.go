package store

import (
	"errors"
	"strings"
	"testing"
)

// Retune while operations come in: the store keeps its writer (the lock
// is never let go), the segment under way is closed and the next one is
// written under the new key, every operation is there once, in order,
// and the chain verifies.
func TestRetuneChangesTheKeyWithoutLettingGoOfTheStore(t *testing.T) {
	dir := t.TempDir()
	w, err := Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	s := NewSink(w, SinkOptions{})
	ops := randomOps(7, 6000, testBase())
	addReused(s, ops[:3000])
	keys := newKeyring(t)
	apply, err := s.Retune(Options{KeyFile: keys, SegmentSize: 256 << 10})
	if err != nil {
		t.Fatal(err)
	}
	apply()
	addReused(s, ops[3000:])
	if err := s.Flush(); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(dir, Options{}); err == nil || !strings.Contains(err.Error(), "in use") {
		t.Errorf("a second writer while the retuned one runs: %v, want the store in use", err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	kr := loadKeyring(t, keys)
	got := readOps(t, dir, kr)
	sameOps(t, "the retuned store", got, ops)
	segs := segFiles(t, dir)
	first, err := parseHeader(readFile(t, segs[0]))
	if err != nil {
		t.Fatal(err)
	}
	last, err := parseHeader(readFile(t, segs[len(segs)-1]))
	if err != nil {
		t.Fatal(err)
	}
	if first.Encrypted() || !last.Encrypted() {
		t.Errorf("first segment encrypted %v, last %v: want the key to take over at the retune", first.Encrypted(), last.Encrypted())
	}
	if r := mustVerify(t, dir, VerifyOptions{Keyring: kr}); !r.OK {
		t.Fatalf("verify: %s", statusDetails(r))
	}
}

// A keyring that cannot be used is refused before anything changes.
func TestRetuneRefusesABadKeyring(t *testing.T) {
	dir := t.TempDir()
	w, err := Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	s := NewSink(w, SinkOptions{})
	defer s.Close()
	apply, err := s.Retune(Options{KeyFile: dir + "/no-such-keyring"})
	var ke *KeyError
	if !errors.As(err, &ke) || apply != nil {
		t.Fatalf("a missing keyring: %v, want a KeyError and nothing to apply", err)
	}
	if n := len(segFiles(t, dir)); n != 1 {
		t.Errorf("the refused retune made %d segments, want the first only", n)
	}
}

// A retention lowered by a retune expires what it no longer keeps at
// once, recorded in the chain as at a start.
func TestRetuneAppliesANewRetention(t *testing.T) {
	dir := t.TempDir()
	w, err := Open(dir, Options{SegmentSize: 64 << 10, BlockSize: 4 << 10})
	if err != nil {
		t.Fatal(err)
	}
	s := NewSink(w, SinkOptions{})
	addReused(s, randomOps(8, 8000, testBase()))
	if err := s.Flush(); err != nil {
		t.Fatal(err)
	}
	before := len(segFiles(t, dir))
	if before < 4 {
		t.Fatalf("only %d segments to expire from", before)
	}
	apply, err := s.Retune(Options{SegmentSize: 64 << 10, MaxSize: 128 << 10})
	if err != nil {
		t.Fatal(err)
	}
	apply()
	if err := s.Flush(); err != nil {
		t.Fatal(err)
	}
	if _, total := fileSizes(t, dir); total > 128<<10+64<<10 {
		t.Errorf("after max_size 128 KiB: %d bytes in %d segments (from %d)", total, len(segFiles(t, dir)), before)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(readNotes(t, dir, nil), "expired (max_size") {
		t.Error("no record of what expired in the chain")
	}
	if r := mustVerify(t, dir, VerifyOptions{}); !r.OK {
		t.Fatalf("verify: %s", statusDetails(r))
	}
}
