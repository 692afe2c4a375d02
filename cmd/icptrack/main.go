// Command icptrack traces inter-process communication with eBPF.
package main

import (
	"errors"
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/icptrack/icptrack/replay"
)

// exitError carries an exit code out of a command; its message, if any, is
// printed as one line.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string {
	if e.err == nil {
		return fmt.Sprintf("exit status %d", e.code)
	}
	return e.err.Error()
}

func (e *exitError) Unwrap() error { return e.err }

// Exit codes of icptrack's own failures. A traced command's code is passed
// through as it is.
const (
	exitFailure  = 1   // icptrack could not do its job
	exitUsage    = 2   // bad flags or arguments
	exitNotExec  = 126 // COMMAND is not executable
	exitNotFound = 127 // COMMAND was not found
)

func usageError(format string, args ...any) error {
	return &exitError{code: exitUsage, err: fmt.Errorf(format, args...)}
}

// extraCommands are added by files built only with a tag (gendocs.go).
var extraCommands []func() *cobra.Command

func main() {
	// A re-enactment's stand-ins are this binary run again.
	replay.StandInMain()
	os.Exit(execute(os.Args[1:]))
}

func execute(args []string) int {
	root := &cobra.Command{
		Use:   "icptrack",
		Short: "Trace how processes talk to each other, with eBPF",
		Long: "icptrack traces inter-process communication (pipes, FIFOs, unix sockets, loopback TCP and UDP)\n" +
			"with eBPF, matches every receive to the sends it delivered, and reports both ends.",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error {
		return usageError("%v (see icptrack --help)", err)
	})
	root.AddCommand(newRunCommand(), newTraceCommand(), newCheckCommand(), newConvertCommand(), newFilterCommand(),
		newAnalyzeCommand(), newDiffCommand(), newReplayCommand(), newKeysCommand(), newVerifyCommand(), newQueryCommand(),
		newServeCommand(), newTokenCommand(), newVersionCommand())
	for _, c := range extraCommands {
		root.AddCommand(c())
	}
	root.SetArgs(args)
	err := root.Execute()
	if err == nil {
		return 0
	}
	var ee *exitError
	if !errors.As(err, &ee) {
		ee = &exitError{code: exitUsage, err: err}
	}
	if ee.err != nil {
		fmt.Fprintf(os.Stderr, "icptrack: %v\n", ee.err)
	}
	return ee.code
}
