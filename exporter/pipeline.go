package exporter

import (
	"errors"
	"io"
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
}

// Pipeline takes the tracer's events through correlation to the outputs:
// the standalone agent and the Collector receiver both run one. It is the
// tracer's handler; everything runs on the tracer's goroutine.
type Pipeline struct {
	corr        *flow.Correlator
	log         OpWriter
	out         Outputs
	lastObserve time.Time
	lastCount   time.Time
	ownTraffic  uint64
	filtered    uint64
	countErr    error
}

// NewPipeline feeds out from a new correlator.
func NewPipeline(out Outputs) *Pipeline {
	p := &Pipeline{out: out}
	switch {
	case out.Events != nil:
		p.log = out.Events
	case out.EventLog != nil:
		p.log = NewEventLog(out.EventLog)
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
	if p.out.Spans == nil && p.out.Metrics == nil && p.out.Logs == nil && p.out.Kernel == nil {
		return
	}
	now := time.Now()
	if p.out.Kernel != nil && now.Sub(p.lastCount) >= time.Second {
		p.lastCount = now
		p.count()
	}
	if p.out.Spans != nil {
		p.out.Spans.Tick(now)
	}
	if p.out.Logs != nil {
		p.out.Logs.Tick(now)
	}
	if p.out.Metrics != nil && now.Sub(p.lastObserve) >= time.Second {
		p.lastObserve = now
		p.out.Metrics.Observe(p.corr)
	}
}

func (p *Pipeline) operation(op *flow.Operation) {
	if p.out.Filter != nil && !p.out.Filter.Match(op) {
		p.filtered++
		return
	}
	if p.log != nil {
		p.log.Write(op)
	}
	if p.out.Summary != nil {
		p.out.Summary.Add(op)
	}
	if p.out.Spans != nil {
		p.out.Spans.Add(op)
	}
	if p.out.Metrics != nil {
		p.out.Metrics.Record(op)
	}
	if p.out.Logs != nil {
		p.out.Logs.Add(op)
	}
}

// Finish releases what the correlator still holds and flushes the
// outputs' batches and the event log. Call it after the tracer has
// stopped; shutting down the senders is the caller's.
func (p *Pipeline) Finish() error {
	p.corr.Flush()
	var errs []error
	if p.out.Kernel != nil {
		p.count()
		errs = append(errs, p.countErr)
	}
	if p.out.Metrics != nil {
		p.out.Metrics.Observe(p.corr)
	}
	if p.out.Spans != nil {
		p.out.Spans.Flush()
	}
	if p.out.Logs != nil {
		p.out.Logs.Flush()
	}
	if p.log != nil {
		errs = append(errs, p.log.Flush())
	}
	return errors.Join(errs...)
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
