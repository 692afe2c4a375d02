package probes

import (
	"golang.org/x/sys/unix"

	"github.com/icptrack/icptrack/flow"
)

// Older calls that arm64 never had.
var archSyscalls = []hookedSyscall{
	{unix.SYS_OPEN, "open", ipcSyscallClassSC_OPEN, flow.SetOf(flow.FIFO, flow.POSIXShm)},
	{unix.SYS_UNLINK, "unlink", ipcSyscallClassSC_UNLINK, flow.SetOf(flow.POSIXShm)},
}
