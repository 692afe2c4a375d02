package main

import (
	"fmt"
	"io"
	"math"
	"strings"
)

// printMarkdown prints the tables, the targets and what the workloads
// and modes are.
func (res *results) printMarkdown(w io.Writer) {
	m, s := res.Machine, res.Settings
	fmt.Fprintf(w, "# icptrack benchmark: %s, %s, %d CPUs, kernel %s, %s; %d repetitions, modes interleaved, --scale %g\n\n",
		s.Date, m.CPU, m.CPUs, m.Kernel, m.Go, s.Reps, s.Scale)

	fmt.Fprintln(w, "| workload | mode | ops/s (median) | spread | ratio to untraced | RT p50 | RT p99 | Δ p50 | Δ p99 | tracer CPU (s per M ops) | tracer peak RSS | events dropped |")
	fmt.Fprintln(w, "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
	for _, r := range res.Rows {
		switch {
		case r.Runs == 0 && r.Error != "":
			fmt.Fprintf(w, "| %s | %s | failed: %s |||||||||\n", r.Workload, r.ModeName, cell(r.Error))
		case r.Runs == 0:
			fmt.Fprintf(w, "| %s | %s | n/a: %s |||||||||\n", r.Workload, r.ModeName, cell(r.NA))
		default:
			fmt.Fprintf(w, "| %s | %s | %s | %s–%s | %.2f | %s | %s | %s | %s | %s | %s | %d |\n",
				r.Workload, r.ModeName, human(r.OpsPerSec), human(r.Min), human(r.Max), r.Ratio,
				orDash(r.P50Ns, micros), orDash(r.P99Ns, micros),
				delta(r, r.DeltaP50Ns), delta(r, r.DeltaP99Ns),
				orDash(r.TracerCPUPerMOps, func(v float64) string { return fmt.Sprintf("%.2f", v) }),
				orDash(float64(r.TracerMaxRSSKiB), func(v float64) string { return megabytes(int64(v)) }),
				r.Dropped)
		}
	}

	if otlp := res.otlpRows(); len(otlp) > 0 {
		fmt.Fprintln(w, "\nOTLP/gRPC export to the harness's own receiver (all repetitions):")
		fmt.Fprintln(w)
		fmt.Fprintln(w, "| workload | spans sent | spans dropped by icptrack | operations sampled out | failed exports | spans received | metric points received |")
		fmt.Fprintln(w, "|---|---:|---:|---:|---:|---:|---:|")
		for _, r := range otlp {
			o := r.OTLP
			fmt.Fprintf(w, "| %s | %d | %d | %d | %d | %d | %d |\n", r.Workload, o.SpansSent, o.SpansDropped, o.SpansSampledOut, o.FailedExports, o.SpansReceived, o.PointsReceived)
		}
	}

	if len(res.BPF) > 0 {
		fmt.Fprintln(w, "\nicptrack's BPF programs, from the kernel's run-time statistics (one run of its own, event log; file-write: all mechanisms, beside):")
		fmt.Fprintln(w)
		fmt.Fprintln(w, "| workload | program | runs per op | ns per run | ns per op | recursion misses |")
		fmt.Fprintln(w, "|---|---|---:|---:|---:|---:|")
		for i, r := range res.BPF {
			if r.RunCount > 0 {
				fmt.Fprintf(w, "| %s | %s | %.2f | %.0f | %.1f | %d |\n", r.Workload, r.Program, r.RunsPerOp, r.NsPerRun, r.NsPerOp, r.RecursionMisses)
			}
			if i+1 == len(res.BPF) || res.BPF[i+1].Workload != r.Workload {
				var perOp float64
				for _, p := range res.BPF {
					if p.Workload == r.Workload {
						perOp += p.NsPerOp
					}
				}
				fmt.Fprintf(w, "| %s | **all** | | | **%.1f** | |\n", r.Workload, perOp)
			}
		}
	}

	fmt.Fprintln(w, "\nTargets (issues 12 and 14, and those of issue 6 still watched):")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "| target | measured | verdict |")
	fmt.Fprintln(w, "|---|---|---|")
	for _, t := range res.Targets {
		fmt.Fprintf(w, "| %s | %s | %s |\n", t.Target, cell(t.Measured), t.Verdict)
	}

	fmt.Fprintln(w, "\nWorkloads (operations or seconds per run):")
	fmt.Fprintln(w)
	for _, wl := range res.Workloads {
		length := fmt.Sprintf("%d operations", wl.Ops)
		if wl.Seconds > 0 {
			length = fmt.Sprintf("%d s", wl.Seconds)
		}
		mech := ""
		switch {
		case wl.Comms != "":
			mech = fmt.Sprintf(", traced with icptrack trace --comm %s --mechanisms %s", wl.Comms, wl.Mechanisms)
		case wl.Mechanisms != "":
			mech = ", traced with --mechanisms " + wl.Mechanisms
		}
		fmt.Fprintf(w, "- %s: %s (%s%s).\n", wl.Name, wl.About, length, mech)
	}
	fmt.Fprintf(w, "\nRT: round-trip latency; Δ: its difference to untraced. Tracer: icptrack, or strace. "+
		"strace runs %g of each workload's operations. MB: 10⁶ bytes.\n", s.StraceScale)
}

func (res *results) otlpRows() []row {
	var out []row
	for _, r := range res.Rows {
		if r.OTLP != nil {
			out = append(out, r)
		}
	}
	return out
}

func human(v float64) string {
	switch {
	case v >= 1e6:
		return fmt.Sprintf("%.2fM", v/1e6)
	case v >= 1e3:
		return fmt.Sprintf("%.1fk", v/1e3)
	}
	return fmt.Sprintf("%.0f", v)
}

func micros(ns float64) string { return fmt.Sprintf("%.1f µs", ns/1e3) }

func megabytes(kib int64) string { return fmt.Sprintf("%.0f MB", float64(kib)*1024/1e6) }

func delta(r row, ns float64) string {
	if !r.traced || r.P50Ns == 0 {
		return "—"
	}
	return fmt.Sprintf("%+.1f µs", ns/1e3)
}

func orDash(v float64, f func(float64) string) string {
	if v == 0 || math.IsNaN(v) {
		return "—"
	}
	return f(v)
}

// cell makes text safe in a markdown table cell.
func cell(s string) string { return strings.ReplaceAll(strings.ReplaceAll(s, "|", "\\|"), "\n", " ") }
