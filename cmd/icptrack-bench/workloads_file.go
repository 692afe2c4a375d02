package main

import (
	"os"
	"time"

	"golang.org/x/sys/unix"
)

// fileWrite makes n 64-byte writes to a regular file: no IPC, so what
// icptrack costs it is the cost of its hooks to a process it does not
// trace.
func fileWrite(n int) error {
	f, err := os.CreateTemp("", "icptrack-bench-file")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name())
	fd := int(f.Fd())
	buf := make([]byte, msgSize)
	start := time.Now()
	for i := range n {
		if i%65536 == 0 {
			// Keep the file small; this adds two calls per 65536.
			if err := unix.Ftruncate(fd, 0); err != nil {
				return err
			}
			if _, err := unix.Seek(fd, 0, 0); err != nil {
				return err
			}
		}
		if _, err := unix.Write(fd, buf); err != nil {
			return err
		}
	}
	return report(n, time.Since(start), nil)
}
