package probes

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/cilium/ebpf"
	"golang.org/x/sys/unix"

	"github.com/icptrack/icptrack/internal/selector"
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

// ResolveSelector checks spec against this host: the processes exist, the
// cgroup or container is there. name turns a selector field into the
// caller's name for it, for messages (nil keeps it).
func ResolveSelector(spec selector.Spec, name func(string) string) (*Selector, error) {
	if name == nil {
		name = func(f string) string { return f }
	}
	if err := spec.Check(name); err != nil {
		return nil, err
	}
	if spec.Empty() {
		return nil, nil // the whole host
	}
	s := &Selector{PIDs: spec.PIDs, Comms: spec.Comms}
	for _, pid := range spec.PIDs {
		if _, err := os.Stat("/proc/" + strconv.Itoa(pid)); err != nil {
			return nil, fmt.Errorf("%s %d: no such process", name(selector.FieldPIDs), pid)
		}
	}
	var err error
	if spec.Cgroup != "" {
		if s.Cgroup, err = cgroupDir(spec.Cgroup); err != nil {
			return nil, fmt.Errorf("%s %s: %v", name(selector.FieldCgroup), spec.Cgroup, err)
		}
	}
	if spec.Container != "" {
		if s.Cgroup, err = containerCgroup(spec.Container); err != nil {
			return nil, fmt.Errorf("%s %s: %v", name(selector.FieldContainer), spec.Container, err)
		}
	}
	return s, nil
}

// cgroupDir finds a cgroup v2 directory: an absolute path, or a path
// relative to the cgroup2 mount.
func cgroupDir(p string) (string, error) {
	root := Cgroup2Mount()
	if root == "" {
		return "", errors.New("no cgroup v2 hierarchy is mounted (mount -t cgroup2 none /sys/fs/cgroup)")
	}
	dir := p
	if !strings.HasPrefix(p, root) {
		dir = filepath.Join(root, p)
	}
	if st, err := os.Stat(dir); err != nil || !st.IsDir() {
		return "", fmt.Errorf("no such cgroup (looked for %s)", dir)
	}
	return dir, nil
}

// containerCgroup finds the one cgroup whose name carries the container id.
func containerCgroup(id string) (string, error) {
	root := Cgroup2Mount()
	if root == "" {
		return "", errors.New("no cgroup v2 hierarchy is mounted")
	}
	var found []string
	_ = filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
		if err == nil && d.IsDir() {
			if c := ContainerIDFromCgroup(p); c != "" && strings.HasPrefix(c, id) {
				found = append(found, p)
				return filepath.SkipDir
			}
		}
		return nil
	})
	switch len(found) {
	case 0:
		return "", errors.New("no running container has this id")
	case 1:
		return found[0], nil
	}
	return "", fmt.Errorf("%d containers' ids start with it: give more of the id", len(found))
}
