package probes

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/cilium/ebpf"
	"golang.org/x/sys/unix"

	"github.com/icptrack/icptrack/internal/selector"
)

// SetSelector changes, while tracing, which processes a tracer with
// TraceAll traces: nil is the whole host. Every task is judged again at
// its next hook: one the new selectors name is traced from then on, and
// so is what it forks. A task traced because it was forked from a traced
// one stays traced while the selector that named that ancestor still
// names it (the same pid, the same name, or the same cgroup selector);
// a syscall already under way is reported whole either way.
func (t *Tracer) SetSelector(s *Selector) error {
	if t.coll == nil {
		return errors.New("the tracer is closed")
	}
	if !t.cfg.TraceAll {
		return errors.New("only a tracer of the host (TraceAll) has selectors to change")
	}
	t.selMu.Lock()
	defer t.selMu.Unlock()
	return t.writeSelector(s)
}

// writeSelector changes the kernel's selector maps to s (nil: the whole
// host), then bumps the generation, so that no task keeps a verdict made
// before the maps were complete.
func (t *Tracer) writeSelector(s *Selector) error {
	old := t.sel
	if old == nil {
		old = &Selector{}
	}
	all := s == nil
	if all {
		s = &Selector{}
	}
	pids, comms := t.coll.Maps["sel_pids"], t.coll.Maps["sel_comms"]
	// What is added is taken out again if a later step fails, so that a
	// change that fails leaves the running selectors as they were.
	var addedPIDs []int
	var addedComms []string
	undo := func(err error) error {
		for _, pid := range addedPIDs {
			_ = pids.Delete(uint32(pid))
		}
		for _, name := range addedComms {
			_ = comms.Delete(commKey(name))
		}
		return err
	}
	one := uint8(1)
	for _, pid := range s.PIDs {
		if err := pids.Update(uint32(pid), one, ebpf.UpdateAny); err != nil {
			return undo(fmt.Errorf("select pid %d: %w", pid, err))
		}
		if !slices.Contains(old.PIDs, pid) {
			addedPIDs = append(addedPIDs, pid)
		}
	}
	for _, name := range s.Comms {
		if err := comms.Update(commKey(name), one, ebpf.UpdateAny); err != nil {
			return undo(fmt.Errorf("select name %q: %w", name, err))
		}
		if !slices.Contains(old.Comms, name) {
			addedComms = append(addedComms, name)
		}
	}
	cgroupChanged := s.Cgroup != old.Cgroup
	if cgroupChanged && s.Cgroup != "" {
		fd, err := unix.Open(s.Cgroup, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
		if err != nil {
			return undo(fmt.Errorf("open cgroup %s: %w", s.Cgroup, err))
		}
		err = t.coll.Maps["sel_cgroup"].Update(uint32(0), uint32(fd), ebpf.UpdateAny)
		unix.Close(fd)
		if err != nil {
			return undo(fmt.Errorf("select cgroup %s: %w (it must be a cgroup v2 directory)", s.Cgroup, err))
		}
	}
	// What the new selectors no longer name goes only once they are all
	// in: a task judged meanwhile is judged again after the bump.
	for _, pid := range old.PIDs {
		if !slices.Contains(s.PIDs, pid) {
			if err := pids.Delete(uint32(pid)); err != nil && !errors.Is(err, ebpf.ErrKeyNotExist) {
				return fmt.Errorf("unselect pid %d: %w", pid, err)
			}
		}
	}
	for _, name := range old.Comms {
		if !slices.Contains(s.Comms, name) {
			if err := comms.Delete(commKey(name)); err != nil && !errors.Is(err, ebpf.ErrKeyNotExist) {
				return fmt.Errorf("unselect name %q: %w", name, err)
			}
		}
	}
	if cgroupChanged && s.Cgroup == "" {
		if err := t.coll.Maps["sel_cgroup"].Delete(uint32(0)); err != nil && !errors.Is(err, ebpf.ErrKeyNotExist) {
			return fmt.Errorf("unselect cgroup %s: %w", old.Cgroup, err)
		}
	}
	t.selGen++
	if cgroupChanged {
		t.selCgroupGen++
	}
	for name, v := range map[string]any{
		"sel_all": boolByte(all), "sel_cgroup_set": boolByte(s.Cgroup != ""), "sel_cgroup_gen": t.selCgroupGen,
	} {
		if err := t.setVariable(name, v); err != nil {
			return err
		}
	}
	// Last: the generation tells every task to be judged again.
	if err := t.setVariable("sel_gen", t.selGen); err != nil {
		return err
	}
	if !all {
		t.sel = s
	} else {
		t.sel = nil
	}
	return nil
}

// setVariable writes one of the BPF object's global variables.
func (t *Tracer) setVariable(name string, v any) error {
	vr, ok := t.coll.Variables[name]
	if !ok {
		return fmt.Errorf("BPF object has no variable %q (rebuild it with make generate)", name)
	}
	if err := vr.Set(v); err != nil {
		return fmt.Errorf("set %s: %w", name, err)
	}
	return nil
}

// commKey is a name selector's key: the kernel keeps 15 bytes of a name.
func commKey(name string) [16]byte {
	var key [16]byte
	copy(key[:15], name)
	return key
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
