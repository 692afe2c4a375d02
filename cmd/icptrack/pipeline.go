package main

import (
	"io"

	"github.com/icptrack/icptrack/exporter"
	"github.com/icptrack/icptrack/flow"
)

// pipeline takes the tracer's events through correlation to the outputs.
// Everything runs on the tracer's goroutine.
type pipeline struct {
	corr    *flow.Correlator
	log     *exporter.EventLog
	summary *exporter.Summary
}

func newPipeline(events io.Writer) *pipeline {
	p := &pipeline{summary: exporter.NewSummary()}
	if events != nil {
		p.log = exporter.NewEventLog(events)
	}
	p.corr = flow.New(p.operation, flow.DefaultOptions())
	return p
}

func (p *pipeline) Event(ev *flow.Event) { p.corr.Add(ev) }

func (p *pipeline) Drained() { p.corr.Tick() }

func (p *pipeline) operation(op *flow.Operation) {
	if p.log != nil {
		p.log.Write(op)
	}
	p.summary.Add(op)
}

// finish releases what the correlator still holds and flushes the log.
// Call it after the tracer has stopped.
func (p *pipeline) finish() error {
	p.corr.Flush()
	if p.log != nil {
		return p.log.Flush()
	}
	return nil
}
