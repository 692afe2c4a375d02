package api

import (
	"bytes"
	"slices"
	"sync"
	"time"

	"github.com/icptrack/icptrack/flow"
	"github.com/icptrack/icptrack/store"
)

// windowBlockOps is how many operations a block of the window holds.
const windowBlockOps = 512

// window is the most recent operations, each numbered by its sequence
// number (the n-th operation the server was given), a cursor that stays
// good while newer ones push older ones out.
//
// They are kept encoded as the store encodes them (store.Records), in
// blocks: about 110 bytes an operation instead of a flow.Operation's 440
// and its allocation, and no pointers for the garbage collector to scan.
// Kept as pointers, a full window of 100,000 doubled icptrack's CPU time
// and peak RSS on a pipe ping-pong (make bench, the api mode), most of it
// the collector's, whose heap the window filled. A sealed block never
// changes, so readers take the block list under the lock and decode
// without it; Add waits only for that copy.
type window struct {
	_        [64]byte // not on a cache line that other goroutines write
	mu       sync.Mutex
	capacity int
	blocks   []windowBlock // sealed, oldest first
	open     store.Records // the block being filled
	times    []int64       // the open block's operations' times
	next     uint64        // the sequence number of the next operation
	_        [64]byte
}

// windowBlock is a sealed block: its operations, encoded, and each one's
// time (unix ns), for span and to skip blocks outside a time range.
type windowBlock struct {
	first      uint64
	body       []byte
	times      []int64
	minT, maxT int64
}

func newWindow(n int) *window {
	w := &window{capacity: n}
	w.times = make([]int64, 0, windowBlockOps)
	return w
}

// add keeps op (encoded: the caller's op is not kept) and returns its
// sequence number.
func (w *window) add(op *flow.Operation) uint64 {
	w.mu.Lock()
	defer w.mu.Unlock()
	seq := w.next
	w.open.Append(op)
	w.times = append(w.times, op.Time.UnixNano())
	w.next++
	if w.open.Len() == windowBlockOps {
		// A sealed block is an exact copy, so that the window holds no
		// slack; the open block's buffer is used again.
		w.blocks = append(w.blocks, sealed(w.next-windowBlockOps, bytes.Clone(w.open.Bytes()), w.times))
		w.open.Reset()
		w.times = make([]int64, 0, windowBlockOps)
		// Forget the oldest blocks that are wholly out of the window.
		drop := 0
		for drop < len(w.blocks) && w.blocks[drop].first+uint64(len(w.blocks[drop].times)) <= w.first() {
			drop++
		}
		w.blocks = slices.Delete(w.blocks, 0, drop)
	}
	return seq
}

func sealed(first uint64, body []byte, times []int64) windowBlock {
	b := windowBlock{first: first, body: body, times: times, minT: times[0], maxT: times[0]}
	for _, t := range times {
		b.minT, b.maxT = min(b.minT, t), max(b.maxT, t)
	}
	return b
}

// first is the sequence number of the oldest operation held.
func (w *window) first() uint64 {
	if w.next > uint64(w.capacity) {
		return w.next - uint64(w.capacity)
	}
	return 0
}

// snapshot is the blocks that hold the operations from first on, the open
// block copied.
func (w *window) snapshot() (blocks []windowBlock, first uint64) {
	w.mu.Lock()
	defer w.mu.Unlock()
	blocks = slices.Clone(w.blocks)
	if len(w.times) > 0 {
		blocks = append(blocks, sealed(w.next-uint64(len(w.times)), bytes.Clone(w.open.Bytes()), slices.Clone(w.times)))
	}
	return blocks, w.first()
}

// each calls fn with the operations after sequence number after (all
// held when after is negative) whose time is in [from, to) (either zero:
// no bound), oldest first, until fn returns false. op is good only until
// fn returns: who keeps it keeps its Clone.
func (w *window) each(after int64, from, to time.Time, fn func(seq uint64, op *flow.Operation) bool) error {
	blocks, first := w.snapshot()
	if after >= 0 && uint64(after)+1 > first {
		first = uint64(after) + 1
	}
	lo, hi := int64(-1<<63), int64(1<<63-1)
	if !from.IsZero() {
		lo = from.UnixNano()
	}
	if !to.IsZero() {
		hi = to.UnixNano()
	}
	var d store.RecordDecoder
	for _, b := range blocks {
		if b.first+uint64(len(b.times)) <= first || b.maxT < lo || b.minT >= hi {
			continue
		}
		more := true
		err := d.Decode(b.body, func(i int, op *flow.Operation) bool {
			seq := b.first + uint64(i)
			if t := b.times[i]; seq < first || t < lo || t >= hi {
				return true
			}
			more = fn(seq, op)
			return more
		})
		if err != nil {
			return err
		}
		if !more {
			break
		}
	}
	return nil
}

// span is what the window holds: how many operations, and the times of
// the oldest and newest.
func (w *window) span() (n int, from, to time.Time) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.next == 0 {
		return 0, from, to
	}
	first := w.first()
	return int(w.next - first), time.Unix(0, w.timeOf(first)).UTC(), time.Unix(0, w.timeOf(w.next-1)).UTC()
}

// timeOf is the time of a held operation; the lock is held.
func (w *window) timeOf(seq uint64) int64 {
	if open := w.next - uint64(len(w.times)); seq >= open {
		return w.times[seq-open]
	}
	i, _ := slices.BinarySearchFunc(w.blocks, seq, func(b windowBlock, seq uint64) int {
		switch {
		case b.first+uint64(len(b.times)) <= seq:
			return -1
		case b.first > seq:
			return 1
		}
		return 0
	})
	b := w.blocks[i]
	return b.times[seq-b.first]
}

// added is how many operations the window was given.
func (w *window) added() uint64 {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.next
}
