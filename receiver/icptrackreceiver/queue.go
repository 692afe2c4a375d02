package icptrackreceiver

import (
	"context"
	"math/rand/v2"
	"sync"
	"time"

	"go.opentelemetry.io/collector/consumer/consumererror"
)

// dropReason is why a queue gave up on a batch.
type dropReason int

const (
	// dropQueueFull: the batch found the queue full, because the pipeline
	// refused or was slow for longer than queue_size batches last.
	dropQueueFull dropReason = iota
	// dropRefused: the next consumer refused the batch with a permanent
	// error, which says that sending it again cannot succeed.
	dropRefused
	// dropShutdown: the receiver was shutting down and its context was
	// done before the pipeline took the batch.
	dropShutdown
)

func (r dropReason) String() string {
	switch r {
	case dropQueueFull:
		return "queue_full"
	case dropRefused:
		return "refused"
	default:
		return "shutdown"
	}
}

// backoff is how long a queue waits before it offers a refused batch
// again: initial, doubled after each refusal up to max.
type backoff struct {
	initial, max time.Duration
}

// defaultBackoff starts short, because memory_limiter refuses only until
// the garbage collector has run, and ends near its default check
// interval (1s), beyond which waiting longer learns nothing new.
var defaultBackoff = backoff{initial: 10 * time.Millisecond, max: time.Second}

// next is the wait after one that lasted d: doubled, at most max.
func (b backoff) next(d time.Duration) time.Duration {
	return min(2*d, b.max)
}

// jitter spreads a wait over [d/2, d], so that the queues of several
// pipelines refused together do not come back together.
func jitter(d time.Duration) time.Duration {
	if d <= 1 {
		return d
	}
	return d/2 + rand.N(d/2+1)
}

// queueEvents are told what a queue did with the batches it lost or
// retried: they count it and say so.
type queueEvents struct {
	// dropped is called with the items (spans, log records, data
	// points) of a batch the queue gave up on; err is the consumer's
	// refusal, or nil.
	dropped func(reason dropReason, items int, err error)
	// retried is called each time the queue offers again a batch the
	// consumer refused with a retryable error, after the backoff.
	retried func(err error)
}

// queue hands batches to one Collector pipeline from a goroutine of its
// own, so that a slow or refusing pipeline never stalls capture: put
// never blocks. What the next consumer answers decides what becomes of a
// batch, as the Collector's consume contract asks (receiver/doc.go,
// consumererror):
//   - accepted: done;
//   - refused with a permanent error: dropped and counted, never offered
//     again, since it would be refused again;
//   - refused otherwise (memory_limiter's way of asking receivers to back
//     off): offered again after a backoff, as many times as it takes,
//     while the batches behind it wait in the queue.
//
// The kernel cannot be asked to slow down, so the queue is where the
// receiver's patience ends: a batch that finds it full is dropped and
// counted. close lets the queue drain, retries included, until its
// context is done, and then drops and counts what is left.
type queue[T any] struct {
	ch      chan T
	count   func(T) int
	consume func(context.Context, T) error
	retry   backoff
	events  queueEvents
	done    chan struct{}
	// ctx is consume's context: cancelled when close gives up.
	ctx    context.Context
	cancel context.CancelFunc
	mu     sync.Mutex
	closed bool
}

func newQueue[T any](size int, retry backoff, events queueEvents, count func(T) int, consume func(context.Context, T) error) *queue[T] {
	q := &queue[T]{ch: make(chan T, size), count: count, consume: consume, retry: retry, events: events, done: make(chan struct{})}
	q.ctx, q.cancel = context.WithCancel(context.Background())
	go q.run()
	return q
}

// put queues a batch, or drops it when the queue is full or closed.
func (q *queue[T]) put(v T) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.closed {
		q.events.dropped(dropShutdown, q.count(v), nil)
		return
	}
	select {
	case q.ch <- v:
	default:
		q.events.dropped(dropQueueFull, q.count(v), nil)
	}
}

func (q *queue[T]) run() {
	defer close(q.done)
	for v := range q.ch {
		q.deliver(v)
	}
}

// deliver offers v to the consumer until it is accepted, refused for
// good, or the queue gives up at shutdown.
func (q *queue[T]) deliver(v T) {
	wait := q.retry.initial
	var err error
	for {
		if q.ctx.Err() != nil {
			q.events.dropped(dropShutdown, q.count(v), err)
			return
		}
		if err != nil {
			q.events.retried(err)
		}
		err = q.consume(q.ctx, v)
		switch {
		case err == nil:
			return
		case consumererror.IsPermanent(err):
			q.events.dropped(dropRefused, q.count(v), err)
			return
		}
		t := time.NewTimer(jitter(wait))
		select {
		case <-t.C:
		case <-q.ctx.Done():
			t.Stop()
		}
		wait = q.retry.next(wait)
	}
}

// close stops taking batches and lets the queue drain until ctx is done;
// then it drops what is left. It returns once the queue's goroutine has
// ended, which a consumer that ignores its context can delay.
func (q *queue[T]) close(ctx context.Context) {
	q.mu.Lock()
	if !q.closed {
		q.closed = true
		close(q.ch)
	}
	q.mu.Unlock()
	select {
	case <-q.done:
	case <-ctx.Done():
		q.cancel()
		<-q.done
	}
	q.cancel()
}
