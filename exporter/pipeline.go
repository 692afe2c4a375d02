package exporter

import (
	"errors"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"time"

	"github.com/icptrack/icptrack/filter"
	"github.com/icptrack/icptrack/flow"
)

// Outputs are what a Pipeline feeds; any may be nil.
type Outputs struct {
	EventLog io.Writer
	// Events, when set, writes the event log in its own format
	// (NewWriter) instead of JSON Lines to EventLog.
	Events  OpWriter
	Summary *Summary
	Spans   *Spans
	Metrics *Metrics
	Logs    *Logs
	// Own are icptrack's own addresses, whose traffic is left out.
	Own *OwnAddrs
	// Kernel, in metrics mode, takes the kernel's counts, which
	// Aggregates (the tracer's) reads every second.
	Kernel     *KernelMetrics
	Aggregates func(func(*flow.Aggregate)) error
	// Filter, if set, decides which operations the outputs see. It runs
	// after correlation, so a kept receive still names the sender and
	// the sends it delivered when those were filtered out.
	Filter *filter.Filter
	// Sinks are more outputs (the store, syslog, the database), after
	// those above. The pipeline owns them: Finish flushes and closes
	// them.
	Sinks []Sink
	// Losses, if set, says how many operations were lost before the
	// pipeline, per reason (ring_buffer, export_queue: totals since the
	// start). Every second the pipeline hands what is new, and what its
	// sinks dropped, to the sinks that record drops (DropRecorder).
	Losses func() map[string]uint64
}

// Pipeline takes the tracer's events through correlation to the outputs:
// the standalone agent and the Collector receiver both run one. It is the
// tracer's handler; everything runs on the tracer's goroutine.
type Pipeline struct {
	corr        *flow.Correlator
	out         Outputs
	sinks       []*sinkEntry
	recorders   []DropRecorder
	lastObserve time.Time
	lastCount   time.Time
	lastDrops   time.Time
	lost        map[string]uint64        // what was handed to recorders, per reason
	removed     map[string]*retiredStats // the counts of sinks a reload removed, by name
	// sinksMu guards sinks against SinkStats, on other goroutines, while
	// a reload changes them; the pipeline's goroutine reads them freely.
	sinksMu    sync.Mutex
	retiring   sync.WaitGroup // sinks a reload took out, closing
	ownTraffic uint64
	filtered   uint64
	countErr   error
}

// sinkEntry is a sink and what the pipeline counts for it.
type sinkEntry struct {
	Sink
	counting CountingSink // nil when the pipeline counts
	written  atomic.Uint64
	owned    bool // from Outputs.Sinks: closed by Finish
	// retired are the counts of the sinks this one replaced (Reload).
	retired *retiredStats
}

func newSinkEntry(s Sink, owned bool) *sinkEntry {
	e := &sinkEntry{Sink: s, owned: owned, retired: &retiredStats{}}
	e.counting, _ = s.(CountingSink)
	return e
}

// ownStats are what the entry's sink counted, without those it replaced.
func (e *sinkEntry) ownStats() SinkStats {
	if e.counting != nil {
		return e.counting.Stats()
	}
	return SinkStats{Written: e.written.Load()}
}

func (e *sinkEntry) stats() SinkStats {
	st := e.ownStats()
	st.Written += e.retired.written.Load()
	st.Dropped += e.retired.dropped.Load()
	return st
}

// NewPipeline feeds out from a new correlator.
func NewPipeline(out Outputs) *Pipeline {
	p := &Pipeline{out: out, lost: map[string]uint64{}, removed: map[string]*retiredStats{}}
	var sinks []Sink
	switch {
	case out.Events != nil:
		sinks = append(sinks, EventLogSink(out.Events, nil))
	case out.EventLog != nil:
		sinks = append(sinks, EventLogSink(NewEventLog(out.EventLog), nil))
	}
	if out.Summary != nil {
		sinks = append(sinks, summarySink{out.Summary})
	}
	if out.Spans != nil {
		sinks = append(sinks, spansSink{s: out.Spans})
	}
	if out.Metrics != nil {
		sinks = append(sinks, metricsSink{out.Metrics})
	}
	if out.Logs != nil {
		sinks = append(sinks, logsSink{out.Logs})
	}
	builtIn := len(sinks)
	for i, s := range append(sinks, out.Sinks...) {
		e := newSinkEntry(s, i >= builtIn)
		p.sinks = append(p.sinks, e)
		if r, ok := s.(DropRecorder); ok {
			p.recorders = append(p.recorders, r)
		}
	}
	p.corr = flow.New(p.operation, flow.DefaultOptions())
	return p
}

// Event takes one event from the tracer.
func (p *Pipeline) Event(ev *flow.Event) {
	if (ev.Mechanism == flow.TCP || ev.Mechanism == flow.UDP) && p.out.Own.Has(ev.Remote) {
		p.ownTraffic++
		return
	}
	p.corr.Add(ev)
}

// Drained is called after each read of the ring buffer: it releases held
// receives, sends batches that waited long enough, and now and then
// takes the channels' backlog for the metrics.
func (p *Pipeline) Drained() {
	p.corr.Tick()
	now := time.Now()
	if p.out.Kernel != nil && now.Sub(p.lastCount) >= time.Second {
		p.lastCount = now
		p.count()
	}
	for _, s := range p.sinks {
		s.Tick(now)
	}
	if p.out.Metrics != nil && now.Sub(p.lastObserve) >= time.Second {
		p.lastObserve = now
		p.out.Metrics.Observe(p.corr)
	}
	if len(p.recorders) > 0 && now.Sub(p.lastDrops) >= time.Second {
		p.lastDrops = now
		p.recordDrops(now)
	}
}

// recordDrops hands the losses since the last call, before the pipeline
// and in its sinks, to the sinks that keep a record of them.
func (p *Pipeline) recordDrops(now time.Time) {
	totals := map[string]uint64{}
	if p.out.Losses != nil {
		for reason, n := range p.out.Losses() {
			totals[reason] += n
		}
	}
	for _, s := range p.sinks {
		if d := s.stats().Dropped; d > 0 {
			totals[s.Name()] += d
		}
	}
	for reason, n := range totals {
		if n <= p.lost[reason] {
			continue
		}
		for _, r := range p.recorders {
			r.RecordDrops(now, reason, n-p.lost[reason])
		}
		p.lost[reason] = n
	}
}

func (p *Pipeline) operation(op *flow.Operation) {
	if p.out.Filter != nil && !p.out.Filter.Match(op) {
		p.filtered++
		return
	}
	for _, s := range p.sinks {
		s.Add(op)
		if s.counting == nil {
			s.written.Add(1)
		}
	}
}

// Finish releases what the correlator still holds and flushes the
// outputs' batches and the event log. Call it after the tracer has
// stopped; shutting down the senders is the caller's.
func (p *Pipeline) Finish() error {
	p.corr.Flush()
	p.retiring.Wait()
	var errs []error
	if p.out.Kernel != nil {
		p.count()
		errs = append(errs, p.countErr)
	}
	if p.out.Metrics != nil {
		p.out.Metrics.Observe(p.corr)
	}
	if len(p.recorders) > 0 {
		p.recordDrops(time.Now())
	}
	for _, s := range p.sinks {
		if err := s.Flush(); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", s.Name(), err))
		}
	}
	for _, s := range p.sinks {
		if s.owned {
			if err := s.Close(); err != nil {
				errs = append(errs, fmt.Errorf("%s: %w", s.Name(), err))
			}
		}
	}
	return errors.Join(errs...)
}

// SinkStats are every sink's self-metrics, in the pipeline's order. It is
// safe to call from any goroutine.
func (p *Pipeline) SinkStats() []NamedSinkStats {
	p.sinksMu.Lock()
	defer p.sinksMu.Unlock()
	out := make([]NamedSinkStats, len(p.sinks))
	for i, s := range p.sinks {
		out[i] = NamedSinkStats{Name: s.Name(), SinkStats: s.stats()}
	}
	return out
}

// count takes the kernel's counts; the first failure is kept for Finish.
func (p *Pipeline) count() {
	if err := p.out.Aggregates(p.out.Kernel.Add); err != nil && p.countErr == nil {
		p.countErr = err
	}
}

// OwnTraffic is the operations left out as icptrack's own traffic.
func (p *Pipeline) OwnTraffic() uint64 { return p.ownTraffic }

// Filtered is the operations the filter left out.
func (p *Pipeline) Filtered() uint64 { return p.filtered }

// Correlator is the pipeline's correlator, for its statistics.
func (p *Pipeline) Correlator() *flow.Correlator { return p.corr }
