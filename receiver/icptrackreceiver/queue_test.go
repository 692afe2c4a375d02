package icptrackreceiver

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/consumer/consumererror"
)

// batch stands for a pdata batch: an id and how many items it holds.
type batch struct{ id, items int }

func batchItems(b batch) int { return b.items }

// queueLog records what a queue reported.
type queueLog struct {
	mu      sync.Mutex
	dropped map[dropReason]int // items
	retries int
}

func newQueueLog() *queueLog {
	return &queueLog{dropped: map[dropReason]int{}}
}

func (l *queueLog) events() queueEvents {
	return queueEvents{
		dropped: func(r dropReason, items int, _ error) {
			l.mu.Lock()
			defer l.mu.Unlock()
			l.dropped[r] += items
		},
		retried: func(error) {
			l.mu.Lock()
			defer l.mu.Unlock()
			l.retries++
		},
	}
}

func (l *queueLog) snapshot() (map[dropReason]int, int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	d := map[dropReason]int{}
	for k, v := range l.dropped {
		d[k] = v
	}
	return d, l.retries
}

var errBusy = errors.New("data refused due to high memory usage") // what memory_limiter says

// A pipeline that refuses with a retryable error gets each batch again,
// later each time, until it takes it: nothing is lost, nothing is taken
// twice, and the order holds.
func TestQueueRetriesRetryableRefusalsWithBackoff(t *testing.T) {
	const refusals = 4
	retry := backoff{initial: 4 * time.Millisecond, max: 32 * time.Millisecond}
	var mu sync.Mutex
	offers := map[int][]time.Time{}
	var accepted []int
	log := newQueueLog()
	q := newQueue(16, retry, log.events(), batchItems, func(_ context.Context, b batch) error {
		mu.Lock()
		defer mu.Unlock()
		offers[b.id] = append(offers[b.id], time.Now())
		if len(offers[b.id]) <= refusals {
			return errBusy
		}
		accepted = append(accepted, b.id)
		return nil
	})
	for id := range 5 {
		q.put(batch{id: id, items: 10 + id})
	}
	q.close(context.Background())

	require.Equal(t, []int{0, 1, 2, 3, 4}, accepted, "every batch accepted once, in order")
	dropped, retries := log.snapshot()
	require.Empty(t, dropped, "nothing dropped")
	require.Equal(t, 5*refusals, retries)
	// The k-th wait is drawn from [d/2, d] with d = initial·2^k, at most max.
	for id, at := range offers {
		require.Len(t, at, refusals+1, "batch %d", id)
		d := retry.initial
		for k := 1; k < len(at); k++ {
			if gap := at[k].Sub(at[k-1]); gap < d/2 {
				t.Errorf("batch %d: wait %d was %s, want at least %s", id, k, gap, d/2)
			}
			d = retry.next(d)
		}
	}
	require.Equal(t, 32*time.Millisecond, retry.next(retry.next(retry.next(retry.next(retry.initial)))), "the backoff stops at max")
}

// A permanent refusal is final: the batch is dropped and counted, and
// never offered again.
func TestQueueDropsPermanentRefusals(t *testing.T) {
	var mu sync.Mutex
	offered := map[int]int{}
	log := newQueueLog()
	q := newQueue(16, backoff{initial: time.Millisecond, max: time.Millisecond}, log.events(), batchItems, func(_ context.Context, b batch) error {
		mu.Lock()
		defer mu.Unlock()
		offered[b.id]++
		if b.id%2 == 1 {
			return consumererror.NewPermanent(errors.New("bad data"))
		}
		return nil
	})
	for id := range 6 {
		q.put(batch{id: id, items: 100 + id})
	}
	q.close(context.Background())

	require.Equal(t, map[int]int{0: 1, 1: 1, 2: 1, 3: 1, 4: 1, 5: 1}, offered, "each batch offered once")
	dropped, retries := log.snapshot()
	require.Equal(t, map[dropReason]int{dropRefused: 101 + 103 + 105}, dropped)
	require.Zero(t, retries)
}

// While the pipeline holds a batch, the queue fills; a batch that finds it
// full is dropped and counted, and those in the queue still go through.
func TestQueueDropsWhenFull(t *testing.T) {
	const size = 3
	taken, release := make(chan struct{}), make(chan struct{})
	var mu sync.Mutex
	var accepted []int
	log := newQueueLog()
	q := newQueue(size, defaultBackoff, log.events(), batchItems, func(_ context.Context, b batch) error {
		if b.id == 0 {
			close(taken)
			<-release
		}
		mu.Lock()
		defer mu.Unlock()
		accepted = append(accepted, b.id)
		return nil
	})
	q.put(batch{id: 0, items: 1})
	<-taken // the pipeline holds batch 0: the queue is empty
	for id := 1; id <= size; id++ {
		q.put(batch{id: id, items: 1})
	}
	q.put(batch{id: 99, items: 7}) // finds the queue full
	dropped, _ := log.snapshot()
	require.Equal(t, map[dropReason]int{dropQueueFull: 7}, dropped)
	close(release)
	q.close(context.Background())
	require.Equal(t, []int{0, 1, 2, 3}, accepted)
}

// A pipeline that refuses forever cannot hold shutdown beyond its
// context: what is left is dropped and counted, and so is what comes
// after.
func TestQueueShutdownIsBoundedByItsContext(t *testing.T) {
	var offers int
	var mu sync.Mutex
	log := newQueueLog()
	q := newQueue(16, backoff{initial: time.Millisecond, max: 5 * time.Millisecond}, log.events(), batchItems, func(context.Context, batch) error {
		mu.Lock()
		defer mu.Unlock()
		offers++
		return errBusy
	})
	for id := range 3 {
		q.put(batch{id: id, items: 10})
	}
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	began := time.Now()
	q.close(ctx)
	if took := time.Since(began); took > 2*time.Second {
		t.Fatalf("close took %s with a 100ms context", took)
	}
	q.put(batch{id: 3, items: 5})
	dropped, retries := log.snapshot()
	require.Equal(t, map[dropReason]int{dropShutdown: 35}, dropped)
	require.Positive(t, retries, "the first batch was offered again until the end")
	mu.Lock()
	defer mu.Unlock()
	require.Equal(t, retries+1, offers, "offered once, then once per retry")
}
