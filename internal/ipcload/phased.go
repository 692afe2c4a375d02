package ipcload

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"time"

	"golang.org/x/sys/unix"
)

// Phased workloads move their bytes in phases that a test starts one at a
// time, so that it can change how icptrack traces them in between while
// the same processes run: phase P starts when DIR/go-P exists, and the
// workload says it has finished P by writing its pid into DIR/NAME-P.
// Phase P's messages are SIZE+P bytes long, so that a test can tell the
// phases apart in what it captured.

// PhaseGate is the file that starts phase p.
func PhaseGate(dir string, p int) string { return filepath.Join(dir, "go-"+strconv.Itoa(p)) }

// PhaseDone is the file in which the workload name reports phase p done.
func PhaseDone(dir, name string, p int) string {
	return filepath.Join(dir, name+"-"+strconv.Itoa(p))
}

// RunPhase starts phase p of the phased workloads in dir and waits, a
// minute at most, until each of names has finished it; it returns their
// pids.
func RunPhase(dir string, p int, names ...string) (map[string]int, error) {
	if err := os.WriteFile(PhaseGate(dir, p), nil, 0o644); err != nil {
		return nil, err
	}
	pids := map[string]int{}
	for _, name := range names {
		for deadline := time.Now().Add(time.Minute); ; time.Sleep(time.Millisecond) {
			b, err := os.ReadFile(PhaseDone(dir, name, p))
			if pid, _ := strconv.Atoi(string(b)); err == nil && pid > 0 {
				pids[name] = pid
				break
			}
			if time.Now().After(deadline) {
				return pids, fmt.Errorf("phase %d: %s did not finish within a minute", p, name)
			}
		}
	}
	return pids, nil
}

// runPhased runs phased-write, phased-read and spawn; ok is false for any
// other mode.
func runPhased(mode string, a argList) (ok bool, err error) {
	switch mode {
	case "phased-write", "phased-read":
		// phased-write|phased-read FD SIZE COUNT DIR NAME PHASES: in each
		// phase, writes (reads) COUNT messages of SIZE+P bytes.
		return true, phased(mode == "phased-write", a.int(0), a.int(1), a.int(2), a.str(3), a.str(4), a.int(5))
	case "spawn":
		// spawn NFDS MODE ARGS...: runs workload MODE as a child, with
		// descriptors 3 to 3+NFDS-1, and waits for it: a process the
		// tracer sees fork.
		return true, spawnChild(a.int(0), a.str(1), a[2:])
	}
	return false, nil
}

func phased(write bool, fd, size, count int, dir, name string, phases int) error {
	for p := range phases {
		if err := waitFor(PhaseGate(dir, p)); err != nil {
			return err
		}
		n := size + p
		for i := range count {
			if write {
				if _, err := unix.Write(fd, Message(i, n)); err != nil {
					return fmt.Errorf("phase %d message %d: %w", p, i, err)
				}
				continue
			}
			if err := ReadFull(fd, make([]byte, n)); err != nil {
				return fmt.Errorf("phase %d message %d: %w", p, i, err)
			}
		}
		if err := os.WriteFile(PhaseDone(dir, name, p), []byte(strconv.Itoa(os.Getpid())), 0o644); err != nil {
			return err
		}
	}
	return nil
}

// waitFor waits, a minute at most, for path to exist.
func waitFor(path string) error {
	for end := time.Now().Add(time.Minute); time.Now().Before(end); time.Sleep(time.Millisecond) {
		if _, err := os.Stat(path); err == nil {
			return nil
		}
	}
	return fmt.Errorf("%s did not appear within a minute", path)
}

func spawnChild(nfds int, mode string, args []string) error {
	cmd := exec.Command(os.Args[0], args...)
	cmd.Env = append(os.Environ(), Env+"="+mode, DelayEnv+"=")
	cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
	for i := range nfds {
		cmd.ExtraFiles = append(cmd.ExtraFiles, os.NewFile(uintptr(3+i), "fd"))
	}
	return cmd.Run()
}
