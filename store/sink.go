package store

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/icptrack/icptrack/exporter"
	"github.com/icptrack/icptrack/flow"
)

// Sink is the store as one of the pipeline's outputs (an exporter.Sink,
// CountingSink and DropRecorder). Add never blocks the tracer: it copies
// the operation into a batch, and full batches go to the writer's own
// goroutine through a bounded queue. A batch that finds the queue full
// is dropped and counted; the pipeline then hands the count back through
// RecordDrops, and it is written into the store as a drop record as soon
// as the writer gets to it, so that overload shows as such.
type Sink struct {
	w     *Writer
	queue chan item
	free  chan *batch
	cur   *batch
	done  chan struct{}
	// retune says that tuning holds new settings (Retune).
	retune  chan struct{}
	dropped atomic.Uint64
	taken   atomic.Uint64
	written atomic.Uint64

	mu     sync.Mutex
	drops  map[string]uint64 // RecordDrops's, not written yet
	tuning *tuning           // Retune's, not taken up yet
	err    error
	closed bool
}

// SinkOptions tune a Sink.
type SinkOptions struct {
	// Queue is the batches of operations waiting for the writer (default
	// 64 batches of 256: 16,384 operations, about a tenth of a second at
	// 200,000 a second).
	Queue int
	// TickEvery is how often the writer looks at the time when no
	// operation comes: to write a block a second old, to seal at the end
	// of an epoch (default 100ms).
	TickEvery time.Duration
}

const batchSize = 256

// batch is operations on their way to the writer. The operations are
// copies, their slices in arenas of the batch's own, so that a batch is
// reused without allocating per operation.
type batch struct {
	ops   []flow.Operation
	ids   []flow.OpID
	bytes []byte
	pids  []uint32
}

func (b *batch) add(op *flow.Operation) {
	b.ops = append(b.ops, *op)
	c := &b.ops[len(b.ops)-1]
	if n := len(op.Links); n > 0 {
		b.ids = append(b.ids, op.Links...)
		c.Links = b.ids[len(b.ids)-n : len(b.ids) : len(b.ids)]
	}
	if n := len(op.Payload); n > 0 {
		b.bytes = append(b.bytes, op.Payload...)
		c.Payload = b.bytes[len(b.bytes)-n : len(b.bytes) : len(b.bytes)]
	}
	if n := len(op.Peers); n > 0 {
		b.pids = append(b.pids, op.Peers...)
		c.Peers = b.pids[len(b.pids)-n : len(b.pids) : len(b.pids)]
	}
}

func (b *batch) reset() {
	clear(b.ops) // let go of the strings
	b.ops, b.ids, b.bytes, b.pids = b.ops[:0], b.ids[:0], b.bytes[:0], b.pids[:0]
}

// item is a batch, or a request to flush (with the answer's channel).
type item struct {
	b     *batch
	flush chan error
}

// NewSink runs w on a goroutine of its own behind a queue. The Sink
// closes w.
func NewSink(w *Writer, o SinkOptions) *Sink {
	if o.Queue <= 0 {
		o.Queue = 64
	}
	if o.TickEvery <= 0 {
		o.TickEvery = 100 * time.Millisecond
	}
	s := &Sink{w: w, queue: make(chan item, o.Queue), free: make(chan *batch, o.Queue+2),
		done: make(chan struct{}), retune: make(chan struct{}, 1), drops: map[string]uint64{}}
	go s.run(o.TickEvery)
	return s
}

// Name is "store".
func (s *Sink) Name() string { return "store" }

// Add copies op into the batch being filled; a full batch goes to the
// writer, or is dropped if the queue is full.
func (s *Sink) Add(op *flow.Operation) {
	if s.cur == nil {
		select {
		case s.cur = <-s.free:
		default:
			s.cur = &batch{ops: make([]flow.Operation, 0, batchSize)}
		}
	}
	s.cur.add(op)
	if len(s.cur.ops) >= batchSize {
		s.send()
	}
}

// send queues the batch being filled, never waiting.
func (s *Sink) send() {
	b := s.cur
	n := uint64(len(b.ops))
	select {
	case s.queue <- item{b: b}:
		s.taken.Add(n)
		s.cur = nil
	default:
		s.dropped.Add(n)
		b.reset()
	}
}

// Tick sends the operations gathered so far, so that the writer can
// write a block once it is a second old.
func (s *Sink) Tick(time.Time) {
	if s.cur != nil && len(s.cur.ops) > 0 {
		s.send()
	}
}

// RecordDrops writes n operations lost for reason into the store, when
// the writer gets to it. It never blocks.
func (s *Sink) RecordDrops(_ time.Time, reason string, n uint64) {
	s.mu.Lock()
	s.drops[reason] += n
	s.mu.Unlock()
}

// Flush waits until the writer has written everything queued, the block
// being filled included, and synced it.
func (s *Sink) Flush() error {
	s.mu.Lock()
	closed := s.closed
	s.mu.Unlock()
	if closed {
		return s.error()
	}
	if s.cur != nil && len(s.cur.ops) > 0 {
		n := uint64(len(s.cur.ops))
		s.queue <- item{b: s.cur} // Flush may wait
		s.taken.Add(n)
		s.cur = nil
	}
	answer := make(chan error, 1)
	s.queue <- item{flush: answer}
	return <-answer
}

// Close flushes and closes the store: its last segment gets its closing
// block (and seal).
func (s *Sink) Close() error {
	err := s.Flush()
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return s.error()
	}
	s.closed = true
	s.mu.Unlock()
	close(s.queue)
	<-s.done
	if err == nil {
		err = s.error()
	}
	return err
}

func (s *Sink) error() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.err
}

// Stats: written is what reached the segment file; lagging what was
// taken but is not there yet (queued, or in the block being filled).
func (s *Sink) Stats() exporter.SinkStats {
	taken, written := s.taken.Load(), s.written.Load()
	return exporter.SinkStats{Written: written, Dropped: s.dropped.Load(), Lagging: taken - min(written, taken)}
}

// run is the writer's goroutine.
func (s *Sink) run(every time.Duration) {
	defer close(s.done)
	tick := time.NewTicker(every)
	defer tick.Stop()
	for {
		select {
		case it, ok := <-s.queue:
			// Settings handed over before this item apply to it: a
			// Flush after Retune's apply finds them taken up.
			s.takeTuning()
			if !ok {
				s.fail(s.w.Close())
				return
			}
			s.recordDrops()
			if it.b != nil {
				if s.w.Err() != nil {
					// A writer that failed (a full disk) writes nothing
					// more: what reaches it is lost, and counted so.
					n := uint64(len(it.b.ops))
					s.dropped.Add(n)
					s.taken.Add(^(n - 1))
				} else {
					for i := range it.b.ops {
						s.fail(s.w.Append(&it.b.ops[i]))
					}
				}
				it.b.reset()
				select {
				case s.free <- it.b:
				default:
				}
			}
			if it.flush != nil {
				err := s.w.Flush()
				s.fail(err)
				s.written.Store(s.w.OpsWritten())
				it.flush <- s.error()
				continue
			}
		case <-s.retune:
			s.takeTuning()
		case now := <-tick.C:
			s.recordDrops()
			s.fail(s.w.Tick(now))
		}
		s.written.Store(s.w.OpsWritten())
	}
}

func (s *Sink) recordDrops() {
	s.mu.Lock()
	drops := s.drops
	if len(drops) == 0 {
		// Not ranged over outside the lock: RecordDrops may be writing
		// into this very map (a fatal concurrent map access).
		s.mu.Unlock()
		return
	}
	s.drops = map[string]uint64{}
	s.mu.Unlock()
	for reason, n := range drops {
		s.fail(s.w.AppendDrops(s.w.o.Clock(), reason, n))
	}
}

func (s *Sink) fail(err error) {
	if err == nil {
		return
	}
	s.mu.Lock()
	if s.err == nil {
		s.err = err
	}
	s.mu.Unlock()
}
