package main

import (
	"fmt"
	"strings"
	"time"
)

// A target (issues 6 and 12), and what this run measured against it.
type target struct {
	Target   string `json:"target"`
	Measured string `json:"measured"`
	Verdict  string `json:"verdict"` // met, not met, n/a, or — (for information)
}

const (
	verdictMet    = "met"
	verdictNotMet = "not met"
	verdictNA     = "n/a"
)

var pingPongs = []string{"pipe-pingpong", "unix-pingpong", "mq-pingpong", "tcp-pingpong"}

func (res *results) targets() []target {
	var ts []target
	add := func(t target) { ts = append(ts, t) }

	// Issue 12's targets: against the attach-only floor measured in the
	// same run, which differs between kernel builds.
	add(res.otlpSustainTarget())
	add(res.eachTarget("OTLP: every ping-pong within 0.08 of the event log's ratio, with no drops", keyOTLP, pingPongs,
		func(r *row) (string, bool) {
			e := res.row(r.Workload, keyEvents)
			if e == nil {
				return "no event-log row", false
			}
			lost := r.Dropped + spansDropped(r)
			return fmt.Sprintf("%.3f vs %.3f, %d dropped", r.Ratio, e.Ratio, lost), e.Ratio-r.Ratio <= 0.08 && lost == 0
		}))
	add(res.floorDistanceTarget("metrics only: every ping-pong within 0.05 of its attach-only floor", keyMetrics, pingPongs, 0.05))
	add(res.floorDistanceTarget("event log: every ping-pong within 0.12 of its attach-only floor", keyEvents, pingPongs, 0.12))
	add(res.eachTarget("event log with coalescing (the default): 64-byte pipe stream ≥ 0.50 of untraced, 0 drops",
		keyEvents, []string{"pipe-stream"}, func(r *row) (string, bool) {
			return fmt.Sprintf("%.3f, %d dropped", r.Ratio, r.Dropped), r.Ratio >= 0.50 && r.Dropped == 0
		}))
	add(res.floorDistanceTarget("metrics only: 64-byte pipe stream within 0.10 of its floor", keyMetrics, []string{"pipe-stream"}, 0.10))
	add(res.ratioTarget("event log: pgbench -S (unix socket, 4 clients) ≥ 0.90 of untraced tps", keyEvents, []string{"pgbench"}, 0.90))
	add(res.rssTarget())
	// Issue 14's: the encrypted, sealed store keeps up.
	add(res.storeSustainTarget())
	// Issue 15's: serving the API and one live view costs the capture
	// nothing measurable.
	add(res.eachTarget("--api with a live view: pipe ping-pong within 0.03 of the event log's ratio, 0 dropped, the view fed",
		keyAPI, []string{"pipe-pingpong"}, func(r *row) (string, bool) {
			e := res.row(r.Workload, keyEvents)
			if e == nil {
				return "no event-log row", false
			}
			var events int64
			if r.View != nil {
				events = r.View.GraphEvents
			}
			return fmt.Sprintf("%.3f vs %.3f, tracer CPU %.2f vs %.2f s per M ops, %d dropped, %d graph events",
					r.Ratio, e.Ratio, r.TracerCPUPerMOps, e.TracerCPUPerMOps, r.Dropped, events),
				e.Ratio-r.Ratio <= 0.03 && r.Dropped == 0 && events > 0
		}))
	// Still watched from issue 6.
	add(res.sustainTarget())
	add(res.ratioTarget("file-write tax, no syscall hooks (sockets and signals only) ≥ 0.98", keySockets, []string{"file-write"}, 0.98))
	add(res.floorTarget())
	add(res.flatTarget())
	add(res.straceTarget())
	return ts
}

// spansDropped is the spans icptrack's OTLP exporter lost in r's runs.
func spansDropped(r *row) int64 {
	if r.OTLP == nil {
		return 0
	}
	return r.OTLP.SpansDropped
}

// floorDistanceTarget checks that mode's ratio is within max of the
// attach-only floor's, workload by workload.
func (res *results) floorDistanceTarget(name, mode string, workloads []string, max float64) target {
	return res.eachTarget(name, mode, workloads, func(r *row) (string, bool) {
		f := res.row(r.Workload, keyFloor)
		if f == nil {
			return "no floor row", false
		}
		return fmt.Sprintf("%.3f vs floor %.3f", r.Ratio, f.Ratio), f.Ratio-r.Ratio <= max
	})
}

// otlpSustainTarget: OTLP with default settings loses no span at the
// sustained pace; spans sampled out under the adaptive cap are allowed,
// and reported.
func (res *results) otlpSustainTarget() target {
	t := target{Target: fmt.Sprintf("OTLP, default settings: 0 spans dropped at %s ops/s sustained for 60 s (sampled out allowed, reported)", human(sustainRate))}
	r := res.row("sustained-200k", keyOTLP)
	if r == nil {
		return t.judge(nil, nil)
	}
	d, _ := time.ParseDuration(res.Settings.Sustain)
	var sampled int64
	if r.OTLP != nil {
		sampled = r.OTLP.SpansSampledOut
	}
	parts := []string{fmt.Sprintf("%d spans dropped, %d sampled out, %d events dropped at %s ops/s for %s",
		spansDropped(r), sampled, r.Dropped, human(r.OpsPerSec), d)}
	var missed []string
	if spansDropped(r) > 0 || r.Dropped > 0 || r.OpsPerSec < 0.98*sustainRate {
		missed = []string{"sustained-200k"}
	}
	t = t.judge(parts, missed)
	if d < time.Minute && t.Verdict == verdictMet {
		t.Verdict = "met, but only for " + d.String()
	}
	return t
}

// storeSustainTarget: issue 14's target, every operation of the
// sustained run stored, encrypted and sealed, with none dropped, and the
// store verified after each run (a run whose store did not verify has an
// error, and no row).
func (res *results) storeSustainTarget() target {
	t := target{Target: fmt.Sprintf("store, encrypted and sealed: 0 dropped at %s ops/s sustained for 60 s, verified after each run", human(sustainRate))}
	r := res.row("sustained-200k", keyStore)
	if r == nil || r.Runs == 0 {
		return t.judge(nil, nil)
	}
	d, _ := time.ParseDuration(res.Settings.Sustain)
	parts := []string{fmt.Sprintf("%d dropped at %s ops/s for %s, %.2f s of icptrack CPU per M ops, %d runs verified",
		r.Dropped, human(r.OpsPerSec), d, r.TracerCPUPerMOps, r.Runs)}
	var missed []string
	if r.Dropped > 0 || r.OpsPerSec < 0.98*sustainRate {
		missed = []string{"sustained-200k"}
	}
	t = t.judge(parts, missed)
	if d < time.Minute && t.Verdict == verdictMet {
		t.Verdict = "met, but only for " + d.String()
	}
	return t
}

// eachTarget checks each workload's row in mode.
func (res *results) eachTarget(name, mode string, workloads []string, check func(*row) (string, bool)) target {
	t := target{Target: name}
	var parts, missed []string
	for _, w := range workloads {
		r := res.row(w, mode)
		if r == nil {
			continue
		}
		v, ok := check(r)
		parts = append(parts, fmt.Sprintf("%s %s", w, v))
		if !ok {
			missed = append(missed, w)
		}
	}
	return t.judge(parts, missed)
}

func (res *results) ratioTarget(name, mode string, workloads []string, min float64) target {
	return res.eachTarget(name, mode, workloads, func(r *row) (string, bool) {
		return fmt.Sprintf("%.3f", r.Ratio), r.Ratio >= min
	})
}

func (res *results) floorTarget() target {
	t := target{Target: "file-write tax, all mechanisms: within 0.05 of the attach-only floor"}
	all, floor := res.row("file-write", keyAll), res.row("file-write", keyFloor)
	if all == nil || floor == nil {
		return t.judge(nil, nil)
	}
	parts := []string{fmt.Sprintf("all mechanisms %.3f, floor %.3f", all.Ratio, floor.Ratio)}
	if floor.Ratio-all.Ratio > 0.05 {
		return t.judge(parts, []string{"file-write"})
	}
	return t.judge(parts, nil)
}

func (res *results) sustainTarget() target {
	t := target{Target: fmt.Sprintf("event log: no events dropped at %s ops/s sustained for 60 s", human(sustainRate))}
	r := res.row("sustained-200k", keyEvents)
	if r == nil {
		return t.judge(nil, nil)
	}
	d, _ := time.ParseDuration(res.Settings.Sustain)
	parts := []string{fmt.Sprintf("%d dropped at %s ops/s for %s", r.Dropped, human(r.OpsPerSec), d)}
	var missed []string
	if r.Dropped > 0 || r.OpsPerSec < 0.98*sustainRate {
		missed = []string{"sustained-200k"}
	}
	t = t.judge(parts, missed)
	if d < time.Minute && t.Verdict == verdictMet {
		t.Verdict = "met, but only for " + d.String()
	}
	return t
}

// rssTarget takes icptrack's largest peak RSS in any workload and mode.
func (res *results) rssTarget() target {
	t := target{Target: "icptrack peak RSS ≤ 150 MB in every workload and mode, OTLP under load included"}
	var peak int64
	var at string
	for _, r := range res.Rows {
		if r.traced && r.Mode != keyStrace && r.TracerMaxRSSKiB > peak {
			peak, at = r.TracerMaxRSSKiB, r.Workload+" "+r.Mode
		}
	}
	if peak == 0 {
		return t.judge(nil, nil)
	}
	parts := []string{megabytes(peak) + " (" + at + ")"}
	if peak*1024 > 150e6 {
		return t.judge(parts, []string{at})
	}
	return t.judge(parts, nil)
}

// flatTarget compares 10, 1,000 and 10,000 channels in the event log:
// flat when the ratio to untraced at 10,000 is within 0.05 of that at 10
// and icptrack's CPU per operation within 20%.
func (res *results) flatTarget() target {
	t := target{Target: "per-operation cost flat from 10 to 10,000 channels (event log: ratio within 0.05, icptrack CPU per op within 20%)"}
	var parts []string
	var rows []*row
	for _, w := range []string{"channels-10", "channels-1k", "channels-10k"} {
		if r := res.row(w, keyEvents); r != nil {
			rows = append(rows, r)
			parts = append(parts, fmt.Sprintf("%s %.2f, %.2f s/M ops", w, r.Ratio, r.TracerCPUPerMOps))
		}
	}
	if len(rows) < 2 {
		return t.judge(nil, nil)
	}
	first, last := rows[0], rows[len(rows)-1]
	var missed []string
	if first.Ratio-last.Ratio > 0.05 || last.TracerCPUPerMOps > 1.2*first.TracerCPUPerMOps {
		missed = []string{last.Workload}
	}
	return t.judge(parts, missed)
}

func (res *results) straceTarget() target {
	t := target{Target: "strace -f beside icptrack (ratio to untraced: strace / event log)", Verdict: "—"}
	var parts []string
	for _, w := range res.Workloads {
		s, e := res.row(w.Name, keyStrace), res.row(w.Name, keyEvents)
		if s != nil && e != nil {
			parts = append(parts, fmt.Sprintf("%s %.2f / %.2f", w.Name, s.Ratio, e.Ratio))
		}
	}
	t.Measured = strings.Join(parts, "; ")
	if len(parts) == 0 {
		t.Measured, t.Verdict = "not measured", verdictNA
	}
	return t
}

func (t target) judge(parts, missed []string) target {
	switch {
	case len(parts) == 0:
		t.Measured, t.Verdict = "not measured", verdictNA
	case len(missed) == 0:
		t.Measured, t.Verdict = strings.Join(parts, "; "), verdictMet
	default:
		t.Measured, t.Verdict = strings.Join(parts, "; "), verdictNotMet+" ("+strings.Join(missed, ", ")+")"
	}
	return t
}
