package vmtest

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Result is what became of one VM.
type Result struct {
	Kernel   string        // the matrix entry, amd64-6.1
	Release  string        // uname -r inside the VM
	ExitCode int           // the test binary's, when Err is nil
	Boot     time.Duration // from starting QEMU to init naming the kernel
	Duration time.Duration // from starting QEMU to its end
	Err      error         // the VM ended without reporting an exit status
}

// Passed says whether the tests ran and passed.
func (r Result) Passed() bool { return r.Err == nil && r.ExitCode == 0 }

// powerOffGrace is how long QEMU gets to power off after the exit line.
const powerOffGrace = 30 * time.Second

// Run boots vm and waits, at most timeout, for its init to report the
// test binary's exit status. Every console line is copied to out,
// prefixed with the kernel's name.
func Run(ctx context.Context, vm VM, timeout time.Duration, out io.Writer) Result {
	res := Result{Kernel: vm.Kernel.Name}
	cmd, err := vm.command()
	if err != nil {
		res.Err = err
		return res
	}
	fmt.Fprintf(out, "[%s] %s\n", vm.Kernel.Name, cmd.String())
	start := time.Now()
	var mu sync.Mutex // one line at a time on out
	con := &consoleWriter{prefix: "[" + vm.Kernel.Name + "] ", out: out, mu: &mu, start: start, exited: make(chan struct{})}
	qemuErr := &consoleWriter{prefix: "[" + vm.Kernel.Name + " qemu] ", out: out, mu: &mu}
	cmd.Stdout, cmd.Stderr = con, qemuErr
	cmd.WaitDelay = 5 * time.Second
	// QEMU must not outlive a driver that was killed outright.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		res.Err = fmt.Errorf("start %s: %w", cmd.Path, err)
		return res
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()

	kill := func() error {
		cmd.Process.Kill()
		return <-done
	}
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	var how string
	select {
	case err = <-done:
		how = "the VM stopped"
		if err != nil {
			how = fmt.Sprintf("QEMU failed (%v)", err)
		}
	case <-con.exited:
		select {
		case <-done:
		case <-time.After(powerOffGrace):
			kill()
			fmt.Fprintf(out, "[%s] the VM did not power off within %s of the exit line: killed it\n", vm.Kernel.Name, powerOffGrace)
		}
	case <-timer.C:
		kill()
		how = fmt.Sprintf("timed out after %s", timeout)
	case <-ctx.Done():
		kill()
		how = "interrupted"
	}
	con.flush()
	qemuErr.flush()
	res.Duration = time.Since(start)

	mu.Lock()
	defer mu.Unlock()
	res.Release, res.Boot = con.console.Release, con.boot
	if qemuErr.last != "" {
		// Such as "terminating on signal 15 from pid 123 (pkill)".
		how += fmt.Sprintf(" (QEMU said: %s)", qemuErr.last)
	}
	if res.Err = con.console.Err(how); res.Err == nil {
		res.ExitCode = con.console.ExitCode
	}
	return res
}

// consoleWriter splits QEMU's output into lines, copies each to out with
// a prefix, and, for the serial console, follows the markers.
type consoleWriter struct {
	prefix  string
	out     io.Writer
	mu      *sync.Mutex // shared by the writers of one out
	buf     []byte
	last    string // the last line
	start   time.Time
	console Console
	boot    time.Duration
	exited  chan struct{} // closed at the exit line; nil on stderr
}

func (w *consoleWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf = append(w.buf, p...)
	for {
		i := bytes.IndexByte(w.buf, '\n')
		if i < 0 {
			break
		}
		w.line(string(w.buf[:i]))
		w.buf = w.buf[i+1:]
	}
	return len(p), nil
}

func (w *consoleWriter) flush() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.buf) > 0 {
		w.line(string(w.buf))
		w.buf = nil
	}
}

func (w *consoleWriter) line(s string) {
	s = strings.TrimRight(s, "\r")
	fmt.Fprintf(w.out, "%s%s\n", w.prefix, s)
	if strings.TrimSpace(s) != "" {
		w.last = s
	}
	if w.exited == nil {
		return
	}
	hadRelease, hadExit := w.console.Release != "", w.console.Exited
	w.console.Line(s)
	if !hadRelease && w.console.Release != "" {
		w.boot = time.Since(w.start)
	}
	if !hadExit && w.console.Exited {
		close(w.exited)
	}
}
