package syslog

import (
	"context"
	"errors"
	"syscall"
	"time"

	"github.com/cenkalti/backoff/v5"
	"go.uber.org/zap"
)

// attempts is how often one message is tried, on a new connection each
// time, before it is given up and counted.
const attempts = 3

// writer is the sink's goroutine: it owns the connection.
type writer struct {
	s       *Sink
	ctx     context.Context // done when the sink stops
	conn    *conn
	backoff *backoff.ExponentialBackOff
	buf     []byte
	logged  string // the failure last logged, so an outage logs once
}

func (s *Sink) run(c *conn) {
	defer close(s.done)
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		<-s.stop
		cancel()
	}()
	w := &writer{s: s, ctx: ctx, conn: c, backoff: &backoff.ExponentialBackOff{
		InitialInterval:     100 * time.Millisecond,
		RandomizationFactor: backoff.DefaultRandomizationFactor,
		Multiplier:          backoff.DefaultMultiplier,
		MaxInterval:         10 * time.Second,
	}}
	w.backoff.Reset()
	defer func() {
		if w.conn != nil {
			w.conn.close()
		}
	}()
	for {
		var it item
		select {
		case it = <-s.prio:
		default:
			select {
			case it = <-s.prio:
			case it = <-s.queue:
			case <-s.stop:
				w.drain()
				return
			}
		}
		w.send(it)
	}
}

// drain counts what is still queued at the end as lost.
func (w *writer) drain() {
	for {
		select {
		case it := <-w.s.prio:
			w.lost(it, w.reportCount(it))
			w.s.waiting.Add(-1)
		case it := <-w.s.queue:
			w.lost(it, 0)
		default:
			return
		}
	}
}

// reportCount takes a report's count, for a report that will not be sent.
func (w *writer) reportCount(it item) uint64 {
	if it.report == "" {
		return 0
	}
	return w.s.tally.take(it.report)
}

// send writes one message, connecting again when it must.
func (w *writer) send(it item) {
	s := w.s
	if it.op == nil {
		defer s.waiting.Add(-1)
	}
	var m message
	var count uint64
	switch {
	case it.op != nil:
		m = operationMessage(it.op)
	case it.checkpoint != nil:
		m = *it.checkpoint
	default:
		if count = s.tally.take(it.report); count == 0 {
			return
		}
		m = reportMessage(it.report, count, s.cfg.RateLimit)
	}
	var truncated bool
	w.buf, truncated = s.enc.encode(w.buf[:0], &m)
	if truncated {
		s.truncated.Add(1)
	}
	for try := 1; ; try++ {
		if w.conn == nil && !w.reconnect() {
			w.lost(it, count)
			return
		}
		err := w.conn.write(w.buf, s.cfg.Timeout)
		if err == nil {
			w.sent(it)
			return
		}
		w.fail(err)
		if try == attempts || errors.Is(err, syscall.EMSGSIZE) {
			w.lost(it, count)
			return
		}
	}
}

func (w *writer) sent(it item) {
	switch {
	case it.op != nil:
		w.s.written.Add(1)
		w.s.lagging.Add(-1)
	case it.checkpoint != nil:
		w.s.checkpointsSent.Add(1)
	}
}

// lost counts a message that could not be sent. A report's count goes
// back to its tally, to be told in the next one.
func (w *writer) lost(it item, count uint64) {
	switch {
	case it.op != nil:
		w.s.lagging.Add(-1)
		w.s.lose(1)
	case it.checkpoint != nil:
		w.s.checkpointsLost.Add(1)
		w.s.log.Warn("a checkpoint could not be sent to syslog", zap.String("checkpoint", it.checkpoint.text), zap.String("error", w.s.lastError()))
	default:
		w.s.tally.add(it.report, count)
	}
}

// fail drops the connection after err.
func (w *writer) fail(err error) {
	w.s.setErr(err)
	if w.conn != nil {
		w.conn.close()
		w.conn = nil
	}
	if msg := err.Error(); msg != w.logged {
		w.logged = msg
		w.s.log.Warn("cannot send to syslog: retrying, and counting what is dropped meanwhile", zap.Error(err))
	}
}

// reconnect connects again, backing off between tries, until it succeeds
// or the sink stops.
func (w *writer) reconnect() bool {
	for {
		t := time.NewTimer(w.backoff.NextBackOff())
		select {
		case <-t.C:
		case <-w.ctx.Done():
			t.Stop()
			return false
		}
		c, err := w.s.dialer.connect(w.ctx)
		if err != nil {
			if w.ctx.Err() != nil {
				return false
			}
			w.fail(err)
			continue
		}
		w.conn = c
		w.backoff.Reset()
		w.s.reconnects.Add(1)
		if w.logged != "" {
			w.s.log.Info("the syslog server is reachable again", zap.Stringer("target", w.s.target),
				zap.Uint64("dropped_so_far", w.s.dropped.Load()))
			w.logged = ""
		}
		return true
	}
}
