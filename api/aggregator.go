package api

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/icptrack/icptrack/flow"
)

// aggregatorQueue is how many operations may wait for the graph's
// goroutine before the graph misses some (counted).
const aggregatorQueue = 1 << 16

// aggregator keeps the live graph: the sink offers it each operation, and
// its own goroutine adds them up, so that building a graph for a client
// never holds up the pipeline.
type aggregator struct {
	keep   time.Duration
	now    func() time.Time
	queue  chan *flow.Operation
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
	a := &aggregator{keep: keep, now: now, queue: make(chan *flow.Operation, aggregatorQueue),
		done: make(chan struct{}), g: newGraphBuilder()}
	go a.run()
	return a
}

func (a *aggregator) offer(op *flow.Operation) {
	select {
	case a.queue <- op:
		a.offered.Add(1)
	default:
		a.missed.Add(1)
	}
}

func (a *aggregator) run() {
	prune := time.NewTicker(time.Second)
	defer prune.Stop()
	for {
		select {
		case <-a.done:
			return
		case op := <-a.queue:
			a.mu.Lock()
			a.g.add(op)
			n := uint64(1)
			// Take what else waits under the same lock.
			for more := true; more; {
				select {
				case op := <-a.queue:
					a.g.add(op)
					n++
				default:
					more = false
				}
			}
			a.mu.Unlock()
			a.added.Add(n)
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

// sync waits until the operations offered so far are added (tests).
func (a *aggregator) sync() {
	for a.added.Load() < a.offered.Load() {
		time.Sleep(time.Millisecond)
	}
}

func (a *aggregator) close() { a.once.Do(func() { close(a.done) }) }
