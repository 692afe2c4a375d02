package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/icptrack/icptrack/capture"
	"github.com/icptrack/icptrack/exporter"
	"github.com/icptrack/icptrack/filter"
	"github.com/icptrack/icptrack/flow"
)

// convertFlags are convert's and filter's settings.
type convertFlags struct {
	to     string
	filter string
	// keep selects the operations written (--filter); nil keeps all.
	keep func(*flow.Operation) bool
}

func newConvertCommand() *cobra.Command {
	var f convertFlags
	formats := make([]string, len(exporter.Formats))
	for i, x := range exporter.Formats {
		formats[i] = string(x)
	}
	cmd := &cobra.Command{
		Use:   "convert --to FORMAT [FILE...]",
		Short: "Write a capture in another format",
		Long: "convert reads captures (the event log in any format icptrack writes but text: jsonl, csv,\n" +
			"otlp-json, otlp-proto; detected from the first bytes) from each FILE in turn, or from\n" +
			"standard input when there is none or it is -, and writes their operations to standard\n" +
			"output in FORMAT: " + strings.Join(formats, ", ") + ".",
		Example: "  icptrack convert --to csv ipc.jsonl > ipc.csv\n" +
			"  icptrack convert --to text ipc.otlp\n" +
			"  cat ipc.csv | icptrack convert --to otlp-json",
		RunE: func(cmd *cobra.Command, args []string) error {
			format, err := f.check(cmd)
			if err != nil {
				return err
			}
			if len(args) == 0 {
				args = []string{"-"}
			}
			return convert(format, args, os.Stdin, os.Stdout, f.keep)
		},
	}
	cmd.Flags().StringVar(&f.to, "to", "", "the format to write: "+strings.Join(formats, ", "))
	cmd.Flags().StringVar(&f.filter, "filter", "", "write only the operations this filter matches (README: Filters)")
	return cmd
}

func newFilterCommand() *cobra.Command {
	f := convertFlags{to: string(exporter.JSONL)}
	cmd := &cobra.Command{
		Use:   "filter EXPR [FILE...]",
		Short: "Write the operations of a capture that a filter matches",
		Long: `filter reads captures (jsonl, csv, otlp-json or otlp-proto, detected from the first bytes)
from each FILE in turn, or from standard input when there is none or it is -, and writes
the operations EXPR matches to standard output, in --to FORMAT (jsonl by default).
EXPR is the filter language of --filter (README: Filters).`,
		Example: `  icptrack filter 'mechanism == unix_stream and bytes > 4KiB' ipc.jsonl
  icptrack filter --to text 'comm glob "nginx*" and error' ipc.csv
  cat ipc.otlp | icptrack filter 'duration > 1ms' --to csv`,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) == 0 {
				return usageError("filter needs an expression: icptrack filter EXPR [FILE...]")
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			f.filter = args[0]
			format, err := f.check(cmd)
			if err != nil {
				return err
			}
			files := args[1:]
			if len(files) == 0 {
				files = []string{"-"}
			}
			return convert(format, files, os.Stdin, os.Stdout, f.keep)
		},
	}
	cmd.Flags().StringVar(&f.to, "to", f.to, "the format to write")
	return cmd
}

// check validates the flags: any mistake is a usage error.
func (f *convertFlags) check(cmd *cobra.Command) (exporter.Format, error) {
	if cmd.Name() == "convert" && !cmd.Flags().Changed("to") {
		return "", usageError("convert needs --to FORMAT (jsonl, csv, text, otlp-json or otlp-proto)")
	}
	format, err := exporter.ParseFormat(f.to)
	if err != nil {
		return "", usageError("--to: %v", err)
	}
	prefix := "" // icptrack filter: the expression is the argument
	if cmd.Name() == "convert" {
		prefix = "--filter: "
	}
	if f.keep, err = compileFilter(f.filter, prefix); err != nil {
		return "", err
	}
	return format, nil
}

// compileFilter parses a filter that selects operations of a capture: nil
// for none, a usage error with a caret under the mistake for a bad one.
// prefix names where it came from.
func compileFilter(expr, prefix string) (func(*flow.Operation) bool, error) {
	if strings.TrimSpace(expr) == "" {
		return nil, nil
	}
	flt, err := filter.Parse(expr)
	if err != nil {
		var fe *filter.Error
		if errors.As(err, &fe) {
			return nil, usageError("%s%s", prefix, fe.Caret())
		}
		return nil, usageError("%s%v", prefix, err)
	}
	return flt.Match, nil
}

// convert copies the operations of each file (- is stdin) to stdout in
// format. A file that cannot be read stops it, after what came before
// was written, with an error that names the file and the place.
func convert(format exporter.Format, files []string, stdin io.Reader, stdout *os.File, keep func(*flow.Operation) bool) error {
	w, err := exporter.NewWriter(format, stdout, exporter.WriterOptions{Colour: isTerminal(stdout)})
	if err != nil {
		return usageError("--to: %v", err)
	}
	var readErr error
	for _, name := range files {
		if readErr = eachOp(name, stdin, keep, w.Write); readErr != nil {
			break
		}
	}
	if err := w.Flush(); err != nil && readErr == nil {
		readErr = &exitError{code: exitFailure, err: fmt.Errorf("writing: %v", err)}
	}
	return readErr
}

// eachOp hands each operation of file name (- is stdin) that keep keeps
// to fn, with the reader it came from.
func eachOp(name string, stdin io.Reader, keep func(*flow.Operation) bool, fn func(*flow.Operation)) error {
	return eachOpOf(name, stdin, keep, func(op *flow.Operation, _ capture.Reader) { fn(op) })
}

func eachOpOf(name string, stdin io.Reader, keep func(*flow.Operation) bool, fn func(*flow.Operation, capture.Reader)) error {
	var r io.Reader = stdin
	shown := "standard input"
	if name != "-" {
		f, err := os.Open(name)
		if err != nil {
			return &exitError{code: exitFailure, err: err}
		}
		defer f.Close()
		r, shown = f, name
	}
	fail := func(err error) error {
		return &exitError{code: exitFailure, err: fmt.Errorf("%s: %v", shown, err)}
	}
	cr, err := capture.Open(r)
	if err != nil {
		return fail(err)
	}
	for {
		op, err := cr.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fail(err)
		}
		if keep == nil || keep(op) {
			fn(op, cr)
		}
	}
}
