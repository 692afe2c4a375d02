package replay

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"
)

// PrintPlan writes what the re-enactment will do, and what it leaves out
// and why, before it starts.
func PrintPlan(w io.Writer, p *Plan, speed float64) {
	if len(p.StandIns) == 0 {
		PrintSkipped(w, p.Skipped)
		return
	}
	records, calls := p.Steps()
	names := make([]string, len(p.StandIns))
	for i, s := range p.StandIns {
		names[i] = fmt.Sprintf("%s[%d]", s.Comm, s.PID)
	}
	fmt.Fprintf(w, "re-enacting %d operations (%d records) of %d processes over %d channels, %s of the capture at speed %g: %s\n",
		calls, records, len(p.StandIns), len(p.Channels), p.Duration.Round(time.Microsecond), speed, strings.Join(names, ", "))
	PrintSkipped(w, p.Skipped)
}

// Print writes the summary of a re-enactment: what was done per
// mechanism, how long it took against the capture, what failed, and
// what was left out.
func (r *Result) Print(w io.Writer, p *Plan, speed float64) {
	fmt.Fprintf(w, "re-enacted in %s (%s expected: the capture's %s at speed %g); the latest start was %s behind its time\n",
		r.Took.Round(time.Microsecond), time.Duration(float64(p.Duration)/speed).Round(time.Microsecond),
		p.Duration.Round(time.Microsecond), speed, r.Late.Round(time.Microsecond))
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "MECHANISM\tACTION\tCALLS\tBYTES")
	for _, d := range r.Done {
		fmt.Fprintf(tw, "%s\t%s\t%d\t%d\n", d.Mech, d.Action, d.Calls, d.Bytes)
	}
	_ = tw.Flush()
	if r.Deliveries > 0 {
		fmt.Fprintf(w, "signals handled: %d (the capture delivered %d)\n", r.Signals, r.Deliveries)
	}
	for i, f := range r.Failures {
		if i == 10 {
			fmt.Fprintf(w, "… and %d more failed steps\n", len(r.Failures)-i)
			break
		}
		fmt.Fprintf(w, "failed: %s[%d] capture id %s: %s\n", f.Comm, f.PID, f.Op, f.Err)
	}
	for _, s := range r.Stalled {
		fmt.Fprintf(w, "stopped: %s\n", s)
	}
	var skipped int64
	byReason := map[Reason]int64{}
	for _, s := range p.Skipped {
		skipped += s.Ops
		byReason[s.Reason] += s.Ops
	}
	if skipped > 0 {
		var parts []string
		for reason := Reason(1); reason < reasonEnd; reason++ {
			if n := byReason[reason]; n > 0 {
				parts = append(parts, fmt.Sprintf("%d %s", n, reason))
			}
		}
		fmt.Fprintf(w, "not re-enacted: %d operations: %s\n", skipped, strings.Join(parts, "; "))
	}
}
