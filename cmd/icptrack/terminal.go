package main

import (
	"io"
	"os"

	"golang.org/x/sys/unix"
)

// isTerminal tells whether w is a terminal: text output is coloured only
// then. A wrapped standard output counts as what it wraps.
func isTerminal(w io.Writer) bool {
	if n, ok := w.(nopCloser); ok {
		w = n.Writer
	}
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	_, err := unix.IoctlGetTermios(int(f.Fd()), unix.TCGETS)
	return err == nil
}
