package store

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// smallStore writes a store of three segments of a few small blocks
// each, small enough to flip every bit of. Its clock moves 10s an
// operation, and with seal set the store is sealed in epochs of a
// minute, so that it holds seals of several epochs.
func smallStore(t *testing.T, o Options, seal bool) (string, *VerifyKey) {
	t.Helper()
	dir := t.TempDir()
	var vk *VerifyKey
	if seal {
		var err error
		if vk, err = CreateSeal(dir, time.Minute, testBase()); err != nil {
			t.Fatal(err)
		}
	}
	clock := newClock(testBase())
	o.Clock = clock.now
	if o.BlockSize == 0 {
		o.BlockSize, o.SegmentSize = 100, 750
	}
	w, err := Open(dir, o)
	if err != nil {
		t.Fatal(err)
	}
	for _, op := range plainOps(12, testBase()) {
		clock.add(10 * time.Second)
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
	if n := len(segFiles(t, dir)); n < 3 {
		t.Fatalf("the small store has %d segments, want 3 or more", n)
	}
	return dir, vk
}

// at is verify's clock for a small store: just after it was written.
func at() func() time.Time { return func() time.Time { return testBase().Add(3 * time.Minute) } }

func statuses(r *Report) string {
	var s []string
	for _, seg := range r.Segments {
		s = append(s, seg.File+":"+seg.Status)
	}
	return strings.Join(s, " ")
}

func TestVerifyPassesWhatWasWritten(t *testing.T) {
	dir, _ := smallStore(t, Options{}, false)
	r := mustVerify(t, dir, VerifyOptions{})
	if !r.OK {
		t.Fatalf("a store as written fails: %s\n%+v", statuses(r), r.Segments)
	}
	if r.Records != 12+1 { // the operations and the start
		t.Errorf("verify counted %d records, want 13", r.Records)
	}
	for _, s := range r.Segments {
		if !s.Closed {
			t.Errorf("%s is not closed", s.File)
		}
	}
}

// flipEveryBit flips each bit of each segment file in turn and calls
// check with the store so damaged.
func flipEveryBit(t *testing.T, dir string, check func(file string, off int64, bit int)) {
	for _, path := range segFiles(t, dir) {
		orig := readFile(t, path)
		f, err := os.OpenFile(path, os.O_RDWR, 0)
		if err != nil {
			t.Fatal(err)
		}
		for off := range orig {
			for bit := range 8 {
				if _, err := f.WriteAt([]byte{orig[off] ^ 1<<bit}, int64(off)); err != nil {
					t.Fatal(err)
				}
				check(filepath.Base(path), int64(off), bit)
			}
			if _, err := f.WriteAt(orig[off:off+1], int64(off)); err != nil {
				t.Fatal(err)
			}
		}
		f.Close()
	}
}

func TestVerifyFailsOnEveryFlippedBitAtEachLevel(t *testing.T) {
	keys := newKeyring(t)
	dir, vk := smallStore(t, Options{KeyFile: keys}, true)
	levels := map[string]VerifyOptions{
		"no key":                    {Now: at()},
		"verification key":          {VerifyKey: vk, Now: at()},
		"keyring":                   {Keyring: loadKeyring(t, keys), Now: at()},
		"verification key, keyring": {VerifyKey: vk, Keyring: loadKeyring(t, keys), Now: at()},
	}
	for name, o := range levels {
		if r := mustVerify(t, dir, o); !r.OK {
			t.Fatalf("%s: the store fails before any bit is flipped: %s", name, statuses(r))
		}
	}
	n := 0
	flipEveryBit(t, dir, func(file string, off int64, bit int) {
		n++
		for name, o := range levels {
			r, err := Verify(dir, o)
			if err != nil {
				t.Fatalf("%s: %s byte %d bit %d: %v", name, file, off, bit, err)
			}
			if r.OK {
				t.Fatalf("%s: %s byte %d bit %d flipped, and verify passes", name, file, off, bit)
			}
		}
	})
	t.Logf("%d bits flipped, each one caught at each of %d levels", n, len(levels))
}

// blockOffsets lists where each block of a segment file starts.
func blockOffsets(t *testing.T, path string) []int64 {
	t.Helper()
	r, err := openSegReader(path)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	var offs []int64
	for off := int64(headerSize); off < r.size; {
		h, _, err := r.readHead(off, nil)
		if err != nil {
			t.Fatal(err)
		}
		offs = append(offs, off)
		off += int64(h.Length)
	}
	return offs
}

func TestVerifyNamesEachKindOfDamage(t *testing.T) {
	cases := []struct {
		name    string
		damage  func(t *testing.T, segs []string)
		segment int // which segment gets the status
		status  string
		detail  string
	}{
		{"a changed byte", func(t *testing.T, segs []string) {
			b := readFile(t, segs[1])
			b[len(b)/2] ^= 0x40
			writeFile(t, segs[1], b)
		}, 1, StatusModified, "hash"},
		{"a removed block", func(t *testing.T, segs []string) {
			b := readFile(t, segs[1])
			offs := blockOffsets(t, segs[1])
			writeFile(t, segs[1], append(b[:offs[1]:offs[1]], b[offs[2]:]...))
		}, 1, StatusMissing, "block 1 is gone"},
		{"two blocks swapped", func(t *testing.T, segs []string) {
			b := readFile(t, segs[1])
			offs := blockOffsets(t, segs[1])
			var out []byte
			out = append(out, b[:offs[0]]...)
			out = append(out, b[offs[1]:offs[2]]...)
			out = append(out, b[offs[0]:offs[1]]...)
			out = append(out, b[offs[2]:]...)
			writeFile(t, segs[1], out)
		}, 1, StatusReordered, "block 1 is where block 0 belongs"},
		{"the newest segment cut inside a block", func(t *testing.T, segs []string) {
			last := segs[len(segs)-1]
			b := readFile(t, last)
			writeFile(t, last, b[:len(b)-50])
		}, -1, StatusTruncated, "ends inside block"},
		{"a middle segment cut at a block boundary", func(t *testing.T, segs []string) {
			b := readFile(t, segs[1])
			offs := blockOffsets(t, segs[1])
			writeFile(t, segs[1], b[:offs[len(offs)-1]])
		}, 1, StatusTruncated, "ended at offset"},
		{"a middle segment deleted", func(t *testing.T, segs []string) {
			os.Remove(segs[1])
		}, 1, StatusMissing, "before it is gone"},
		{"two segments swapped", func(t *testing.T, segs []string) {
			a, b := readFile(t, segs[0]), readFile(t, segs[1])
			writeFile(t, segs[0], b)
			writeFile(t, segs[1], a)
		}, 0, StatusReordered, "holds segment 2"},
		{"the oldest segment deleted", func(t *testing.T, segs []string) {
			os.Remove(segs[0])
		}, 0, StatusMissing, "no segment says it expired"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir, _ := smallStore(t, Options{BlockSize: 60, SegmentSize: 900}, false)
			segs := segFiles(t, dir)
			tc.damage(t, segs)
			r := mustVerify(t, dir, VerifyOptions{})
			if r.OK {
				t.Fatalf("verify passes: %s", statuses(r))
			}
			i := tc.segment
			if i < 0 {
				i = len(r.Segments) - 1
			}
			got := r.Segments[i]
			if got.Status != tc.status || !strings.Contains(got.Detail, tc.detail) {
				t.Errorf("segment %s: %s (%s), want %s (%s); all: %s", got.File, got.Status, got.Detail, tc.status, tc.detail, statuses(r))
			}
		})
	}
}
