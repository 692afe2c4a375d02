// Package syslog is icptrack's syslog output: operations chosen with the
// filter language, and notices of what was lost, as RFC 5424 messages
// over a unix socket, UDP, TCP or TLS (RFC 5425 octet counting on
// streams), rate-limited, from a queue that never blocks the tracer.
package syslog

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/icptrack/icptrack/exporter"
	"github.com/icptrack/icptrack/filter"
	"github.com/icptrack/icptrack/flow"
)

// DefaultFilter chooses what goes to syslog unless told otherwise: the
// operations that failed. Drops are always reported.
const DefaultFilter = "error"

// DefaultRateLimit is the messages a second about operations sent at most.
const DefaultRateLimit = 1000

// DefaultMaxDatagram is where a message over UDP is cut: RFC 5424 asks
// every receiver to take 2048 octets.
const DefaultMaxDatagram = 2048

// minDatagram is the least a receiver must take (RFC 5424 section 6.1).
const minDatagram = 480

// Config says where messages go and which.
type Config struct {
	// URL is unix:///dev/log, udp://host:port, tcp://host:port or
	// tls://host:port.
	URL string
	// Facility is a facility name (ParseFacility); "" is daemon.
	Facility string
	// Filter chooses the operations sent; nil is DefaultFilter.
	Filter *filter.Filter
	// RateLimit is the operations sent a second at most (with a burst of
	// as many); 0 for no limit.
	RateLimit float64
	// CAFile, CertFile and KeyFile set up TLS: the CA that signed the
	// server's certificate (default: the system's), and icptrack's own
	// certificate for servers that ask for one.
	CAFile, CertFile, KeyFile string
	// Hostname is HOSTNAME; "" is this host's name.
	Hostname string
	// QueueSize is the messages that may wait to be written (default 4096);
	// beyond it, operations are dropped and counted.
	QueueSize int
	// MaxDatagram is the longest UDP message; default DefaultMaxDatagram.
	MaxDatagram int
	// Timeout bounds a connection's set-up and each write (default 5s);
	// FlushTimeout how long Flush waits for a server that is down
	// (default 5s).
	Timeout, FlushTimeout time.Duration
	// Dial opens TCP and UDP connections (icptrack's own, recorded so that
	// a traced server's side of them is left out); nil is net.Dialer's.
	Dial func(ctx context.Context, network, address string) (net.Conn, error)
	// Log says when the server cannot be reached, and when it is back.
	Log *zap.Logger
}

// checkpointQueue is how many checkpoints and reports may wait ahead of
// the operations.
const checkpointQueue = 256

// item is one message to write: an operation, a report or a checkpoint.
type item struct {
	op         *flow.Operation
	report     string // a tally key
	checkpoint *message
}

// Sink sends operations to a syslog server. It is an exporter.Sink, a
// CountingSink and a DropRecorder; Checkpoint may be called from any
// goroutine.
type Sink struct {
	cfg    Config
	target Target
	filter *filter.Filter
	enc    encoder
	dialer dialer
	log    *zap.Logger

	queue chan item // operations
	prio  chan item // reports and checkpoints, written first
	stop  chan struct{}
	done  chan struct{}
	once  sync.Once

	// The tracer's goroutine's own.
	limit        limiter
	lastSuppress time.Time // when the rate limit last held an operation back
	rateSince    time.Time // when the count of those began, or was last queued to be reported
	lastReport   time.Time

	tally *tally

	written, dropped, suppressed, truncated atomic.Uint64
	lagging                                 atomic.Int64
	waiting                                 atomic.Int64 // reports and checkpoints queued or being written
	checkpointsSent, checkpointsLost        atomic.Uint64
	reconnects                              atomic.Uint64
	lastErr                                 atomic.Pointer[string]
	flushTimedOut                           atomic.Bool
}

var (
	_ exporter.CountingSink = (*Sink)(nil)
	_ exporter.DropRecorder = (*Sink)(nil)
)

// New checks cfg, connects, and starts the writer. A server that cannot
// be reached is not an error (the writer retries, and counts what it
// drops meanwhile); a TLS server whose certificate is refused is, a
// *CertificateError.
func New(cfg Config) (*Sink, error) {
	target, err := ParseURL(cfg.URL)
	if err != nil {
		return nil, err
	}
	if cfg.Facility == "" {
		cfg.Facility = DefaultFacility
	}
	facility, err := ParseFacility(cfg.Facility)
	if err != nil {
		return nil, err
	}
	if cfg.RateLimit < 0 {
		return nil, fmt.Errorf("a rate limit of %g is negative: use messages a second, or 0 for no limit", cfg.RateLimit)
	}
	if cfg.Filter == nil {
		cfg.Filter, _ = filter.Parse(DefaultFilter)
	}
	if cfg.Hostname == "" {
		cfg.Hostname, _ = os.Hostname()
	}
	cfg.QueueSize = cmp(cfg.QueueSize, 4096)
	cfg.MaxDatagram = cmp(cfg.MaxDatagram, DefaultMaxDatagram)
	if cfg.MaxDatagram < minDatagram {
		return nil, fmt.Errorf("a datagram of %d bytes is too short for a syslog message: use at least %d", cfg.MaxDatagram, minDatagram)
	}
	cfg.Timeout = cmp(cfg.Timeout, 5*time.Second)
	cfg.FlushTimeout = cmp(cfg.FlushTimeout, 5*time.Second)
	if cfg.Log == nil {
		cfg.Log = zap.NewNop()
	}
	if cfg.Dial == nil {
		var d net.Dialer
		cfg.Dial = d.DialContext
	}
	s := &Sink{
		cfg: cfg, target: target, filter: cfg.Filter, log: cfg.Log,
		enc:   encoder{facility: facility, hostname: validName(cfg.Hostname, 255)},
		queue: make(chan item, cfg.QueueSize),
		prio:  make(chan item, checkpointQueue),
		stop:  make(chan struct{}),
		done:  make(chan struct{}),
		limit: newLimiter(cfg.RateLimit, time.Now()),
		tally: newTally(),
	}
	if target.Transport == UDP {
		s.enc.maxDatagram = cfg.MaxDatagram
	}
	s.dialer = dialer{target: target, dial: cfg.Dial, timeout: cfg.Timeout}
	if target.Transport == TLS {
		if s.dialer.tls, err = tlsConfig(target.Host, cfg.CAFile, cfg.CertFile, cfg.KeyFile); err != nil {
			return nil, err
		}
	} else if cfg.CAFile != "" || cfg.CertFile != "" || cfg.KeyFile != "" {
		return nil, fmt.Errorf("syslog.ca_file, cert_file and key_file are for TLS: use a tls:// URL, not %s://", target.Transport)
	}
	c, err := s.dialer.connect(context.Background())
	var ce *CertificateError
	if errors.As(err, &ce) {
		return nil, err
	}
	if err != nil {
		s.setErr(err)
		s.log.Warn("the syslog server cannot be reached yet: icptrack keeps trying, and counts what it drops meanwhile", zap.Error(err))
	}
	go s.run(c)
	return s, nil
}

func cmp[T int | time.Duration](v, def T) T {
	if v == 0 {
		return def
	}
	return v
}

// Name is "syslog".
func (s *Sink) Name() string { return "syslog" }

// Target is where the messages go.
func (s *Sink) Target() Target { return s.target }

// Add queues op's message if the filter chooses op and the rate limit
// lets it through; otherwise it counts op as suppressed, or, with the
// queue full, as dropped.
func (s *Sink) Add(op *flow.Operation) {
	if !s.filter.Match(op) {
		return
	}
	now := time.Now()
	if !s.limit.allow(now) {
		s.suppressed.Add(1)
		s.tally.add(reportRateLimit, 1)
		s.lastSuppress = now
		if s.rateSince.IsZero() {
			s.rateSince = now
		}
		return
	}
	s.lagging.Add(1)
	select {
	// A copy: the correlator reuses op once Add returns.
	case s.queue <- item{op: op.Clone()}:
	default:
		s.lagging.Add(-1)
		s.lose(1)
	}
}

// lose counts n operations dropped, to be reported when messages flow
// again.
func (s *Sink) lose(n uint64) {
	s.dropped.Add(n)
	s.tally.add(dropPrefix+ownReason, n)
}

// rateLimitLifted is how long no operation may be held back before the
// count of those that were is reported; rateLimitReport how often it is
// reported while the limit holds.
const (
	rateLimitLifted = time.Second
	rateLimitReport = 10 * time.Second
)

// Tick queues the reports that are due: operations lost, once a second at
// most per reason, and those the rate limit held back, once it has lifted
// (or every 10s while it holds).
func (s *Sink) Tick(now time.Time) {
	if now.Sub(s.lastReport) < time.Second {
		return
	}
	s.lastReport = now
	s.queueReports(func(key string) bool {
		if key != reportRateLimit {
			return true
		}
		return now.Sub(s.lastSuppress) >= rateLimitLifted || now.Sub(s.rateSince) >= rateLimitReport
	})
}

func (s *Sink) queueReports(want func(string) bool) {
	for _, key := range s.tally.due(want) {
		s.waiting.Add(1)
		select {
		case s.prio <- item{report: key}:
			if key == reportRateLimit {
				s.rateSince = time.Now()
			}
		default:
			s.waiting.Add(-1)
			s.tally.unqueue(key) // the next tick tries again; the count keeps growing
		}
	}
}

// RecordDrops reports n operations lost for reason, in a notice at the
// next tick (one per reason per second, however often it is called).
func (s *Sink) RecordDrops(_ time.Time, reason string, n uint64) {
	if reason == s.Name() {
		return // its own drops, which it counts and reports itself
	}
	s.tally.add(dropPrefix+reason, n)
}

// Checkpoint sends msg with the fields sd (a checkpoint@32473 element)
// ahead of the operations and beyond the rate limit. One that cannot be
// queued or sent is counted (Stats().CheckpointsLost), never silently lost.
func (s *Sink) Checkpoint(msg string, sd map[string]string) {
	m := checkpointMessage(msg, sd)
	s.waiting.Add(1)
	select {
	case s.prio <- item{checkpoint: &m}:
	default:
		s.waiting.Add(-1)
		s.checkpointsLost.Add(1)
		s.log.Warn("a checkpoint could not be queued for syslog", zap.String("checkpoint", msg))
	}
}

// Flush queues the reports still pending and waits, at most
// FlushTimeout, until every message queued has been written or given up.
func (s *Sink) Flush() error {
	s.queueReports(func(string) bool { return true })
	deadline := time.Now().Add(s.cfg.FlushTimeout)
	s.flushTimedOut.Store(false)
	for s.lagging.Load() > 0 || s.waiting.Load() > 0 {
		if time.Now().After(deadline) {
			s.flushTimedOut.Store(true)
			return fmt.Errorf("syslog %s: %d messages still waiting after %s: %s", s.target, s.lagging.Load()+s.waiting.Load(), s.cfg.FlushTimeout, s.lastError())
		}
		time.Sleep(5 * time.Millisecond)
	}
	return nil
}

// Close flushes (unless the last Flush already waited for a server that
// is down), stops the writer and counts what it still held as dropped.
func (s *Sink) Close() error {
	var err error
	if !s.flushTimedOut.Load() {
		err = s.Flush()
	}
	s.once.Do(func() { close(s.stop) })
	<-s.done
	return err
}

// Stats are the sink's counts: SinkStats for the pipeline, and the rest.
type Stats struct {
	exporter.SinkStats
	// Suppressed are the operations the rate limit held back.
	Suppressed uint64
	// Truncated are the messages cut to fit a UDP datagram.
	Truncated uint64
	// CheckpointsSent and CheckpointsLost count Checkpoint's messages.
	CheckpointsSent, CheckpointsLost uint64
	// Reconnects are the connections made again after one failed.
	Reconnects uint64
	// LastError is the last reason a connection or a write failed; "" if
	// none did.
	LastError string
}

// Stats are the operations written, dropped and waiting.
func (s *Sink) Stats() exporter.SinkStats { return s.AllStats().SinkStats }

// AllStats are every count the sink keeps.
func (s *Sink) AllStats() Stats {
	return Stats{
		SinkStats: exporter.SinkStats{
			Written: s.written.Load(),
			Dropped: s.dropped.Load(),
			Lagging: uint64(max(s.lagging.Load(), 0)),
		},
		Suppressed:      s.suppressed.Load(),
		Truncated:       s.truncated.Load(),
		CheckpointsSent: s.checkpointsSent.Load(),
		CheckpointsLost: s.checkpointsLost.Load(),
		Reconnects:      s.reconnects.Load(),
		LastError:       s.lastError(),
	}
}

func (s *Sink) setErr(err error) {
	e := err.Error()
	s.lastErr.Store(&e)
}

func (s *Sink) lastError() string {
	if e := s.lastErr.Load(); e != nil {
		return *e
	}
	return ""
}
