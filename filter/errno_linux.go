package filter

import "golang.org/x/sys/unix"

// errnoNames are Linux's errno names, as probes/errno.go writes them.
func errnoNames() map[string]int64 {
	m := map[string]int64{}
	for n := 1; n < 4096; n++ {
		if name := unix.ErrnoName(unix.Errno(n)); name != "" {
			if _, dup := m[name]; !dup {
				m[name] = int64(n)
			}
		}
	}
	return m
}
