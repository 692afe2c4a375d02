package store

import (
	"bytes"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/icptrack/icptrack/exporter"
	"github.com/icptrack/icptrack/flow"
)

var (
	_ exporter.CountingSink = (*Sink)(nil)
	_ exporter.DropRecorder = (*Sink)(nil)
)

// addReused adds ops as the pipeline does: through one operation the
// correlator reuses, its slices scribbled over once Add returns.
func addReused(s *Sink, ops []*flow.Operation) {
	var scratch flow.Operation
	links := make([]flow.OpID, 8)
	payload := make([]byte, 128)
	for _, op := range ops {
		scratch = *op
		scratch.Links = append(links[:0], op.Links...)
		scratch.Payload = append(payload[:0], op.Payload...)
		if op.Payload == nil {
			scratch.Payload = nil
		}
		if op.Links == nil {
			scratch.Links = nil
		}
		s.Add(&scratch)
		clear(links)
		clear(payload)
	}
}

func TestSinkWritesWhatItIsGiven(t *testing.T) {
	dir := t.TempDir()
	keys := newKeyring(t)
	w, err := Open(dir, Options{KeyFile: keys, SegmentSize: 256 << 10})
	if err != nil {
		t.Fatal(err)
	}
	s := NewSink(w, SinkOptions{Queue: 1 << 10})
	ops := randomOps(21, 20000, testBase())
	addReused(s, ops)
	if err := s.Flush(); err != nil {
		t.Fatal(err)
	}
	if st := s.Stats(); st.Written != uint64(len(ops)) || st.Dropped != 0 || st.Lagging != 0 {
		t.Errorf("after Flush: %+v, want all %d written", st, len(ops))
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	kr := loadKeyring(t, keys)
	got := readOps(t, dir, kr)
	sameOps(t, "the sink's store", got, ops)
	if r := mustVerify(t, dir, VerifyOptions{Keyring: kr}); !r.OK {
		t.Fatalf("verify: %s", statusDetails(r))
	}
}

func TestSinkDropsWhatDoesNotFitAndRecordsIt(t *testing.T) {
	dir := t.TempDir()
	w, err := Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	// The writer's first write waits until the test lets it go on: the
	// queue fills behind it.
	gate := make(chan struct{})
	defer func(f func(*os.File, []byte) (int, error)) { writeBlock = f }(writeBlock)
	real := writeBlock
	writeBlock = func(f *os.File, b []byte) (int, error) {
		<-gate
		return real(f, b)
	}
	s := NewSink(w, SinkOptions{Queue: 4, TickEvery: time.Hour})
	ops := randomOps(22, 100*batchSize, testBase())
	start := time.Now()
	addReused(s, ops)
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("Add blocked: %s for %d operations", took, len(ops))
	}
	st := s.Stats()
	if st.Dropped == 0 || st.Dropped+st.Lagging != uint64(len(ops)) {
		t.Fatalf("with the writer stuck: %+v, for %d operations", st, len(ops))
	}
	close(gate)
	// What the pipeline does with a sink's drops: hand them back.
	s.RecordDrops(time.Now(), "store", st.Dropped)
	s.RecordDrops(time.Now(), "ring_buffer", 7)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	final := s.Stats()
	if final.Written+final.Dropped != uint64(len(ops)) || final.Lagging != 0 {
		t.Errorf("at the end: %+v, for %d operations", final, len(ops))
	}
	notes := readNotes(t, dir, nil)
	want := []string{
		"operations dropped (store)",
		"7 operations dropped (ring_buffer)",
	}
	for _, n := range want {
		if !strings.Contains(notes, n) {
			t.Errorf("the store's notes %q lack %q", notes, n)
		}
	}
	if !strings.Contains(notes, itoa(st.Dropped)+" operations dropped (store)") {
		t.Errorf("the store's drop record does not count the %d dropped: %q", st.Dropped, notes)
	}
	got := readOps(t, dir, nil)
	if uint64(len(got)) != final.Written {
		t.Errorf("%d operations in the store, the sink says it wrote %d", len(got), final.Written)
	}
	// What was kept is whole batches of what was given, in order.
	i := 0
	for _, op := range got {
		for i < len(ops) && !bytes.Equal(exporter.AppendJSON(nil, ops[i]), exporter.AppendJSON(nil, op)) {
			i++
		}
		if i == len(ops) {
			t.Fatal("the store holds an operation out of order, or one not given")
		}
	}
}
