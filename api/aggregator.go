package api

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/icptrack/icptrack/flow"
)

// The sink hands the graph's goroutine operations in batches (a channel
// send per operation cost more than the rest of Add); aggregatorQueue
// batches may wait before the graph misses some (counted).
const (
	aggregatorBatch = 256
	aggregatorQueue = 256
)

// aggregator keeps the live graph: the sink offers it each operation, and
// its own goroutine adds them up, so that building a graph for a client
// never holds up the pipeline.
type aggregator struct {
	keep  time.Duration
	now   func() time.Time
	queue chan []flow.Operation
	// batch is being filled by the sink's goroutine, the only one that
	// touches it. It holds copies of the operations without their slices
	// (links, peers, payload), which the graph does not read: no
	// allocation an operation, and batches are used again (pool).
	batch  []flow.Operation
	pool   sync.Pool
	missed atomic.Uint64
	// offered and added count what went in the queue and what came out
	// of it into the graph.
	offered, added atomic.Uint64
	done           chan struct{}
	once           sync.Once

	mu sync.Mutex
	g  *graphBuilder
}

func newAggregator(keep time.Duration, now func() time.Time) *aggregator {
	a := &aggregator{keep: keep, now: now, queue: make(chan []flow.Operation, aggregatorQueue),
		done: make(chan struct{}), g: newGraphBuilder()}
	go a.run()
	return a
}

// offer adds a copy of op to the batch, and hands a full batch on.
func (a *aggregator) offer(op *flow.Operation) {
	if a.batch == nil {
		if b, ok := a.pool.Get().(*[]flow.Operation); ok {
			a.batch = (*b)[:0]
		} else {
			a.batch = make([]flow.Operation, 0, aggregatorBatch)
		}
	}
	a.batch = append(a.batch, *op)
	c := &a.batch[len(a.batch)-1]
	c.Links, c.Peers, c.Payload = nil, nil, nil
	if len(a.batch) == aggregatorBatch {
		a.handOn()
	}
}

// handOn gives the batch to the graph's goroutine, never waiting.
func (a *aggregator) handOn() {
	if len(a.batch) == 0 {
		return
	}
	n := uint64(len(a.batch))
	select {
	case a.queue <- a.batch:
		a.offered.Add(n)
		a.batch = nil
	default:
		a.missed.Add(n)
		a.batch = a.batch[:0]
	}
}

func (a *aggregator) run() {
	prune := time.NewTicker(time.Second)
	defer prune.Stop()
	for {
		select {
		case <-a.done:
			return
		case batch := <-a.queue:
			a.mu.Lock()
			for i := range batch {
				a.g.add(&batch[i])
			}
			a.mu.Unlock()
			a.added.Add(uint64(len(batch)))
			a.pool.Put(&batch)
		case <-prune.C:
			a.mu.Lock()
			a.g.prune(a.now().Add(-a.keep).Unix())
			a.mu.Unlock()
		}
	}
}

// graph is the live graph of the window d ending now.
func (a *aggregator) graph(d time.Duration) *Graph {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.g.graph(a.now(), d)
}

// sync waits until the operations offered so far are added (tests; on
// the sink's goroutine).
func (a *aggregator) sync() {
	a.handOn()
	for a.added.Load() < a.offered.Load() {
		time.Sleep(time.Millisecond)
	}
}

func (a *aggregator) close() { a.once.Do(func() { close(a.done) }) }
