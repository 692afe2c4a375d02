package postgres

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/cenkalti/backoff/v5"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"go.uber.org/zap"

	"github.com/icptrack/icptrack/flow"
)

// attemptTimeout bounds one COPY: a database that stops answering
// mid-stream is then retried on a new connection.
const attemptTimeout = 30 * time.Second

// The writer's backoff between attempts: 100ms, doubling to 5s, with a
// little jitter so that agents restarted together spread out.
func newBackoff() *backoff.ExponentialBackOff {
	return &backoff.ExponentialBackOff{InitialInterval: 100 * time.Millisecond, RandomizationFactor: 0.2, Multiplier: 2, MaxInterval: 5 * time.Second}
}

// writer is the goroutine that writes what the sink queues, and the one
// connection it writes on. It retries until the database takes a batch,
// or refuses it for good; meanwhile the queue fills, and the sink drops
// what does not fit.
type writer struct {
	s    *Sink
	conn *pgx.Conn
	row  []any

	// down: the database stopped taking operations, and that was said.
	down          bool
	droppedAtDown uint64
	lastRefusal   time.Time

	mu   sync.Mutex
	last error
}

func (w *writer) run() {
	defer close(w.s.stopped)
	tick := time.NewTicker(w.s.cfg.BatchTimeout)
	defer tick.Stop()
	for w.s.ctx.Err() == nil {
		select {
		case <-w.s.ctx.Done():
		case it := <-w.s.queue:
			if len(it.ops) > 0 {
				w.writeOperations(it.ops)
			}
			if it.done != nil {
				w.writeDrops()
				close(it.done)
			}
		case <-tick.C:
			// Drops recorded while nothing else comes: their rows
			// still go, once the database takes them.
			w.writeDrops()
		}
	}
}

func (w *writer) writeOperations(ops []*flow.Operation) {
	s := w.s
	if w.row == nil {
		w.row = make([]any, len(columns))
	}
	err := w.retry(func(ctx context.Context, conn *pgx.Conn) error {
		_, err := conn.CopyFrom(ctx, pgx.Identifier{s.tables.operations}, columnNames,
			pgx.CopyFromSlice(len(ops), func(i int) ([]any, error) {
				for c := range columns {
					w.row[c] = columns[c].value(ops[i])
				}
				return w.row, nil
			}))
		return err
	})
	if err != nil {
		s.lost(time.Now(), len(ops))
		w.refused(err, len(ops))
		return
	}
	s.copies.Add(1)
	s.written.Add(uint64(len(ops)))
	s.lagging.Add(^uint64(len(ops) - 1))
	w.writeDrops()
}

// writeDrops writes the drop rows recorded so far. They are taken out of
// the sink while being written, so that drops recorded meanwhile make
// rows of their own, with their own time; they go back if the write
// fails.
func (w *writer) writeDrops() {
	s := w.s
	s.mu.Lock()
	if len(s.drops) == 0 {
		s.mu.Unlock()
		return
	}
	rows := s.drops
	s.drops = make(map[string]*dropRow)
	s.mu.Unlock()
	err := w.retry(func(ctx context.Context, conn *pgx.Conn) error {
		var values [][]any
		for reason, d := range rows {
			values = append(values, []any{d.time, text(reason), int64(d.count)})
		}
		_, err := conn.CopyFrom(ctx, pgx.Identifier{s.tables.drops}, []string{"time", "reason", "count"}, pgx.CopyFromRows(values))
		return err
	})
	if err == nil {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for reason, d := range rows {
		if cur := s.drops[reason]; cur != nil {
			d.count += cur.count
		}
		s.drops[reason] = d
	}
}

// retry runs write on a connection until it succeeds, fails for good,
// or the sink closes, reconnecting with backoff after a failure that
// may pass.
func (w *writer) retry(write func(ctx context.Context, conn *pgx.Conn) error) error {
	ctx := w.s.ctx
	_, err := backoff.Retry(ctx, func() (struct{}, error) {
		if w.conn == nil || w.conn.IsClosed() {
			conn, err := w.s.connect(ctx)
			if err != nil {
				w.failed(err)
				return struct{}{}, err
			}
			w.conn = conn
		}
		actx, cancel := context.WithTimeout(ctx, attemptTimeout)
		defer cancel()
		err := write(actx, w.conn)
		if err == nil {
			w.recovered()
			return struct{}{}, nil
		}
		if !retryable(err, w.conn) {
			return struct{}{}, backoff.Permanent(err)
		}
		w.failed(err)
		w.conn.Close(context.Background())
		w.conn = nil
		return struct{}{}, err
	}, backoff.WithBackOff(newBackoff()), backoff.WithMaxElapsedTime(0))
	return err
}

// retryable tells a failure that may pass (the server gone, restarting,
// out of connections or disk) from one that will not (the database
// refused these rows).
func retryable(err error, conn *pgx.Conn) bool {
	var pg *pgconn.PgError
	if errors.As(err, &pg) {
		switch pg.Code[:2] {
		case "08", "40", "53", "57", "58":
			return true
		}
		return false
	}
	return conn.IsClosed() || errors.Is(err, context.DeadlineExceeded)
}

func isServerError(err error) bool {
	var pg *pgconn.PgError
	return errors.As(err, &pg)
}

// failed notes a failure that will be retried, and says the first.
func (w *writer) failed(err error) {
	w.mu.Lock()
	w.last = err
	w.mu.Unlock()
	if w.down {
		return
	}
	w.down, w.droppedAtDown = true, w.s.dropped.Load()
	w.s.cfg.Log.Warn("PostgreSQL is not taking operations: they wait in the queue, and what does not fit is dropped and counted; retrying",
		zap.String("url", w.s.url), zap.Int("queue", w.s.cfg.Queue), zap.String("error", hidePassword(err.Error(), w.s.cc.Password)))
}

func (w *writer) recovered() {
	if !w.down {
		return
	}
	w.down = false
	w.s.cfg.Log.Warn("PostgreSQL takes operations again", zap.String("url", w.s.url),
		zap.Uint64("dropped_meanwhile", w.s.dropped.Load()-w.droppedAtDown))
}

// refused says that the database refused operations for good, at most
// every 10 seconds.
func (w *writer) refused(err error, n int) {
	if errors.Is(err, context.Canceled) {
		return // closing: Close counts and says it
	}
	w.mu.Lock()
	w.last = err
	w.mu.Unlock()
	if now := time.Now(); now.Sub(w.lastRefusal) >= 10*time.Second {
		w.lastRefusal = now
		w.s.cfg.Log.Error("PostgreSQL refused operations; they are dropped", zap.String("url", w.s.url),
			zap.Int("operations", n), zap.String("error", hidePassword(err.Error(), w.s.cc.Password)))
	}
}

func (w *writer) lastError() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.last == nil {
		return nil
	}
	return errors.New(hidePassword(w.last.Error(), w.s.cc.Password))
}

func (w *writer) close() {
	if w.conn != nil {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		_ = w.conn.Close(ctx)
		w.conn = nil
	}
}
