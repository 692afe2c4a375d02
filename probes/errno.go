package probes

import (
	"strconv"

	"golang.org/x/sys/unix"
)

// errnoName names a Linux errno as the event log shows it: EAGAIN, EPIPE.
// The kernel's "restart" codes never reach userspace as such but can reach
// a tracepoint; they mean the call was interrupted.
func errnoName(n int64) string {
	switch n {
	case 512, 513, 514, 516: // ERESTARTSYS, ERESTARTNOINTR, ERESTARTNOHAND, ERESTART_RESTARTBLOCK
		return "EINTR"
	}
	if name := unix.ErrnoName(unix.Errno(n)); name != "" {
		return name
	}
	return "errno_" + strconv.FormatInt(n, 10)
}
