package vmtest

import (
	"fmt"
	"strconv"
	"strings"
)

// The VM's init (vminit) learns what to run from JobPath in the
// initramfs, and tells the host what happened in marker lines on the
// serial console, the only channel out of the VM.

// JobPath is where the initramfs holds the Job, as JSON.
const JobPath = "/vmtest.json"

// Job is what vminit runs.
type Job struct {
	Binary string   `json:"binary"`
	Args   []string `json:"args"`
}

const (
	kernelMarker = "VMTEST-KERNEL: "
	exitMarker   = "VMTEST-EXIT: "
)

// KernelLine names the running kernel, as uname -r and uname -m do.
func KernelLine(release, machine string) string {
	return kernelMarker + release + " " + machine
}

// ExitLine reports the test binary's exit status (128+N when signal N
// killed it).
func ExitLine(code int) string { return exitMarker + strconv.Itoa(code) }

// Console follows a VM's console, line by line, for the markers and for
// signs of how a VM that never reported an exit status died.
type Console struct {
	Release  string // uname -r, once the kernel line was seen
	Machine  string // uname -m
	Exited   bool   // the exit line was seen
	ExitCode int
	// Trouble is the first line in which the kernel said it is in
	// trouble: a panic, an oops, a BUG such as a soft lockup, an RCU
	// stall. What comes first is usually the cause.
	Trouble string
}

// troubles start the kernel's reports of its own failures.
var troubles = []string{"Kernel panic", "BUG:", "Oops", "rcu: INFO:", "INFO: task"}

// Line takes one line of console output. Kernel messages can land in the
// middle of a line, so markers are found anywhere in it.
func (c *Console) Line(line string) {
	line = strings.TrimRight(line, "\r\n")
	if i := strings.Index(line, kernelMarker); i >= 0 && c.Release == "" {
		f := strings.Fields(line[i+len(kernelMarker):])
		if len(f) > 0 {
			c.Release = f[0]
		}
		if len(f) > 1 {
			c.Machine = f[1]
		}
	}
	if i := strings.Index(line, exitMarker); i >= 0 && !c.Exited {
		f := strings.Fields(line[i+len(exitMarker):])
		if len(f) > 0 {
			if n, err := strconv.Atoi(f[0]); err == nil {
				c.Exited, c.ExitCode = true, n
			}
		}
	}
	if c.Trouble == "" {
		for _, t := range troubles {
			if i := strings.Index(line, t); i >= 0 {
				c.Trouble = line[i:]
				break
			}
		}
	}
}

// Err says why a VM whose console ended without an exit line failed; nil
// when the exit line was seen.
func (c *Console) Err(how string) error {
	switch {
	case c.Exited:
		return nil
	case c.Trouble != "":
		return fmt.Errorf("%s; the kernel said %q (see the console above)", how, c.Trouble)
	case c.Release == "":
		return fmt.Errorf("%s before init started: the kernel did not boot (see the console above)", how)
	default:
		return fmt.Errorf("%s with no %q line: the tests did not finish (see the console above)", how, strings.TrimSpace(exitMarker))
	}
}
