// Package postgres is the database output: it writes every operation as
// a row of a PostgreSQL table, in batched COPYs, from a goroutine of its
// own behind a bounded queue, so that a slow or absent database never
// holds up capture (README: Databases).
package postgres

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"go.uber.org/zap"

	"github.com/icptrack/icptrack/exporter"
	"github.com/icptrack/icptrack/flow"
)

// Name is the sink's name, in self-metrics and as the reason of the drop
// rows it writes for its own queue.
const Name = "postgres"

// Config says where and how to write.
type Config struct {
	// URL is postgres://USER@HOST:PORT/DATABASE (ParseURL).
	URL string
	// TablePrefix starts the tables' names (DefaultTablePrefix).
	TablePrefix string
	// BatchSize is the most operations one COPY carries (1000).
	BatchSize int
	// BatchTimeout is the longest an operation waits for its batch to
	// fill (1s).
	BatchTimeout time.Duration
	// Queue is the most operations waiting for the database (50000);
	// beyond it, operations are dropped and counted.
	Queue int
	// FlushTimeout bounds how long Flush waits for the database (5s).
	FlushTimeout time.Duration
	// Log is where the sink says that the database went away and came
	// back (nothing if nil).
	Log *zap.Logger
	// Dial, if set, opens the connections (exporter.OwnAddrs.DialContext:
	// a database on this host is then icptrack's own traffic, left out
	// when its server is traced).
	Dial func(ctx context.Context, network, addr string) (net.Conn, error)
}

// Defaults.
const (
	DefaultBatchSize    = 1000
	DefaultBatchTimeout = time.Second
	DefaultQueue        = 50000
	DefaultFlushTimeout = 5 * time.Second
)

// MaxBatchSize and MaxQueue bound the settings.
const (
	MaxBatchSize = 1 << 16
	MaxQueue     = 1 << 24
)

func (c *Config) defaults() {
	if c.TablePrefix == "" {
		c.TablePrefix = DefaultTablePrefix
	}
	if c.BatchSize <= 0 {
		c.BatchSize = DefaultBatchSize
	}
	if c.BatchTimeout <= 0 {
		c.BatchTimeout = DefaultBatchTimeout
	}
	if c.Queue <= 0 {
		c.Queue = DefaultQueue
	}
	if c.FlushTimeout <= 0 {
		c.FlushTimeout = DefaultFlushTimeout
	}
	if c.Log == nil {
		c.Log = zap.NewNop()
	}
}

// Check checks the settings and the URL without connecting: mistakes
// in them are the user's (the CLI exits 2).
func (c Config) Check() error {
	c.defaults()
	if _, err := ParseURL(c.URL); err != nil {
		return err
	}
	if err := CheckTablePrefix(c.TablePrefix); err != nil {
		return err
	}
	if c.BatchSize > MaxBatchSize {
		return fmt.Errorf("batch size %d is too large: use 1 to %d", c.BatchSize, MaxBatchSize)
	}
	if c.Queue > MaxQueue || c.Queue < c.BatchSize {
		return fmt.Errorf("queue %d must hold at least one batch (%d) and at most %d operations", c.Queue, c.BatchSize, MaxQueue)
	}
	return nil
}

// Sink writes operations to PostgreSQL. Add, Tick, RecordDrops, Flush
// and Close are the pipeline's, on its goroutine; Stats may be read
// from any.
type Sink struct {
	cfg    Config
	cc     *pgx.ConnConfig
	url    string // redacted
	tables tables

	// batch is being filled by Add, on the pipeline's goroutine.
	batch   []*flow.Operation
	started time.Time
	queue   chan item

	written, dropped, lagging atomic.Uint64
	copies                    atomic.Uint64

	mu    sync.Mutex
	drops map[string]*dropRow // not written yet, by reason

	w       *writer
	ctx     context.Context
	cancel  context.CancelFunc
	stopped chan struct{}
	closed  bool
}

// item is a batch for the writer, or with done a flush: closed when
// everything queued before it is written or given up.
type item struct {
	ops  []*flow.Operation
	done chan struct{}
}

type dropRow struct {
	time  time.Time
	count uint64
}

var (
	_ exporter.CountingSink = (*Sink)(nil)
	_ exporter.DropRecorder = (*Sink)(nil)
)

// Open connects, creates the tables if they are missing, and starts the
// writer. Its errors are one line that says what to do; a *URLError is
// a malformed URL.
func Open(ctx context.Context, c Config) (*Sink, error) {
	c.defaults()
	if err := c.Check(); err != nil {
		return nil, err
	}
	cc, _ := ParseURL(c.URL)
	if c.Dial != nil {
		cc.DialFunc = c.Dial
	}
	s := &Sink{
		cfg:     c,
		cc:      cc,
		url:     Redact(c.URL),
		tables:  tablesOf(c.TablePrefix),
		queue:   make(chan item, max(c.Queue/c.BatchSize, 1)),
		drops:   make(map[string]*dropRow),
		stopped: make(chan struct{}),
	}
	conn, err := s.connect(ctx)
	if err != nil {
		return nil, startError(c.URL, cc, err)
	}
	if err := ensureSchema(ctx, conn, c.TablePrefix); err != nil {
		conn.Close(context.Background())
		return nil, s.schemaError(err)
	}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	s.w = &writer{s: s, conn: conn}
	go s.w.run()
	c.Log.Info("writing operations to PostgreSQL", zap.String("url", s.url), zap.String("table", s.tables.operations),
		zap.Int("batch_size", c.BatchSize), zap.Int("queue", c.Queue))
	return s, nil
}

func (s *Sink) schemaError(err error) error {
	var urlErr *URLError
	if errors.As(err, &urlErr) {
		return err
	}
	if isServerError(err) {
		return startError(s.cfg.URL, s.cc, err)
	}
	return fmt.Errorf("database %s: %s", s.url, hidePassword(err.Error(), s.cc.Password))
}

// connect opens a connection, within the URL's connect_timeout or 10s.
func (s *Sink) connect(ctx context.Context) (*pgx.Conn, error) {
	limit := s.cc.ConnectTimeout
	if limit <= 0 {
		limit = 10 * time.Second
	}
	ctx, cancel := context.WithTimeout(ctx, limit)
	defer cancel()
	return pgx.ConnectConfig(ctx, s.cc)
}

// Name implements exporter.Sink.
func (s *Sink) Name() string { return Name }

// Table is the operations table's name.
func (s *Sink) Table() string { return s.tables.operations }

// URL is the database's URL, its password hidden.
func (s *Sink) URL() string { return s.url }

// Add implements exporter.Sink: it never waits. It keeps a copy of op:
// the correlator reuses an operation once the pipeline returns
// (flow.New), and the writer reads it later, on its own goroutine.
func (s *Sink) Add(op *flow.Operation) {
	op = op.Clone()
	if len(s.batch) == 0 {
		s.started = time.Now()
		if s.batch == nil {
			s.batch = make([]*flow.Operation, 0, s.cfg.BatchSize)
		}
	}
	s.batch = append(s.batch, op)
	s.lagging.Add(1)
	if len(s.batch) >= s.cfg.BatchSize {
		s.send(time.Now())
	}
}

// Tick implements exporter.Sink: a batch that waited long enough goes.
func (s *Sink) Tick(now time.Time) {
	if len(s.batch) > 0 && now.Sub(s.started) >= s.cfg.BatchTimeout {
		s.send(now)
	}
}

// send queues the batch, or drops it when the queue is full.
func (s *Sink) send(now time.Time) {
	b := s.batch
	s.batch = nil
	select {
	case s.queue <- item{ops: b}:
	default:
		s.lost(now, len(b))
	}
}

// lost counts n operations that will not be written, and keeps them
// for a drop row.
func (s *Sink) lost(now time.Time, n int) {
	if n == 0 {
		return
	}
	s.dropped.Add(uint64(n))
	s.lagging.Add(^uint64(n - 1))
	s.record(now, Name, uint64(n))
}

// RecordDrops implements exporter.DropRecorder: the drops are written
// as rows of the drops table, once the database takes them. The sink's
// own drops it records itself, as they happen: the pipeline's count of
// them (reason postgres) is left out, not to count them twice.
func (s *Sink) RecordDrops(now time.Time, reason string, n uint64) {
	if reason != Name {
		s.record(now, reason, n)
	}
}

func (s *Sink) record(now time.Time, reason string, n uint64) {
	if n == 0 {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if d := s.drops[reason]; d != nil {
		d.count += n
		return
	}
	s.drops[reason] = &dropRow{time: now, count: n}
}

// Stats implements exporter.CountingSink.
func (s *Sink) Stats() exporter.SinkStats {
	return exporter.SinkStats{Written: s.written.Load(), Dropped: s.dropped.Load(), Lagging: s.lagging.Load()}
}

// Copies is the COPYs of operations that succeeded: the batches written.
func (s *Sink) Copies() uint64 { return s.copies.Load() }

// Flush implements exporter.Sink: it sends the batch being filled and
// waits until everything queued is written, or FlushTimeout passes. A
// database that does not take them in time is a backend that is down,
// as for OTLP: it is logged, and what is still waiting at Close is
// counted as dropped, not an error.
func (s *Sink) Flush() error {
	if s.closed {
		return nil
	}
	timeout := time.NewTimer(s.cfg.FlushTimeout)
	defer timeout.Stop()
	done := make(chan struct{})
	b := s.batch
	s.batch = nil
	select {
	case s.queue <- item{ops: b, done: done}:
	case <-timeout.C:
		s.lost(time.Now(), len(b))
		s.behind()
		return nil
	}
	select {
	case <-done:
	case <-timeout.C:
		s.behind()
	}
	return nil
}

func (s *Sink) behind() {
	why := "the database is slow to take them"
	if err := s.w.lastError(); err != nil {
		why = "the database is not taking them: " + err.Error()
	}
	s.cfg.Log.Warn("operations not written to PostgreSQL in time", zap.String("url", s.url),
		zap.Uint64("waiting", s.lagging.Load()), zap.Duration("waited", s.cfg.FlushTimeout), zap.String("why", why))
}

// Close implements exporter.Sink: it stops the writer, and counts what
// it had not written as dropped.
func (s *Sink) Close() error {
	if s.closed {
		return nil
	}
	s.closed = true
	s.cancel()
	<-s.stopped
	now := time.Now()
	s.lost(now, len(s.batch))
	s.batch = nil
	for {
		select {
		case it := <-s.queue:
			s.lost(now, len(it.ops))
			if it.done != nil {
				close(it.done)
			}
		default:
			s.w.close()
			if n := s.Stats().Dropped; n > 0 {
				s.cfg.Log.Warn("operations were not written to PostgreSQL", zap.String("url", s.url), zap.Uint64("dropped", n))
			}
			return nil
		}
	}
}
