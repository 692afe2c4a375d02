package exporter

import (
	"slices"
	"sync/atomic"

	"github.com/icptrack/icptrack/filter"
)

// Reload is what a configuration reload (SIGHUP) changes in a running
// pipeline. The pipeline applies it between two operations on its own
// goroutine (Pipeline.Reload), so that each operation goes wholly to the
// outputs before or wholly to those after: none is lost or written twice.
type Reload struct {
	// Filter is the new filter (nil: none).
	Filter *filter.Filter
	// Events, when set, takes the event log's place (EventLogSink: the
	// file opened again, elsewhere, or in another format); the old one
	// is retired.
	Events Sink
	// Sinks maps an added sink's name (Sink.Name) to the sink that takes
	// its place; the old one is retired. A name not running is added,
	// after the others unless First names it.
	Sinks map[string]Sink
	// First names the sinks of Sinks that, if added, go before the
	// others: Finish closes the sinks in order, and the store's last
	// checkpoint must find syslog still open.
	First []string
	// Remove names the added sinks, or the event log ("events"), that
	// the new settings no longer ask for.
	Remove []string
	// Sampling, when set, is the spans' new sample ratio and span cap.
	Sampling *Sampling
	// Spans, when set, take the spans' place, or are added: spans for
	// another OTLP destination, resource or batching. The old ones are
	// retired: their last batch is flushed, then RetireSpans (when set)
	// shuts down where they went. "spans" in Remove takes them out, and
	// retires them the same way.
	Spans       *Spans
	RetireSpans func() error
	// Metrics, when set and the pipeline has none, are added: metric
	// outputs asked for where there were none.
	Metrics *Metrics
}

// Sampling is the spans' sample ratio and span cap (SpanOptions).
type Sampling struct {
	Ratio             float64
	MaxSpansPerSecond float64
}

// Retired is a sink a reload took out: Retire flushes and closes it off
// the pipeline's goroutine, so that a slow close does not hold up
// capture.
type Retired struct {
	Sink Sink
	// next keeps the counts of the sinks of its name: what the old sink
	// writes while it closes goes on there, after at, what it had counted
	// when it was taken out.
	next *retiredStats
	at   SinkStats
}

// Reload applies r. Call it only on the pipeline's goroutine (from the
// tracer's handler, between events). It returns the sinks to retire.
func (p *Pipeline) Reload(r Reload) []Retired {
	p.sinksMu.Lock()
	defer p.sinksMu.Unlock()
	p.out.Filter = r.Filter
	var retired []Retired
	// take retires the sink at i, keeping its counts in next (those of
	// every sink of its name), and returns them.
	take := func(i int, as Sink) *retiredStats {
		old := p.sinks[i]
		next := old.retired
		// What the old sink counted goes on counting in the sinks of its
		// name; what it writes while it closes is added by Retire.
		next.add(old.ownStats())
		retired = append(retired, Retired{Sink: as, next: next, at: countedBy(old.Sink)})
		return next
	}
	swap := func(i int, s Sink) {
		old := p.sinks[i]
		// An event log a reload opened is the pipeline's to close.
		e := newSinkEntry(s, old.owned || s.Name() == eventsSinkName)
		e.retired = take(i, old.Sink)
		p.sinks[i] = e
	}
	// add puts a sink in at i, counting on from the sinks of its name a
	// reload removed.
	add := func(i int, s Sink, owned bool) {
		e := newSinkEntry(s, owned)
		if gone, ok := p.removed[s.Name()]; ok {
			e.retired = gone
			delete(p.removed, s.Name())
		}
		p.sinks = slices.Insert(p.sinks, i, e)
	}
	if r.Events != nil {
		if i := p.indexOf(eventsSinkName); i >= 0 {
			swap(i, r.Events)
		} else {
			// No event log before: it goes first, as NewPipeline puts it.
			add(0, r.Events, true)
		}
	}
	if r.Spans != nil {
		if i := p.indexOf(spansSinkName); i >= 0 {
			e := newSinkEntry(spansSink{s: r.Spans}, false)
			e.retired = take(i, spansSink{s: p.out.Spans, close: r.RetireSpans})
			p.sinks[i] = e
		} else {
			add(p.builtInIndex(spansSinkName), spansSink{s: r.Spans}, false)
		}
		p.out.Spans = r.Spans
	}
	if r.Sampling != nil && p.out.Spans != nil {
		p.out.Spans.SetSampling(r.Sampling.Ratio, r.Sampling.MaxSpansPerSecond)
	}
	if r.Metrics != nil && p.out.Metrics == nil {
		add(p.builtInIndex(metricsSinkName), metricsSink{r.Metrics}, false)
		p.out.Metrics = r.Metrics
	}
	for name, s := range r.Sinks {
		switch i := p.indexOf(name); {
		case i >= 0:
			swap(i, s)
		case slices.Contains(r.First, name):
			add(0, s, true)
		default:
			add(len(p.sinks), s, true)
		}
	}
	for _, name := range r.Remove {
		i := p.indexOf(name)
		if i < 0 {
			continue
		}
		// The event log and the spans the pipeline started with are the
		// caller's to close, but a reload may still take them out.
		switch e := p.sinks[i]; {
		case name == spansSinkName:
			p.removed[name] = take(i, spansSink{s: p.out.Spans, close: r.RetireSpans})
			p.out.Spans = nil
		case e.owned || name == eventsSinkName:
			p.removed[name] = take(i, e.Sink)
		default:
			continue
		}
		p.sinks = slices.Delete(p.sinks, i, i+1)
	}
	p.recorders = p.recorders[:0]
	for _, e := range p.sinks {
		if rec, ok := e.Sink.(DropRecorder); ok {
			p.recorders = append(p.recorders, rec)
		}
	}
	return retired
}

// builtInIndex is where a built-in sink a reload adds goes: after those
// NewPipeline puts before it.
func (p *Pipeline) builtInIndex(name string) int {
	before := builtInOrder[:slices.Index(builtInOrder, name)]
	i := 0
	for i < len(p.sinks) && slices.Contains(before, p.sinks[i].Name()) {
		i++
	}
	return i
}

func (p *Pipeline) indexOf(name string) int {
	for i, s := range p.sinks {
		if s.Name() == name {
			return i
		}
	}
	return -1
}

// Retire flushes and closes the sinks a reload took out, on a goroutine
// of its own, then adds what they wrote while closing to the sinks that
// took their places. report hears of each failure; Finish waits for
// them.
func (p *Pipeline) Retire(rs []Retired, report func(name string, err error)) {
	p.retiring.Add(1)
	go func() {
		defer p.retiring.Done()
		for _, r := range rs {
			err := r.Sink.Flush()
			if cerr := r.Sink.Close(); err == nil {
				err = cerr
			}
			after := countedBy(r.Sink)
			r.next.add(SinkStats{Written: after.Written - r.at.Written, Dropped: after.Dropped - r.at.Dropped})
			if err != nil && report != nil {
				report(r.Sink.Name(), err)
			}
		}
	}()
}

// countedBy is what a counting sink says it wrote and dropped; the
// pipeline counts the others, which write nothing more once taken out.
func countedBy(s Sink) SinkStats {
	if c, ok := s.(CountingSink); ok {
		return c.Stats()
	}
	return SinkStats{}
}

// retiredStats are the counts of the sinks of one name that a reload
// replaced or removed: a sink of that name added later counts on from
// them, so that its self-metrics never go back.
type retiredStats struct {
	written, dropped atomic.Uint64
}

func (r *retiredStats) add(s SinkStats) {
	r.written.Add(s.Written)
	r.dropped.Add(s.Dropped)
}
