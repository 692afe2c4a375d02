package main

import (
	"encoding/json"
	"fmt"
	"os"
	"slices"
	"time"

	"github.com/spf13/cobra"

	"github.com/icptrack/icptrack/analyze"
	"github.com/icptrack/icptrack/flow"
)

type analyzeFlags struct {
	json     bool
	plot     string
	interval time.Duration
	top      int
	filter   string
	anomaly  anomalyFlags
}

func newAnalyzeCommand() *cobra.Command {
	var f analyzeFlags
	cmd := &cobra.Command{
		Use:   "analyze [FILE...]",
		Short: "Report what happened in a capture: the map, top talkers, rates, sizes, latencies, errors",
		Long: `analyze reads captures (jsonl, csv, otlp-json or otlp-proto, detected from the first bytes)
from each FILE in turn, or from standard input when there is none or it is -, and reports
what happened: who talks to whom over what, the top talkers, the busiest and slowest
channels, and per channel and per pair of processes the operations and bytes per second
over time, message sizes, latencies, time spent blocked and errors by errno.

With --anomalies it lists instead what departs from a baseline: the first part of the
capture (--baseline-window) or another capture (--baseline FILE): new channels and
pairs, rates and latencies outside the baseline's spread, bursts of errors, signal
storms and queues that keep growing, each with a score and its evidence.`,
		Example: `  icptrack analyze ipc.jsonl
  icptrack analyze --json ipc.jsonl | jq '.map'
  icptrack analyze --plot charts/ --filter 'comm glob "demo-*"' ipc.otlp
  icptrack analyze --anomalies --baseline-window 20s ipc.jsonl
  icptrack analyze --anomalies --baseline monday.jsonl tuesday.jsonl`,
		RunE: func(cmd *cobra.Command, args []string) error {
			keep, err := f.check(cmd)
			if err != nil {
				return err
			}
			if len(args) == 0 {
				args = []string{"-"}
			}
			det, err := f.anomaly.detector(cmd, f.interval)
			if err != nil {
				return err
			}
			if det != nil {
				if f.anomaly.baseline == "-" && slices.Contains(args, "-") {
					return usageError("--baseline - and the capture cannot both be standard input")
				}
				return f.anomaly.run(det, args, keep, f.json)
			}
			a := analyze.New(analyze.Options{Interval: f.interval, Top: f.top})
			if err := readCaptures(args, os.Stdin, keeping(keep, a.Add)); err != nil {
				return err
			}
			r := a.Report()
			if f.plot != "" {
				files, err := r.WritePlots(f.plot)
				if err != nil {
					return &exitError{code: exitFailure, err: fmt.Errorf("--plot: %v", err)}
				}
				fmt.Fprintf(os.Stderr, "icptrack: wrote %d charts to %s\n", len(files), f.plot)
			}
			if f.json {
				err = json.NewEncoder(os.Stdout).Encode(r)
			} else {
				err = r.WriteText(os.Stdout)
			}
			if err != nil {
				return &exitError{code: exitFailure, err: fmt.Errorf("writing: %v", err)}
			}
			return nil
		},
	}
	fs := cmd.Flags()
	fs.BoolVar(&f.json, "json", false, "write the report as one JSON object (README: icptrack analyze)")
	fs.StringVar(&f.plot, "plot", "", "also write PNG charts into this directory: rates over time, latency histograms")
	fs.DurationVar(&f.interval, "interval", 0, "count rates over time in intervals this long (default: chosen from the capture's span, at most 100 intervals)")
	fs.IntVar(&f.top, "top", analyze.DefaultTop, "how many processes and channels the ranked lists show")
	fs.StringVar(&f.filter, "filter", "", "analyze only the operations this filter matches (README: Filters)")
	f.anomaly.add(cmd)
	return cmd
}

func (f *analyzeFlags) check(cmd *cobra.Command) (func(*flow.Operation) bool, error) {
	if cmd.Flags().Changed("interval") && f.interval <= 0 {
		return nil, usageError("--interval must be above 0, such as 100ms or 1s")
	}
	if f.top < 1 {
		return nil, usageError("--top must be at least 1")
	}
	return parseFilter(f.filter, "--filter: ")
}
