package main

import (
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// mounts are the file systems a real machine has and the tests use: /proc
// and /sys, /dev (devtmpfs, so device nodes exist), /dev/shm for POSIX
// shared memory, /dev/mqueue, cgroup2 for the selector tests, bpffs, and
// the tracing file systems for anyone reading trace_pipe.
var mounts = []struct {
	fstype, target string
	flags          uintptr
	data           string
	optional       bool // a warning when it fails, not a failed VM
}{
	{"proc", "/proc", unix.MS_NOSUID | unix.MS_NODEV | unix.MS_NOEXEC, "", false},
	{"sysfs", "/sys", unix.MS_NOSUID | unix.MS_NODEV | unix.MS_NOEXEC, "", false},
	{"devtmpfs", "/dev", unix.MS_NOSUID, "mode=0755", false},
	{"tmpfs", "/dev/shm", unix.MS_NOSUID | unix.MS_NODEV, "mode=1777", false},
	{"mqueue", "/dev/mqueue", unix.MS_NOSUID | unix.MS_NODEV | unix.MS_NOEXEC, "", false},
	{"devpts", "/dev/pts", unix.MS_NOSUID | unix.MS_NOEXEC, "mode=0620,ptmxmode=0666", true},
	{"tmpfs", "/tmp", unix.MS_NOSUID | unix.MS_NODEV, "mode=1777", false},
	{"tmpfs", "/run", unix.MS_NOSUID | unix.MS_NODEV, "mode=0755", false},
	{"cgroup2", "/sys/fs/cgroup", unix.MS_NOSUID | unix.MS_NODEV | unix.MS_NOEXEC, "", false},
	{"bpf", "/sys/fs/bpf", unix.MS_NOSUID | unix.MS_NODEV | unix.MS_NOEXEC, "mode=0700", false},
	{"tracefs", "/sys/kernel/tracing", unix.MS_NOSUID | unix.MS_NODEV | unix.MS_NOEXEC, "", true},
	{"debugfs", "/sys/kernel/debug", unix.MS_NOSUID | unix.MS_NODEV | unix.MS_NOEXEC, "", true},
}

// links are the ones udev or systemd would make in /dev.
var links = map[string]string{
	"/dev/fd":     "/proc/self/fd",
	"/dev/stdin":  "/proc/self/fd/0",
	"/dev/stdout": "/proc/self/fd/1",
	"/dev/stderr": "/proc/self/fd/2",
}

func mountAll() error {
	for _, m := range mounts {
		err := os.MkdirAll(m.target, 0o755)
		if err == nil {
			err = unix.Mount(m.fstype, m.target, m.fstype, m.flags, m.data)
		}
		if err != nil {
			err = fmt.Errorf("mount %s on %s: %w", m.fstype, m.target, err)
			if !m.optional {
				return err
			}
			fmt.Printf("vminit: %v (not needed by the tests)\n", err)
		}
	}
	for name, target := range links {
		if err := os.Symlink(target, name); err != nil {
			return fmt.Errorf("link %s: %w", name, err)
		}
	}
	for _, dir := range []string{"/root", "/etc"} {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return err
		}
	}
	// So that "localhost" names loopback without DNS.
	return os.WriteFile("/etc/hosts", []byte("127.0.0.1 localhost\n::1 localhost\n"), 0o644)
}
