package main

import (
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/icptrack/icptrack/analyze/anomaly"
	"github.com/icptrack/icptrack/flow"
)

// anomalyFlags are analyze's --anomalies settings.
type anomalyFlags struct {
	on             bool
	baselineWindow time.Duration
	baseline       string
	threshold      float64
	exitCode       bool
}

func (f *anomalyFlags) add(cmd *cobra.Command) {
	fs := cmd.Flags()
	fs.BoolVar(&f.on, "anomalies", false, "list what departs from a baseline instead of the report (README: Anomalies)")
	fs.DurationVar(&f.baselineWindow, "baseline-window", anomaly.DefaultBaselineWindow, "with --anomalies: the first part of the capture that is the baseline")
	fs.StringVar(&f.baseline, "baseline", "", "with --anomalies: another capture (any format) that is the baseline, such as yesterday's")
	fs.Float64Var(&f.threshold, "threshold", anomaly.DefaultThreshold, "with --anomalies: the robust z score beyond which a rate, latency, error or signal count is flagged")
	fs.BoolVar(&f.exitCode, "exit-code", false, "with --anomalies: exit 1 when anything was found, 0 when nothing was")
}

// detector checks the flags and builds the detector; nil without
// --anomalies.
func (f *anomalyFlags) detector(cmd *cobra.Command, interval time.Duration) (*anomaly.Detector, error) {
	fs := cmd.Flags()
	if !f.on {
		for _, name := range []string{"baseline-window", "baseline", "threshold", "exit-code"} {
			if fs.Changed(name) {
				return nil, usageError("--%s needs --anomalies", name)
			}
		}
		return nil, nil
	}
	if fs.Changed("baseline-window") && f.baseline != "" {
		return nil, usageError("--baseline-window and --baseline both name the baseline: give one")
	}
	if fs.Changed("plot") {
		return nil, usageError("--plot draws the report, which --anomalies replaces: run analyze twice")
	}
	opts := anomaly.Options{Interval: interval, Threshold: f.threshold}
	if f.baseline == "" {
		opts.BaselineWindow = f.baselineWindow
	}
	d, err := anomaly.New(opts)
	if err != nil {
		return nil, usageError("--anomalies: %v", err)
	}
	return d, nil
}

// findAnomalies learns the baseline (from --baseline, through the same
// filter as the capture, so that like is compared with like), examines
// the files and writes the findings.
func (f *anomalyFlags) run(d *anomaly.Detector, files []string, keep func(*flow.Operation) bool, json bool) error {
	if f.baseline != "" {
		if err := readCaptures([]string{f.baseline}, os.Stdin, keeping(keep, d.Learn)); err != nil {
			return err
		}
	}
	if err := readCaptures(files, os.Stdin, keeping(keep, d.Add)); err != nil {
		return err
	}
	r, err := d.Findings()
	if err != nil {
		return &exitError{code: exitFailure, err: err}
	}
	if json {
		err = anomaly.WriteJSON(os.Stdout, r)
	} else {
		err = anomaly.WriteText(os.Stdout, r)
	}
	if err != nil {
		return &exitError{code: exitFailure, err: err}
	}
	if f.exitCode && len(r.Findings) > 0 {
		return &exitError{code: 1}
	}
	return nil
}
