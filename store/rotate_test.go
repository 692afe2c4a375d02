package store

import (
	"os"
	"strings"
	"testing"
	"time"
)

func fileSizes(t *testing.T, dir string) (sizes []int64, total int64) {
	t.Helper()
	for _, p := range segFiles(t, dir) {
		info, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		sizes = append(sizes, info.Size())
		total += info.Size()
	}
	return sizes, total
}

// writeFor appends ops, moving the clock by step before each and
// ticking after it.
func writeFor(t *testing.T, w *Writer, clock *fakeClock, ops int, step time.Duration, seed uint64) {
	t.Helper()
	for _, op := range randomOps(seed, ops, clock.t) {
		clock.add(step)
		if err := w.Append(op); err != nil {
			t.Fatal(err)
		}
		if err := w.Tick(clock.t); err != nil {
			t.Fatal(err)
		}
	}
}

func TestSegmentsRotateBySize(t *testing.T) {
	dir := t.TempDir()
	clock := newClock(testBase())
	w, err := Open(dir, Options{Clock: clock.now, SegmentSize: 16 << 10, BlockSize: 2 << 10})
	if err != nil {
		t.Fatal(err)
	}
	writeFor(t, w, clock, 1000, time.Millisecond, 3)
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	sizes, _ := fileSizes(t, dir)
	if len(sizes) < 5 {
		t.Fatalf("%d segments, want many of 16 KiB", len(sizes))
	}
	for i, n := range sizes {
		if n > 16<<10 {
			t.Errorf("segment %d is %d bytes, over the 16 KiB asked", i+1, n)
		}
	}
	if r := mustVerify(t, dir, VerifyOptions{}); !r.OK || r.Records != 1001 {
		t.Fatalf("verify: %s, %d records", statusDetails(r), r.Records)
	}
}

func TestSegmentsRotateByAge(t *testing.T) {
	dir := t.TempDir()
	clock := newClock(testBase())
	w, err := Open(dir, Options{Clock: clock.now, SegmentAge: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	writeFor(t, w, clock, 10, 5*time.Second, 4) // 50s: one segment
	if n := len(segFiles(t, dir)); n != 1 {
		t.Fatalf("%d segments after 50s, want 1", n)
	}
	writeFor(t, w, clock, 10, 5*time.Second, 5) // past a minute: a second one
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	r := mustVerify(t, dir, VerifyOptions{})
	if len(r.Segments) != 2 || !r.OK || !r.Segments[0].Closed {
		t.Fatalf("after 100s with segments of a minute: %s", statusDetails(r))
	}
}

func TestExpiryBySizeIsRecordedInTheChain(t *testing.T) {
	dir := t.TempDir()
	clock := newClock(testBase())
	w, err := Open(dir, Options{Clock: clock.now, SegmentSize: 16 << 10, BlockSize: 2 << 10, MaxSize: 64 << 10})
	if err != nil {
		t.Fatal(err)
	}
	writeFor(t, w, clock, 3000, time.Millisecond, 6)
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	sizes, total := fileSizes(t, dir)
	if total > 64<<10+16<<10 {
		t.Errorf("the store is %d bytes in %d segments, over 64 KiB and a segment", total, len(sizes))
	}
	r := mustVerify(t, dir, VerifyOptions{})
	if !r.OK {
		t.Fatalf("after expiry: %s", statusDetails(r))
	}
	if r.Segments[0].Segment == 1 || len(r.Segments[0].Notes) == 0 || !strings.Contains(r.Segments[0].Notes[0], "expired") {
		t.Fatalf("the oldest segment left is %d, with notes %q", r.Segments[0].Segment, r.Segments[0].Notes)
	}
	notes := readNotes(t, dir, nil)
	if !strings.Contains(notes, "expired (max_size") {
		t.Errorf("no record of what expired in the chain: %s", notes)
	}
}

func TestExpiryByAge(t *testing.T) {
	dir := t.TempDir()
	clock := newClock(testBase())
	w, err := Open(dir, Options{Clock: clock.now, SegmentAge: time.Minute, MaxAge: 5 * time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	writeFor(t, w, clock, 200, 6*time.Second, 7) // 20 minutes
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	r := mustVerify(t, dir, VerifyOptions{})
	if !r.OK || len(r.Segments) > 7 || r.Segments[0].Segment < 10 {
		t.Fatalf("20 minutes of one-minute segments kept for five: %s", statusDetails(r))
	}
	if notes := readNotes(t, dir, nil); !strings.Contains(notes, "expired (max_age") {
		t.Errorf("no record of what expired in the chain: %s", notes)
	}
}

func TestASegmentDeletedBeforeItsTurnStaysMissingAfterExpiry(t *testing.T) {
	dir := t.TempDir()
	clock := newClock(testBase())
	o := Options{Clock: clock.now, SegmentSize: 16 << 10, BlockSize: 2 << 10, MaxSize: 64 << 10}
	w, err := Open(dir, o)
	if err != nil {
		t.Fatal(err)
	}
	writeFor(t, w, clock, 600, time.Millisecond, 8)
	segs := segFiles(t, dir)
	os.Remove(segs[len(segs)-3])
	writeFor(t, w, clock, 3000, time.Millisecond, 9)
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	r := mustVerify(t, dir, VerifyOptions{})
	if r.OK || r.Segments[0].Status != StatusMissing {
		t.Fatalf("a segment deleted by hand, then passed by expiry: %s", statusDetails(r))
	}
}
