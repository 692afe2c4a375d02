// Command vminit is the init (PID 1) of the VMs that make test-kernels
// boots. It makes the machine enough like a real one for the kernel tests
// (file systems mounted, loopback up, CI=true), runs the test binary the
// host put in the initramfs, says on the console how it exited, and
// powers the VM off.
//
// Built static (CGO_ENABLED=0) for the guest's architecture; nothing else
// is in the initramfs.
package main

import (
	"encoding/json"
	"fmt"
	"os"
	"time"

	"golang.org/x/sys/unix"

	"github.com/icptrack/icptrack/internal/vmtest"
)

func main() {
	if err := setUp(); err != nil {
		fatal(err)
	}
	var u unix.Utsname
	if err := unix.Uname(&u); err != nil {
		fatal(fmt.Errorf("uname: %w", err))
	}
	fmt.Println(vmtest.KernelLine(unix.ByteSliceToString(u.Release[:]), unix.ByteSliceToString(u.Machine[:])))

	job, err := readJob()
	if err != nil {
		fatal(err)
	}
	code := run(job)
	// On a line of its own even if the tests' output did not end one.
	fmt.Printf("\n%s\n", vmtest.ExitLine(code))
	powerOff()
}

// setUp mounts the file systems, brings up loopback and lifts the
// locked-memory limit for BPF maps on kernels that still charge it.
func setUp() error {
	if err := mountAll(); err != nil {
		return err
	}
	if err := loopbackUp(); err != nil {
		return err
	}
	inf := &unix.Rlimit{Cur: unix.RLIM_INFINITY, Max: unix.RLIM_INFINITY}
	if err := unix.Setrlimit(unix.RLIMIT_MEMLOCK, inf); err != nil {
		return fmt.Errorf("raise RLIMIT_MEMLOCK: %w", err)
	}
	return nil
}

func readJob() (vmtest.Job, error) {
	var job vmtest.Job
	b, err := os.ReadFile(vmtest.JobPath)
	if err != nil {
		return job, fmt.Errorf("read the job: %w", err)
	}
	if err := json.Unmarshal(b, &job); err != nil {
		return job, fmt.Errorf("read the job %s: %w", vmtest.JobPath, err)
	}
	return job, nil
}

// run runs the test binary and returns its exit status. As PID 1 it also
// reaps the orphans the tests leave, which would otherwise stay zombies.
func run(job vmtest.Job) int {
	fmt.Printf("vminit: %s %q\n", job.Binary, job.Args)
	p, err := os.StartProcess(job.Binary, append([]string{job.Binary}, job.Args...), &os.ProcAttr{
		Dir: "/tmp",
		Env: []string{
			"CI=true", // kernel tests fail, not skip, without BPF
			"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
			"HOME=/root",
			"TMPDIR=/tmp",
		},
		Files: []*os.File{os.Stdin, os.Stdout, os.Stderr},
	})
	if err != nil {
		fmt.Printf("vminit: start %s: %v\n", job.Binary, err)
		return 127
	}
	for {
		var ws unix.WaitStatus
		pid, err := unix.Wait4(-1, &ws, 0, nil)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			fmt.Printf("vminit: wait for %s: %v\n", job.Binary, err)
			return 126
		}
		if pid != p.Pid {
			continue
		}
		if ws.Signaled() {
			return 128 + int(ws.Signal())
		}
		return ws.ExitStatus()
	}
}

// fatal reports a VM that could not be set up. It prints no exit line, so
// the host reports the VM as failed, with this message above.
func fatal(err error) {
	fmt.Printf("vminit: %v\n", err)
	powerOff()
}

func powerOff() {
	unix.Sync()
	err := unix.Reboot(unix.LINUX_REBOOT_CMD_POWER_OFF)
	// Returning from PID 1 would panic the kernel, which ends the VM too
	// (panic=-1, -no-reboot); say why first.
	fmt.Printf("vminit: power off: %v\n", err)
	time.Sleep(time.Second)
	os.Exit(1)
}
