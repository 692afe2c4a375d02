package main

import (
	"encoding/json"
	"os"
	"slices"
)

// results is everything a run of the harness found: what it prints, plots
// and writes as JSON.
type results struct {
	Machine   machine        `json:"machine"`
	Settings  settings       `json:"settings"`
	Workloads []workloadInfo `json:"workloads"`
	Rows      []row          `json:"rows"`
	BPF       []bpfRow       `json:"bpf"`
	Targets   []target       `json:"targets"`
	Samples   []sample       `json:"samples"`
}

type settings struct {
	Date        string  `json:"date"`
	Reps        int     `json:"reps"`
	Scale       float64 `json:"scale"`
	StraceScale float64 `json:"strace_scale"`
	Sustain     string  `json:"sustain"`
	Icptrack    string  `json:"icptrack"`
}

type workloadInfo struct {
	Name       string `json:"name"`
	About      string `json:"about"`
	Ops        int    `json:"ops"`               // per run, at --scale
	Seconds    int    `json:"seconds,omitempty"` // per run, for a timed workload (Ops is then 0)
	Mechanisms string `json:"mechanisms,omitempty"`
	Comms      string `json:"comms,omitempty"` // icptrack trace --comm
}

// workloadRun is what runWorkload found: samples[i] are modes[i]'s.
type workloadRun struct {
	modes   []mode
	samples [][]sample
	errs    []string
	stats   *sample // the run with BPF statistics on
}

// A row is one workload in one mode: medians over its repetitions.
type row struct {
	Workload  string  `json:"workload"`
	Mode      string  `json:"mode"`
	ModeName  string  `json:"mode_name"`
	NA        string  `json:"na,omitempty"`
	Error     string  `json:"error,omitempty"`
	Runs      int     `json:"runs"`
	Ops       int     `json:"ops"` // per run
	OpsPerSec float64 `json:"ops_per_sec"`
	Min       float64 `json:"ops_per_sec_min"`
	Max       float64 `json:"ops_per_sec_max"`
	Ratio     float64 `json:"ratio_to_untraced,omitempty"`
	// Round-trip latency (ping-pongs): medians of each run's quantiles,
	// and their difference to untraced.
	P50Ns      float64 `json:"p50_ns,omitempty"`
	P99Ns      float64 `json:"p99_ns,omitempty"`
	DeltaP50Ns float64 `json:"delta_p50_ns,omitempty"`
	DeltaP99Ns float64 `json:"delta_p99_ns,omitempty"`
	// The tracer's CPU seconds per million operations (median), and its
	// peak RSS (the largest of the runs).
	TracerCPUPerMOps float64     `json:"tracer_cpu_s_per_mops,omitempty"`
	TracerMaxRSSKiB  int64       `json:"tracer_peak_rss_kib,omitempty"`
	Dropped          int64       `json:"events_dropped"` // all runs
	OTLP             *otlpCounts `json:"otlp,omitempty"` // all runs
	View             *viewCounts `json:"view,omitempty"` // all runs
	traced           bool
}

// A bpfRow is one of icptrack's programs in a workload's statistics run.
type bpfRow struct {
	Workload        string  `json:"workload"`
	Mode            string  `json:"mode"`
	Program         string  `json:"program"`
	RunCount        uint64  `json:"run_cnt"`
	RunTimeNs       int64   `json:"run_time_ns"`
	Ops             int     `json:"ops"`
	RunsPerOp       float64 `json:"runs_per_op"`
	NsPerRun        float64 `json:"ns_per_run"`
	NsPerOp         float64 `json:"ns_per_op"`
	RecursionMisses uint64  `json:"recursion_misses"`
}

// add summarises one workload's runs.
func (res *results) add(w workload, b *bench, wr workloadRun) {
	info := workloadInfo{Name: w.name, About: w.about, Ops: b.opsFor(w, mode{}), Mechanisms: w.mechanisms, Comms: w.comms}
	if w.seconds > 0 {
		info.Ops, info.Seconds = 0, b.secondsFor(w)
	}
	res.Workloads = append(res.Workloads, info)
	var base *row
	for i, m := range wr.modes {
		r := summarise(w, m, wr.samples[i])
		r.Error = wr.errs[i]
		if i == 0 && r.Runs > 0 {
			base = &r
		}
		if base != nil && r.Runs > 0 {
			r.Ratio = r.OpsPerSec / base.OpsPerSec
			if w.roundTrips {
				r.DeltaP50Ns, r.DeltaP99Ns = r.P50Ns-base.P50Ns, r.P99Ns-base.P99Ns
			}
		}
		res.Rows = append(res.Rows, r)
		res.Samples = append(res.Samples, wr.samples[i]...)
	}
	if s := wr.stats; s != nil {
		res.Samples = append(res.Samples, *s)
		res.BPF = append(res.BPF, bpfRows(*s)...)
	}
}

func summarise(w workload, m mode, ss []sample) row {
	r := row{Workload: w.name, Mode: m.key, ModeName: m.name, NA: m.na, Runs: len(ss), traced: m.kind != untraced}
	if len(ss) == 0 {
		return r
	}
	r.Ops = ss[0].Ops
	rate := collect(ss, func(s sample) float64 { return s.OpsPerSec })
	r.OpsPerSec, r.Min, r.Max = median(rate), slices.Min(rate), slices.Max(rate)
	if w.roundTrips {
		r.P50Ns = median(collect(ss, func(s sample) float64 { return float64(s.P50Ns) }))
		r.P99Ns = median(collect(ss, func(s sample) float64 { return float64(s.P99Ns) }))
	}
	if r.traced {
		r.TracerCPUPerMOps = median(collect(ss, func(s sample) float64 { return float64(s.TracerCPUNs) / float64(s.Ops) / 1e3 }))
	}
	for _, s := range ss {
		r.TracerMaxRSSKiB = max(r.TracerMaxRSSKiB, s.TracerMaxRSSKiB)
		r.Dropped += s.Dropped
		if o := s.OTLP; o != nil {
			if r.OTLP == nil {
				r.OTLP = &otlpCounts{}
			}
			r.OTLP.SpansSent += o.SpansSent
			r.OTLP.SpansDropped += o.SpansDropped
			r.OTLP.SpansSampledOut += o.SpansSampledOut
			r.OTLP.FailedExports += o.FailedExports
			r.OTLP.Retries += o.Retries
			r.OTLP.SpansReceived += o.SpansReceived
			r.OTLP.PointsReceived += o.PointsReceived
		}
		if v := s.View; v != nil {
			if r.View == nil {
				r.View = &viewCounts{}
			}
			r.View.GraphEvents += v.GraphEvents
			r.View.ChannelPages += v.ChannelPages
		}
	}
	return r
}

func bpfRows(s sample) []bpfRow {
	var rows []bpfRow
	for _, p := range s.BPF {
		r := bpfRow{Workload: s.Workload, Mode: s.Mode, Program: p.Name, RunCount: p.RunCount, RunTimeNs: p.RunTimeNs,
			Ops: s.Ops, RecursionMisses: p.RecursionMisses}
		r.RunsPerOp = float64(p.RunCount) / float64(s.Ops)
		r.NsPerOp = float64(p.RunTimeNs) / float64(s.Ops)
		if p.RunCount > 0 {
			r.NsPerRun = float64(p.RunTimeNs) / float64(p.RunCount)
		}
		rows = append(rows, r)
	}
	return rows
}

// finish works out the targets once every workload is in.
func (res *results) finish() { res.Targets = res.targets() }

func (res *results) row(workload, mode string) *row {
	for i := range res.Rows {
		if r := &res.Rows[i]; r.Workload == workload && r.Mode == mode && r.Runs > 0 {
			return r
		}
	}
	return nil
}

func (res *results) writeJSON(path string) error {
	b, err := json.MarshalIndent(res, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(b, '\n'), 0o644)
}

func collect(ss []sample, f func(sample) float64) []float64 {
	v := make([]float64, len(ss))
	for i, s := range ss {
		v[i] = f(s)
	}
	return v
}

func median(v []float64) float64 {
	v = slices.Sorted(slices.Values(v))
	if len(v)%2 == 1 {
		return v[len(v)/2]
	}
	return (v[len(v)/2-1] + v[len(v)/2]) / 2
}
