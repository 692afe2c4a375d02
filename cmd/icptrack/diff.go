package main

import (
	"encoding/json"
	"fmt"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/icptrack/icptrack/analyze"
)

type diffFlags struct {
	json     bool
	interval time.Duration
	filter   string
	exitCode bool
}

func newDiffCommand() *cobra.Command {
	var f diffFlags
	cmd := &cobra.Command{
		Use:   "diff A B",
		Short: "Say what changed between two captures: channels and pairs new or gone, rates and latencies that moved",
		Long: `diff reads two captures (jsonl, csv, otlp-json or otlp-proto; - is standard input) and says
what changed from A to B: channels and pairs of processes that are new or gone, and rates and
latencies that moved beyond noise. Channels are matched by mechanism, endpoint (with inode
numbers, pids and ephemeral ports masked) and the names of the processes at their ends;
pairs by the names of the sender and the receiver (README: icptrack diff).`,
		Example: `  icptrack diff yesterday.jsonl today.jsonl
  icptrack diff --exit-code --filter 'comm glob "app*"' before.otlp after.otlp || echo changed`,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) != 2 {
				return usageError("diff needs two captures: icptrack diff A B")
			}
			if args[0] == "-" && args[1] == "-" {
				return usageError("diff can read only one of A and B from standard input")
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			if cmd.Flags().Changed("interval") && f.interval <= 0 {
				return usageError("--interval must be above 0, such as 100ms or 1s")
			}
			keep, err := parseFilter(f.filter, "--filter: ")
			if err != nil {
				return err
			}
			var sides [2]*analyze.Analyzer
			for i, name := range args {
				sides[i] = analyze.New(analyze.Options{Interval: f.interval})
				if err := readCaptures([]string{name}, os.Stdin, keeping(keep, sides[i].Add)); err != nil {
					return err
				}
			}
			d := analyze.Compare(sides[0], sides[1], f.interval, analyze.DefaultRule)
			if f.json {
				err = json.NewEncoder(os.Stdout).Encode(d)
			} else {
				err = d.WriteText(os.Stdout)
			}
			if err != nil {
				return &exitError{code: exitFailure, err: fmt.Errorf("writing: %v", err)}
			}
			if f.exitCode && d.Changed() {
				return &exitError{code: 1}
			}
			return nil
		},
	}
	fs := cmd.Flags()
	fs.BoolVar(&f.json, "json", false, "write the differences as one JSON object (README: icptrack diff)")
	fs.DurationVar(&f.interval, "interval", 0, "compare rates in intervals this long (default: chosen from the longer capture's span)")
	fs.StringVar(&f.filter, "filter", "", "compare only the operations this filter matches, in both captures (README: Filters)")
	fs.BoolVar(&f.exitCode, "exit-code", false, "exit 1 when something changed, 0 when nothing did, as git diff --exit-code")
	return cmd
}
