package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/icptrack/icptrack/capture"
	"github.com/icptrack/icptrack/filter"
	"github.com/icptrack/icptrack/flow"
)

// readCaptures hands each operation of each file (- is stdin), in any
// format capture.Open reads, to each in turn. A file that cannot be read
// stops it with an error that names the file and the place; what came
// before was handed over.
func readCaptures(files []string, stdin io.Reader, each func(*flow.Operation)) error {
	for _, name := range files {
		if err := readCapture(name, stdin, each); err != nil {
			return err
		}
	}
	return nil
}

func readCapture(name string, stdin io.Reader, each func(*flow.Operation)) error {
	return readCaptureFrom(name, stdin, func(op *flow.Operation, _ capture.Reader) { each(op) })
}

// readCaptureFrom is readCapture for those that also need the reader an
// operation came from (the host an OTLP capture names: capture.Hosted).
func readCaptureFrom(name string, stdin io.Reader, each func(*flow.Operation, capture.Reader)) error {
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
		each(op, cr)
	}
}

// parseFilter compiles a --filter flag's expression into the operations
// it keeps; nil, for an empty one, keeps all. A mistake is a usage error
// with a caret under it, after prefix ("--filter: ").
func parseFilter(expr, prefix string) (func(*flow.Operation) bool, error) {
	flt, err := compileFilter(expr, prefix)
	if flt == nil || err != nil {
		return nil, err
	}
	return flt.Match, nil
}

// compileFilter is parseFilter's filter itself, for what uses its
// pushdown (a store's index); nil for an empty expression.
func compileFilter(expr, prefix string) (*filter.Filter, error) {
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
	return flt, nil
}

// keepingFrom is keeping for readCaptureFrom.
func keepingFrom(keep func(*flow.Operation) bool, add func(*flow.Operation, capture.Reader)) func(*flow.Operation, capture.Reader) {
	if keep == nil {
		return add
	}
	return func(op *flow.Operation, r capture.Reader) {
		if keep(op) {
			add(op, r)
		}
	}
}

// keeping passes on the operations keep matches (all when keep is nil).
func keeping(keep func(*flow.Operation) bool, add func(*flow.Operation)) func(*flow.Operation) {
	if keep == nil {
		return add
	}
	return func(op *flow.Operation) {
		if keep(op) {
			add(op)
		}
	}
}
