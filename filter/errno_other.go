//go:build !linux

package filter

// errnoNames is Linux's list where it can be had; elsewhere (a Collector
// built for another system, which cannot trace) it is a few, and
// validErrno accepts any name shaped like one.
func errnoNames() map[string]int64 {
	return map[string]int64{"EPERM": 1, "EINTR": 4, "EAGAIN": 11, "EPIPE": 32, "ECONNREFUSED": 111}
}

func init() { anyErrnoName = true }
