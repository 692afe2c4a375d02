package store

import (
	"bytes"
	"context"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// The fuzz target reads a segment from outside: what the fuzzer makes of
// testdata/seed's segment, an encrypted and sealed segment of a few
// blocks, written by TestFuzzSeed with -update. Its keys are committed
// with it, so that every fuzzing process checks the same bytes.
var update = flag.Bool("update", false, "write testdata/seed again")

const seedDir = "testdata/seed"

func TestFuzzSeed(t *testing.T) {
	if !*update {
		seed := loadSeed(t)
		r, err := Verify(seed.dir, seed.opts)
		if err != nil || !r.OK || len(r.Levels) != 3 || len(r.Checkpoints) == 0 {
			t.Fatalf("the seed does not verify at every level: %v %s", err, statusDetails(r))
		}
		return
	}
	os.RemoveAll(seedDir)
	if err := os.MkdirAll(seedDir, 0o755); err != nil {
		t.Fatal(err)
	}
	work := t.TempDir()
	keys := filepath.Join(work, "keyring")
	if _, err := NewKeyring(keys, nil); err != nil {
		t.Fatal(err)
	}
	vk, err := CreateSeal(work, time.Minute, testBase())
	if err != nil {
		t.Fatal(err)
	}
	var cps []string
	clock := newClock(testBase())
	w, err := Open(work, Options{KeyFile: keys, Clock: clock.now, BlockSize: 300,
		Checkpoint: func(c Checkpoint) { cps = append(cps, c.String()) }})
	if err != nil {
		t.Fatal(err)
	}
	for _, op := range randomOps(5, 12, testBase()) {
		clock.add(15 * time.Second)
		if err := w.Append(op); err != nil {
			t.Fatal(err)
		}
		if err := w.Tick(clock.t); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if n := len(segFiles(t, work)); n != 1 {
		t.Fatalf("the seed has %d segments, want 1", n)
	}
	copyFile(t, filepath.Join(work, "000000000001.seg"), filepath.Join(seedDir, "000000000001.seg"))
	copyFile(t, keys, filepath.Join(seedDir, "keyring"))
	writeFile(t, filepath.Join(seedDir, "verify-key"), []byte(vk.String()+"\n"))
	writeFile(t, filepath.Join(seedDir, "checkpoints"), []byte(strings.Join(cps, "\n")+"\n"))
}

func copyFile(t testing.TB, from, to string) {
	t.Helper()
	b, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

type seed struct {
	dir     string
	segment []byte
	opts    VerifyOptions
}

// loadSeed copies the seed into a store directory of its own, with the
// keyring readable by its owner only (git keeps no such mode).
func loadSeed(t testing.TB) seed {
	t.Helper()
	dir := scratchDir(t)
	s := seed{dir: filepath.Join(dir, "store")}
	os.Mkdir(s.dir, 0o700)
	var err error
	if s.segment, err = os.ReadFile(filepath.Join(seedDir, "000000000001.seg")); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(s.dir, "000000000001.seg"), s.segment, 0o600); err != nil {
		t.Fatal(err)
	}
	keys := filepath.Join(dir, "keyring")
	copyFile(t, filepath.Join(seedDir, "keyring"), keys)
	os.Chmod(keys, 0o600)
	kr, err := LoadKeyring(keys)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(filepath.Join(seedDir, "verify-key"))
	vk, err := ParseVerifyKey(string(b))
	if err != nil {
		t.Fatal(err)
	}
	cps, err := ReadCheckpoints(filepath.Join(seedDir, "checkpoints"))
	if err != nil {
		t.Fatal(err)
	}
	s.opts = VerifyOptions{VerifyKey: vk, Keyring: kr, Checkpoints: cps, Now: func() time.Time { return testBase().Add(time.Hour) }}
	return s
}

// scratchDir is a directory for the seed's store, on tmpfs when there is
// one: every fuzz input is written, read, verified and reopened by a
// writer, whose syncs on a disk made the target 15 times slower (900
// inputs a second against 13,000), and a fresh corpus's minimising
// stalled for minutes.
func scratchDir(t testing.TB) string {
	if st, err := os.Stat("/dev/shm"); err == nil && st.IsDir() {
		if dir, err := os.MkdirTemp("/dev/shm", "icptrack-store-fuzz-"); err == nil {
			t.Cleanup(func() { os.RemoveAll(dir) })
			return dir
		}
	}
	return t.TempDir()
}

// FuzzSegment: whatever a segment file holds, reading it gives errors,
// never a panic; verify passes it at every level only if it is the seed
// itself; a query and a writer's restart on it do not panic either.
func FuzzSegment(f *testing.F) {
	s := loadSeed(f)
	f.Add(s.segment)
	f.Add(s.segment[:len(s.segment)/2])
	f.Add(s.segment[:headerSize])
	path := filepath.Join(s.dir, "000000000001.seg")
	f.Fuzz(func(t *testing.T, b []byte) {
		os.RemoveAll(s.dir)
		os.Mkdir(s.dir, 0o700)
		if err := os.WriteFile(path, b, 0o600); err != nil {
			t.Fatal(err)
		}
		r, err := Verify(s.dir, s.opts)
		if err == nil && r.OK && !bytes.Equal(b, s.segment) {
			t.Fatalf("verify passes a segment that is not the one written: %s", statusDetails(r))
		}
		if err == nil && !r.OK && bytes.Equal(b, s.segment) {
			t.Fatalf("verify fails the segment as written: %s", statusDetails(r))
		}
		for _, o := range []VerifyOptions{{}, {Keyring: s.opts.Keyring}} {
			if r, err := Verify(s.dir, o); err == nil && r.OK && len(b) > len(s.segment) {
				t.Fatalf("verify passes a segment longer than the one written: %s", statusDetails(r))
			}
		}
		if rd, err := OpenReader(s.dir, s.opts.Keyring); err == nil {
			_, _ = rd.Query(context.Background(), Query{Notes: true}, func(*Record) error { return nil })
		}
		if w, err := Open(s.dir, Options{}); err == nil {
			w.Close()
		}
	})
}
