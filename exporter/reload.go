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
	// next is the entry of the sink that took its place (nil: removed),
	// and at what the old sink had counted when it was taken out.
	next *sinkEntry
	at   SinkStats
}

// Reload applies r. Call it only on the pipeline's goroutine (from the
// tracer's handler, between events). It returns the sinks to retire.
func (p *Pipeline) Reload(r Reload) []Retired {
	p.out.Filter = r.Filter
	if r.Sampling != nil && p.out.Spans != nil {
		p.out.Spans.SetSampling(r.Sampling.Ratio, r.Sampling.MaxSpansPerSecond)
	}
	var retired []Retired
	swap := func(i int, s Sink) {
		old := p.sinks[i]
		// An event log a reload opened is the pipeline's to close.
		e := newSinkEntry(s, old.owned || s.Name() == eventsSinkName)
		// What the old sink counted goes on counting in the new one's
		// stats; what it writes while it closes is added by Retire.
		e.addRetired(old.stats())
		p.sinks[i] = e
		retired = append(retired, Retired{Sink: old.Sink, next: e, at: countedBy(old.Sink)})
	}
	if r.Events != nil {
		if i := p.indexOf(eventsSinkName); i >= 0 {
			swap(i, r.Events)
		} else {
			// No event log before: it goes first, as NewPipeline puts it.
			p.sinks = append([]*sinkEntry{newSinkEntry(r.Events, true)}, p.sinks...)
		}
	}
	for name, s := range r.Sinks {
		switch i := p.indexOf(name); {
		case i >= 0:
			swap(i, s)
		case slices.Contains(r.First, name):
			p.sinks = append([]*sinkEntry{newSinkEntry(s, true)}, p.sinks...)
		default:
			p.sinks = append(p.sinks, newSinkEntry(s, true))
		}
	}
	for _, name := range r.Remove {
		// The event log the pipeline started with is the caller's to
		// close, but a reload may still take it out.
		if i := p.indexOf(name); i >= 0 && (p.sinks[i].owned || name == eventsSinkName) {
			retired = append(retired, Retired{Sink: p.sinks[i].Sink})
			p.sinks = append(p.sinks[:i:i], p.sinks[i+1:]...)
		}
	}
	p.recorders = p.recorders[:0]
	for _, e := range p.sinks {
		if rec, ok := e.Sink.(DropRecorder); ok {
			p.recorders = append(p.recorders, rec)
		}
	}
	return retired
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
			if r.next != nil {
				after := countedBy(r.Sink)
				r.next.addRetired(SinkStats{Written: after.Written - r.at.Written, Dropped: after.Dropped - r.at.Dropped})
			}
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

// retiredStats are the counts of the sinks an entry's sink replaced.
type retiredStats struct {
	written, dropped atomic.Uint64
}

func (e *sinkEntry) addRetired(s SinkStats) {
	e.retired.written.Add(s.Written)
	e.retired.dropped.Add(s.Dropped)
}
