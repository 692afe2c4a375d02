package analyze

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/icptrack/icptrack/internal/human"
)

// WriteText writes the diff for people.
func (d *Diff) WriteText(w io.Writer) error {
	tw := tabwriter.NewWriter(&trimmed{w: w}, 0, 0, 2, ' ', 0)
	p := func(format string, args ...any) { fmt.Fprintf(tw, format, args...) }
	p("icptrack diff: A has %s operations over %s, B has %s over %s; rates compared in %s intervals\n",
		count(d.A.Operations), human.Duration(time.Duration(d.A.DurationNS)),
		count(d.B.Operations), human.Duration(time.Duration(d.B.DurationNS)), time.Duration(d.IntervalNS))
	channels := func(title, mark string, gs []ChannelGroup) {
		if len(gs) == 0 {
			return
		}
		p("\n%s\n", title)
		for _, g := range gs {
			p("  %s %s\t%s\t%s\t%s\t%s\n", mark, g.Mechanism, g.Endpoint, strings.Join(g.Comms, ", "), opsText(g.Operations), channelsText(g.Channels))
		}
	}
	pairs := func(title, mark string, gs []PairGroup) {
		if len(gs) == 0 {
			return
		}
		p("\n%s\n", title)
		for _, g := range gs {
			p("  %s %s → %s\t%s\t%s\n", mark, g.From, g.To, strings.Join(g.Mechanisms, ","), opsText(g.Operations))
		}
	}
	channels("New channels (only in B)", "+", d.NewChannels)
	channels("Gone channels (only in A)", "-", d.GoneChannels)
	pairs("New pairs (only in B)", "+", d.NewPairs)
	pairs("Gone pairs (only in A)", "-", d.GonePairs)
	if len(d.Changes) > 0 {
		p("\nChanged beyond noise\n")
		for _, c := range d.Changes {
			ratio := ""
			if c.Ratio != nil {
				ratio = fmt.Sprintf("×%.3g", *c.Ratio)
			}
			evidence := fmt.Sprintf("%s vs %s intervals, p=%.2g", count(c.CountA), count(c.CountB), deref(c.PValue))
			if c.PValue == nil {
				evidence = fmt.Sprintf("%s vs %s operations", count(c.CountA), count(c.CountB))
			}
			p("  ~ %s\t%s\t%s\t%s\t%s → %s\t%s\t%s\n", c.Mechanism, c.Endpoint, strings.Join(c.Comms, ", "),
				measureName(c.Measure), measureValue(c.Measure, c.A), measureValue(c.Measure, c.B), ratio, evidence)
		}
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if d.Changed() {
		p("\n%d channels and %d pairs in both; %d changes beyond noise\n", d.MatchedChannels, d.MatchedPairs, len(d.Changes))
	} else {
		p("\nNo change: %d channels and %d pairs in both, nothing new or gone, no rate or latency moved beyond noise\n",
			d.MatchedChannels, d.MatchedPairs)
	}
	return tw.Flush()
}

func deref(p *float64) float64 {
	if p == nil {
		return 0
	}
	return *p
}

func measureName(m string) string {
	switch m {
	case OperationsPerSecond:
		return "operations/s"
	case BytesPerSecond:
		return "bytes/s"
	case LatencyP50:
		return "latency p50"
	case LatencyP99:
		return "latency p99"
	}
	return m
}

func measureValue(m string, v float64) string {
	switch m {
	case OperationsPerSecond:
		return perSecond(v)
	case BytesPerSecond:
		return bytesPerSecond(v)
	}
	return human.Duration(time.Duration(v))
}
