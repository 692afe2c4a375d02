// Package selector is what names the processes icptrack traces on a host:
// icptrack trace's --pid, --comm, --cgroup and --container, and the
// Collector receiver's include section. It checks them anywhere; finding
// the cgroup is Linux's (probes.ResolveSelector).
package selector

import "fmt"

// Spec names processes. Any match selects; an empty Spec selects all.
type Spec struct {
	PIDs  []int
	Comms []string
	// Cgroup is a cgroup v2 directory, absolute or relative to the
	// cgroup2 mount.
	Cgroup string
	// Container is a container id, or a unique prefix of at least 4
	// characters.
	Container string
}

// Field names for error messages; a caller maps them to its own names
// (--pid, include.pids).
const (
	FieldPIDs      = "pids"
	FieldComms     = "comms"
	FieldCgroup    = "cgroup"
	FieldContainer = "container"
)

// MaxComm is how much of a process name the kernel keeps.
const MaxComm = 15

// MaxPIDs and MaxComms are how many pids and names the kernel's selector
// maps hold (bpf/common.h: sel_pids, sel_comms).
const (
	MaxPIDs  = 4096
	MaxComms = 256
)

// Empty reports whether s selects every process.
func (s Spec) Empty() bool {
	return len(s.PIDs) == 0 && len(s.Comms) == 0 && s.Cgroup == "" && s.Container == ""
}

// Check finds what is wrong with s without looking at the host. name
// turns a field name into the caller's (nil keeps it).
func (s Spec) Check(name func(field string) string) error {
	if name == nil {
		name = func(f string) string { return f }
	}
	if len(s.PIDs) > MaxPIDs {
		return fmt.Errorf("%s names %d processes, more than the %d icptrack can select: select a cgroup or a name instead", name(FieldPIDs), len(s.PIDs), MaxPIDs)
	}
	if len(s.Comms) > MaxComms {
		return fmt.Errorf("%s has %d names, more than the %d icptrack can select", name(FieldComms), len(s.Comms), MaxComms)
	}
	for _, p := range s.PIDs {
		if p <= 0 {
			return fmt.Errorf("%s %d is not a process id: give positive numbers", name(FieldPIDs), p)
		}
	}
	for _, c := range s.Comms {
		if c == "" {
			return fmt.Errorf("%s has an empty name", name(FieldComms))
		}
		if len(c) > MaxComm {
			return fmt.Errorf("%s %q is longer than the %d characters the kernel keeps of a name: use %q", name(FieldComms), c, MaxComm, c[:MaxComm])
		}
	}
	if s.Cgroup != "" && s.Container != "" {
		return fmt.Errorf("%s and %s both name a cgroup: give one of them", name(FieldCgroup), name(FieldContainer))
	}
	if s.Container != "" && len(s.Container) < 4 {
		return fmt.Errorf("%s %s: give at least 4 characters of the container id", name(FieldContainer), s.Container)
	}
	return nil
}
