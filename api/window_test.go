package api

import (
	"sync"
	"testing"
	"time"

	"github.com/icptrack/icptrack/flow"
)

// The window holds exactly the last capacity operations, whatever the
// block size, gives each back as the event log wrote it, by sequence
// number and time, while operations keep arriving.
func TestWindowHoldsTheLastOperationsExactly(t *testing.T) {
	ops := testOps(3000)
	w := newWindow(1000) // not a multiple of windowBlockOps
	for i, op := range ops {
		if seq := w.add(op); seq != uint64(i) {
			t.Fatalf("operation %d got sequence number %d", i, seq)
		}
	}
	collect := func(after int64, from, to time.Time) []uint64 {
		var seqs []uint64
		err := w.each(after, from, to, func(seq uint64, op *flow.Operation) bool {
			if got, want := eventLine(op), eventLine(ops[seq]); got != want {
				t.Fatalf("operation %d reads back as\n%s\nwant\n%s", seq, got, want)
			}
			seqs = append(seqs, seq)
			return true
		})
		if err != nil {
			t.Fatal(err)
		}
		return seqs
	}
	check := func(what string, seqs []uint64, first, last uint64) {
		t.Helper()
		if len(seqs) != int(last-first+1) || (len(seqs) > 0 && (seqs[0] != first || seqs[len(seqs)-1] != last)) {
			t.Errorf("%s: %d operations from %v, want %d to %d", what, len(seqs), seqs[:min(len(seqs), 3)], first, last)
		}
	}
	check("all", collect(-1, time.Time{}, time.Time{}), 2000, 2999)
	check("after a cursor", collect(2500, time.Time{}, time.Time{}), 2501, 2999)
	check("after a cursor that fell out", collect(10, time.Time{}, time.Time{}), 2000, 2999)
	check("a time range", collect(-1, ops[2100].Time, ops[2200].Time), 2100, 2199)
	if n, from, to := w.span(); n != 1000 || !from.Equal(ops[2000].Time) || !to.Equal(ops[2999].Time) {
		t.Errorf("span %d %s %s, want 1000 from %s to %s", n, from, to, ops[2000].Time, ops[2999].Time)
	}
	// Stopping early stops.
	n := 0
	_ = w.each(-1, time.Time{}, time.Time{}, func(uint64, *flow.Operation) bool { n++; return n < 5 })
	if n != 5 {
		t.Errorf("each went on for %d after false", n)
	}
}

// Readers decode while the writer adds and seals blocks (go test -race).
func TestWindowReadersAndTheWriterDoNotRace(t *testing.T) {
	ops := testOps(20000)
	w := newWindow(3000)
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				last := int64(-1)
				_ = w.each(-1, time.Time{}, time.Time{}, func(seq uint64, op *flow.Operation) bool {
					if int64(seq) <= last || op.ID != ops[seq].ID {
						t.Errorf("sequence %d after %d, id %v", seq, last, op.ID)
						return false
					}
					last = int64(seq)
					return true
				})
				w.span()
			}
		}()
	}
	for _, op := range ops {
		w.add(op)
	}
	close(stop)
	wg.Wait()
}

// The server counts what the live graph missed when its goroutine fell
// behind: Stats reports it (the summary's "api: N written, M dropped",
// the self-metrics, status), and the window still holds every operation.
func TestStatsCountWhatTheGraphMissed(t *testing.T) {
	s := newTestServer(t, Options{Window: 200_000})
	ops := testOps(1000)
	s.graph.mu.Lock() // the graph's goroutine stops at its first batch
	total := (aggregatorQueue + 4) * aggregatorBatch
	for i := range total {
		s.Add(ops[i%len(ops)])
	}
	s.graph.handOn()
	st := s.Stats()
	s.graph.mu.Unlock()
	if st.Written != uint64(total) || st.Dropped == 0 || st.Dropped+st.Lagging > uint64(total) {
		t.Fatalf("stats %+v for %d operations with the graph stopped, want all written and some dropped", st, total)
	}
	s.graph.sync()
	after := s.Stats()
	if after.Lagging != 0 || after.Dropped != st.Dropped || s.graph.added.Load()+after.Dropped != uint64(total) {
		t.Errorf("once the graph caught up: %+v, %d added to it, want every operation added or dropped", after, s.graph.added.Load())
	}
}
