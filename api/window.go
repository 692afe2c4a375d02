package api

import (
	"sync"
	"time"

	"github.com/icptrack/icptrack/flow"
)

// entry is one operation in the window, with its sequence number: the
// n-th operation the server was given, a cursor that stays good while
// newer ones push older ones out.
type entry struct {
	seq uint64
	op  *flow.Operation
}

// window is a ring of the most recent operations. Each is a copy that
// nobody changes after Add, so readers copy the ring's pointers under the
// lock and read the operations without it: Add waits only for that copy.
type window struct {
	mu   sync.Mutex
	ring []entry
	next uint64 // the sequence number of the next operation added
}

func newWindow(n int) *window { return &window{ring: make([]entry, n)} }

// add keeps op (a copy the caller made) and returns its sequence number.
func (w *window) add(op *flow.Operation) uint64 {
	w.mu.Lock()
	seq := w.next
	w.ring[seq%uint64(len(w.ring))] = entry{seq: seq, op: op}
	w.next++
	w.mu.Unlock()
	return seq
}

// since returns the operations after sequence number after (all held
// when after is negative), oldest first.
func (w *window) since(after int64) []entry {
	w.mu.Lock()
	defer w.mu.Unlock()
	n := uint64(len(w.ring))
	first := uint64(0)
	if w.next > n {
		first = w.next - n
	}
	if after >= 0 && uint64(after)+1 > first {
		first = uint64(after) + 1
	}
	if first >= w.next {
		return nil
	}
	out := make([]entry, 0, w.next-first)
	for seq := first; seq < w.next; seq++ {
		out = append(out, w.ring[seq%n])
	}
	return out
}

// span is what the window holds: how many operations, and the times of
// the oldest and newest.
func (w *window) span() (n int, from, to time.Time) {
	w.mu.Lock()
	defer w.mu.Unlock()
	size := uint64(len(w.ring))
	if w.next == 0 {
		return 0, from, to
	}
	first := uint64(0)
	if w.next > size {
		first = w.next - size
	}
	return int(w.next - first), w.ring[first%size].op.Time, w.ring[(w.next-1)%size].op.Time
}

// added is how many operations the window was given.
func (w *window) added() uint64 {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.next
}
