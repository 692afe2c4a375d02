package store

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestSealsVerifyWithTheVerificationKey(t *testing.T) {
	dir, vk := smallStore(t, Options{}, true)
	parsed, err := ParseVerifyKey(vk.String())
	if err != nil {
		t.Fatal(err)
	}
	r := mustVerify(t, dir, VerifyOptions{VerifyKey: parsed, Now: at()})
	if !r.OK {
		t.Fatalf("a sealed store fails with its key: %s %+v", statuses(r), r.Segments)
	}
	seals := 0
	for _, s := range r.Segments {
		seals += s.Seals
	}
	// Two minutes of operations in one-minute epochs, and a closing block
	// per segment.
	if seals < len(r.Segments)+2 {
		t.Errorf("%d seals in %d segments: want a seal for each epoch ended and each closing block", seals, len(r.Segments))
	}
	if len(r.Levels) != 2 || r.Levels[1] != "seals" {
		t.Errorf("levels %v", r.Levels)
	}
}

func TestSealKeyMovesOnAndForgetsTheOldOne(t *testing.T) {
	dir, vk := smallStore(t, Options{}, true)
	s, err := openSeal(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer s.close()
	if s.epoch < 2 {
		t.Fatalf("the seal state is at epoch %d after two minutes of one-minute epochs", s.epoch)
	}
	if s.key != vk.epochKey(s.epoch) {
		t.Fatal("the seal state's key is not the verification key's for its epoch")
	}
	raw := readFile(t, filepath.Join(dir, sealFile))
	k0 := vk.epochKey(0)
	if strings.Contains(string(raw), string(k0[:])) {
		t.Fatal("seal.key still holds the first epoch's key")
	}
}

func TestARebuiltChainFailsWithTheVerificationKey(t *testing.T) {
	dir, vk := smallStore(t, Options{}, true)
	// Change an operation's byte count in segment 2 and make every hash
	// agree again: the chain passes, the seals do not.
	rechain(t, dir, func(seg, k uint64, b []byte) []byte {
		if seg == 2 && k == 0 {
			i := strings.Index(string(b), "write")
			b[i] = 'W'
		}
		return b
	}, nil)
	if r := mustVerify(t, dir, VerifyOptions{Now: at()}); !r.OK {
		t.Fatalf("the rebuilt chain fails without a key, so this tests nothing: %s", statuses(r))
	}
	r := mustVerify(t, dir, VerifyOptions{VerifyKey: vk, Now: at()})
	if r.OK || !strings.Contains(r.Segments[1].Detail, "does not verify") {
		t.Fatalf("with the verification key: %s %+v", statuses(r), r.Segments[1])
	}
}

// forgeWithLaterKey rewrites the store as an intruder who took seal.key
// at the end would: change data written in the first epoch and seal it
// again with the key at hand, claiming epoch claim.
func forgeWithLaterKey(t *testing.T, dir string, claim func(later uint64) uint64) {
	t.Helper()
	s, err := openSeal(dir)
	if err != nil {
		t.Fatal(err)
	}
	later, key := s.epoch, s.key
	s.close()
	rechain(t, dir, func(seg, k uint64, b []byte) []byte {
		if seg == 2 && k == 0 {
			i := strings.Index(string(b), "write")
			b[i] = 'W'
		}
		return b
	}, func(seg, k uint64, b []byte, header [hashSize]byte) {
		var tail []byte
		switch {
		case b[8] == kindSeal:
			tail = b[len(b)-hashSize-sealBody : len(b)-hashSize]
		case b[8] == kindClose && b[9]&blockSealed != 0:
			tail = b[len(b)-hashSize-sealBody : len(b)-hashSize]
		default:
			return
		}
		le.PutUint64(tail, claim(later))
		tag := sealTag(key, header, b[:len(b)-2*hashSize])
		copy(tail[8:], tag[:])
	})
}

func TestASealWithALaterEpochsKeyOverEarlierDataFails(t *testing.T) {
	t.Run("claiming the later epoch", func(t *testing.T) {
		dir, vk := smallStore(t, Options{}, true)
		forgeWithLaterKey(t, dir, func(later uint64) uint64 { return later })
		r := mustVerify(t, dir, VerifyOptions{VerifyKey: vk, Now: at()})
		if r.OK || !strings.Contains(statusDetails(r), "a key taken later sealed earlier data") {
			t.Fatalf("with the verification key: %s", statusDetails(r))
		}
	})
	t.Run("claiming the data's epoch", func(t *testing.T) {
		dir, vk := smallStore(t, Options{}, true)
		forgeWithLaterKey(t, dir, func(uint64) uint64 { return 0 })
		r := mustVerify(t, dir, VerifyOptions{VerifyKey: vk, Now: at()})
		if r.OK || !strings.Contains(statusDetails(r), "does not verify with epoch 0's key") {
			t.Fatalf("with the verification key: %s", statusDetails(r))
		}
	})
}

func statusDetails(r *Report) string {
	var s []string
	for _, seg := range r.Segments {
		s = append(s, seg.File+": "+seg.Status+" "+seg.Detail)
	}
	return strings.Join(s, "\n")
}

func TestAnUnsealedTailFailsWithTheVerificationKey(t *testing.T) {
	dir, vk := smallStore(t, Options{}, true)
	// Cut the newest segment's closing block, which carries its seal: the
	// blocks before it are then sealed by nothing.
	segs := segFiles(t, dir)
	last := segs[len(segs)-1]
	b := readFile(t, last)
	writeFile(t, last, b[:len(b)-closeBlockSize])
	if r := mustVerify(t, dir, VerifyOptions{Now: at()}); !r.OK {
		t.Fatalf("without a key, a cut at a block boundary shows, so this tests less than it says: %s", statusDetails(r))
	}
	r := mustVerify(t, dir, VerifyOptions{VerifyKey: vk, Now: at()})
	if r.OK || r.Segments[len(r.Segments)-1].Status != StatusUnsealed {
		t.Fatalf("with the verification key: %s", statusDetails(r))
	}
}

func TestVerificationKeyMistakes(t *testing.T) {
	dir, vk := smallStore(t, Options{}, true)
	_, other := smallStore(t, Options{}, true)
	_, err := Verify(dir, VerifyOptions{VerifyKey: other, Now: at()})
	var ke *KeyError
	if !errors.As(err, &ke) || !strings.Contains(err.Error(), "is for store") {
		t.Fatalf("another store's key: %v", err)
	}
	s := vk.String()
	for _, bad := range []string{"", "hello", s[:len(s)-3], s[:20] + "A" + s[21:]} {
		if _, err := ParseVerifyKey(bad); err == nil {
			t.Errorf("ParseVerifyKey(%q) takes it", bad)
		}
	}
	if _, err := CreateSeal(dir, time.Minute, testBase()); err == nil || !strings.Contains(err.Error(), "sealed already") {
		t.Errorf("sealing a sealed store again: %v", err)
	}
}

func TestSealStateReadableByOthersIsRefused(t *testing.T) {
	dir := t.TempDir()
	if _, err := CreateSeal(dir, time.Minute, testBase()); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(filepath.Join(dir, sealFile), 0o640); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(dir, Options{}); err == nil || !strings.Contains(err.Error(), "chmod 600") {
		t.Fatalf("a store opens with a group-readable seal.key: %v", err)
	}
}

func TestCheckpointsCatchTheNewestSegmentsRemoved(t *testing.T) {
	var cps []Checkpoint
	dir, vk := smallStore(t, Options{Checkpoint: func(c Checkpoint) { cps = append(cps, c) }}, true)
	if len(cps) < 4 {
		t.Fatalf("%d checkpoints, want one at each seal and closed segment", len(cps))
	}
	// Through their text, as they would come back from syslog.
	var lines []string
	for _, c := range cps {
		lines = append(lines, "Dec  5 10:00:00 host icptrack[42]: "+c.String())
	}
	path := filepath.Join(t.TempDir(), "syslog")
	writeFile(t, path, []byte(strings.Join(lines, "\n")+"\n"))
	read, err := ReadCheckpoints(path)
	if err != nil || len(read) != len(cps) {
		t.Fatalf("read back %d checkpoints of %d: %v", len(read), len(cps), err)
	}
	if r := mustVerify(t, dir, VerifyOptions{VerifyKey: vk, Checkpoints: read, Now: at()}); !r.OK {
		t.Fatalf("the store fails its own checkpoints: %+v", r.Checkpoints)
	}
	segs := segFiles(t, dir)
	os.Remove(segs[len(segs)-1])
	if r := mustVerify(t, dir, VerifyOptions{VerifyKey: vk, Now: at()}); !r.OK {
		t.Fatalf("the newest segment removed shows without checkpoints, so this tests less than it says: %s", statusDetails(r))
	}
	r := mustVerify(t, dir, VerifyOptions{VerifyKey: vk, Checkpoints: read, Now: at()})
	if r.OK {
		t.Fatal("the newest segment removed, and the checkpoints pass")
	}
	last := r.Checkpoints[len(r.Checkpoints)-1]
	if last.Status != StatusMissing || !strings.Contains(last.Detail, "is gone") {
		t.Errorf("the last checkpoint: %+v", last)
	}
}
