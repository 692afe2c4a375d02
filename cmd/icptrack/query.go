package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/sys/unix"

	"github.com/icptrack/icptrack/exporter"
	"github.com/icptrack/icptrack/store"
)

type queryFlags struct {
	storeKeyFlags
	filter   string
	from, to string
	format   string
	stats    bool
}

func newQueryCommand() *cobra.Command {
	var f queryFlags
	cmd := &cobra.Command{
		Use:   "query DIR [--filter EXPR] [--from T] [--to T] [--format F]",
		Short: "Print the operations a store (--store) holds, in the order they were written",
		Long: `query reads a store written with --store, decrypting it with its keyring, and prints the
operations that match, in the order they were written, as the event log (jsonl) or in
--format. Blocks whose index shows that they hold nothing that can match (their time range,
the pids, mechanisms and channels a --filter requires) are skipped without being read.
--from and --to take an RFC 3339 time, or a duration meaning that long ago (1h).`,
		Example: `  icptrack query /var/lib/icptrack/store --from 2026-12-05T10:00:00Z --to 2026-12-05T10:05:00Z
  icptrack query /var/lib/icptrack/store --filter 'pid == 1234 and error' --format text
  icptrack query /var/lib/icptrack/store --from 15m --format csv > last-15-minutes.csv`,
		Args: func(_ *cobra.Command, args []string) error {
			if len(args) != 1 {
				return usageError("query needs the store's directory: icptrack query DIR")
			}
			return nil
		},
		RunE: func(_ *cobra.Command, args []string) error { return runQuery(&f, args[0]) },
	}
	f.register(cmd)
	cmd.Flags().StringVar(&f.filter, "filter", "", "print only the operations this filter matches (README: Filters)")
	cmd.Flags().StringVar(&f.from, "from", "", "only operations at or after this time (RFC 3339, or a duration: that long ago)")
	cmd.Flags().StringVar(&f.to, "to", "", "only operations before this time (RFC 3339, or a duration: that long ago)")
	cmd.Flags().StringVar(&f.format, "format", string(exporter.JSONL), "jsonl, csv, text, otlp-json or otlp-proto")
	cmd.Flags().BoolVar(&f.stats, "stats", false, "say on standard error how many blocks were read and how many the index skipped")
	return cmd
}

// parseTime reads --from or --to: RFC 3339, or a duration ago.
func parseTime(flag, s string, now time.Time) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t, nil
	}
	if d, err := time.ParseDuration(s); err == nil && d >= 0 {
		return now.Add(-d), nil
	}
	return time.Time{}, usageError("%s %q is not a time: use RFC 3339 (2026-12-05T10:00:00Z) or a duration meaning that long ago (15m)", flag, s)
}

func runQuery(f *queryFlags, dir string) error {
	format, err := exporter.ParseFormat(f.format)
	if err != nil {
		return usageError("--format: %v", err)
	}
	var q store.Query
	if q.Filter, err = compileFilter(f.filter, "--filter: "); err != nil {
		return err
	}
	now := time.Now()
	if q.From, err = parseTime("--from", f.from, now); err != nil {
		return err
	}
	if q.To, err = parseTime("--to", f.to, now); err != nil {
		return err
	}
	if !q.From.IsZero() && !q.To.IsZero() && !q.From.Before(q.To) {
		return usageError("--from %s is not before --to %s", f.from, f.to)
	}
	kr, err := f.load()
	if err != nil {
		return err
	}
	r, err := store.OpenReader(dir, kr)
	if err != nil {
		return usageError("%v", err)
	}
	w, err := exporter.NewWriter(format, os.Stdout, exporter.WriterOptions{Colour: isTerminal(os.Stdout)})
	if err != nil {
		return usageError("--format: %v", err)
	}
	ctx, stop := signal.NotifyContext(context.Background(), unix.SIGINT, unix.SIGTERM)
	defer stop()
	st, qerr := r.Query(ctx, q, func(rec *store.Record) error {
		w.Write(rec.Op)
		return nil
	})
	if err := w.Flush(); err != nil && qerr == nil {
		qerr = fmt.Errorf("writing: %v", err)
	}
	if f.stats {
		fmt.Fprintf(os.Stderr, "icptrack: %d operations matched of %d records read; %d of %d blocks skipped by their index, %d of %d segments by their time range\n",
			st.Matched, st.Records, st.BlocksSkipped, st.Blocks, st.SegmentsSkipped, st.Segments)
	}
	var ke *store.KeyError
	switch {
	case errors.As(qerr, &ke):
		return keyError(qerr)
	case qerr != nil:
		return &exitError{code: exitFailure, err: qerr}
	}
	return nil
}
