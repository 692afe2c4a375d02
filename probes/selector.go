package probes

import (
	"fmt"

	"github.com/cilium/ebpf"
	"golang.org/x/sys/unix"
)

// fillSelectors writes icptrack trace's selectors into the kernel's maps.
// The programs decide per task, once, and cache the verdict.
func (t *Tracer) fillSelectors(s *Selector) error {
	one := uint8(1)
	for _, pid := range s.PIDs {
		if err := t.coll.Maps["sel_pids"].Update(uint32(pid), one, ebpf.UpdateAny); err != nil {
			return fmt.Errorf("select pid %d: %w", pid, err)
		}
	}
	for _, name := range s.Comms {
		var key [16]byte
		copy(key[:15], name) // the kernel keeps 15 bytes of a name
		if err := t.coll.Maps["sel_comms"].Update(key, one, ebpf.UpdateAny); err != nil {
			return fmt.Errorf("select name %q: %w", name, err)
		}
	}
	if s.Cgroup != "" {
		fd, err := unix.Open(s.Cgroup, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
		if err != nil {
			return fmt.Errorf("open cgroup %s: %w", s.Cgroup, err)
		}
		defer unix.Close(fd)
		if err := t.coll.Maps["sel_cgroup"].Update(uint32(0), uint32(fd), ebpf.UpdateAny); err != nil {
			return fmt.Errorf("select cgroup %s: %w (it must be a cgroup v2 directory)", s.Cgroup, err)
		}
	}
	return nil
}
