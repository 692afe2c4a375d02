package probes

import (
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"github.com/cilium/ebpf/features"
	"github.com/cilium/ebpf/link"
	"github.com/cilium/ebpf/rlimit"
	"golang.org/x/sys/unix"
)

// Feature is one BPF facility icptrack uses or could use, as the running
// kernel offers it: found by trying it, not from the version number.
type Feature struct {
	Name      string `json:"name"`
	Available bool   `json:"available"`
	// Reason is why it is not available.
	Reason string `json:"reason,omitempty"`
}

// KernelFeatures tries each facility in turn: the maps are created, the
// programs (which return at once) loaded and attached for an instant.
// Needs the privileges tracing needs.
func KernelFeatures() []Feature {
	_ = rlimit.RemoveMemlock()
	// kprobes fall back to tracefs, and the LSM list and lockdown live in
	// securityfs: look where they would be, not at an empty directory.
	mountIfMissing("tracefs", "/sys/kernel/tracing")
	mountIfMissing("securityfs", "/sys/kernel/security")
	mapType := func(name string, t ebpf.MapType) Feature {
		return feature(name, features.HaveMapType(t))
	}
	return []Feature{
		mapType("ring buffer", ebpf.RingBuf),
		mapType("task storage", ebpf.TaskStorage),
		mapType("socket storage", ebpf.SkStorage),
		feature("tp_btf", tryTracing(ebpf.AttachTraceRawTp, "sched_process_exit")),
		feature("fentry/fexit", tryTracing(ebpf.AttachTraceFEntry, "do_exit")),
		feature("kprobes", tryKprobe()),
		feature("BPF LSM", tryLSM()),
	}
}

func feature(name string, err error) Feature {
	if err == nil {
		return Feature{Name: name, Available: true}
	}
	return Feature{Name: name, Reason: err.Error()}
}

func emptyProgram() asm.Instructions {
	return asm.Instructions{asm.Mov.Imm(asm.R0, 0), asm.Return()}
}

func tryTracing(at ebpf.AttachType, target string) error {
	p, err := ebpf.NewProgram(&ebpf.ProgramSpec{
		Type: ebpf.Tracing, AttachType: at, AttachTo: target, Instructions: emptyProgram(), License: "GPL",
	})
	if err != nil {
		return loadReason(err)
	}
	defer p.Close()
	l, err := link.AttachTracing(link.TracingOptions{Program: p, AttachType: at})
	if err != nil {
		return attachReason(err)
	}
	return l.Close()
}

func tryKprobe() error {
	p, err := ebpf.NewProgram(&ebpf.ProgramSpec{Type: ebpf.Kprobe, Instructions: emptyProgram(), License: "GPL"})
	if err != nil {
		return loadReason(err)
	}
	defer p.Close()
	l, err := link.Kprobe("do_exit", p, nil)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) || errors.Is(err, ebpf.ErrNotSupported) {
			return errors.New("the kernel has no kprobes (CONFIG_KPROBES off, or kprobe_events missing)")
		}
		return err
	}
	return l.Close()
}

func tryLSM() error {
	lsms, err := os.ReadFile("/sys/kernel/security/lsm")
	if err == nil && !strings.Contains(","+strings.TrimSpace(string(lsms))+",", ",bpf,") {
		return fmt.Errorf("bpf is not among the active LSMs (%s)", strings.TrimSpace(string(lsms)))
	}
	p, err := ebpf.NewProgram(&ebpf.ProgramSpec{
		Type: ebpf.LSM, AttachType: ebpf.AttachLSMMac, AttachTo: "file_permission", Instructions: emptyProgram(), License: "GPL",
	})
	if err != nil {
		return loadReason(err)
	}
	defer p.Close()
	l, err := link.AttachLSM(link.LSMOptions{Program: p})
	if err != nil {
		return attachReason(err)
	}
	return l.Close()
}

func loadReason(err error) error {
	switch {
	case errors.Is(err, ebpf.ErrNotSupported):
		return errors.New("not supported by this kernel")
	case errors.Is(err, os.ErrPermission):
		return errors.New("the kernel refuses to load it (EPERM)")
	}
	return err
}

// Lockdown is the kernel's lockdown mode (none, integrity,
// confidentiality), or why it is unknown.
func Lockdown() string {
	mountIfMissing("securityfs", "/sys/kernel/security")
	b, err := os.ReadFile("/sys/kernel/security/lockdown")
	if err != nil {
		return "unknown (securityfs is not mounted, or the kernel has no lockdown)"
	}
	s := string(b)
	if i, j := strings.IndexByte(s, '['), strings.IndexByte(s, ']'); i >= 0 && j > i {
		return s[i+1 : j]
	}
	return strings.TrimSpace(s)
}

// Capabilities names what icptrack's process may do that BPF needs.
func Capabilities() []string {
	caps, err := effectiveCaps("/proc/self/status")
	if err != nil {
		return nil
	}
	var out []string
	for _, c := range []struct {
		bit  uint
		name string
	}{{capSysAdmin, "CAP_SYS_ADMIN"}, {capBPF, "CAP_BPF"}, {capPerfmon, "CAP_PERFMON"}} {
		if caps&(1<<c.bit) != 0 {
			out = append(out, c.name)
		}
	}
	return out
}

// HaveBTF says whether the kernel publishes its types.
func HaveBTF() bool {
	_, err := os.Stat(kernelBTF)
	return err == nil
}

// Check loads and attaches every program the configuration needs, traces
// nothing (no process is followed), and says for each mechanism whether
// it works here. Only what stops everything (no privileges, no BTF, the
// process table) is an error.
func Check(cfg Config) ([]MechanismStatus, error) {
	cfg.FollowPID = os.Getpid() // its children: it has none
	cfg.TraceAll = false
	cfg.Required = 0
	t, err := load(cfg)
	if err != nil {
		return nil, err
	}
	defer t.Close()
	return t.Mechanisms(), nil
}

// mountIfMissing mounts a kernel filesystem at its usual place when
// nothing is mounted there (a container, a minimal VM); failures leave
// things as they were.
func mountIfMissing(fstype, dir string) {
	var st, parent unix.Stat_t
	if unix.Stat(dir, &st) != nil || unix.Stat(dir+"/..", &parent) != nil || st.Dev != parent.Dev {
		return // absent, or already a mount point
	}
	_ = unix.Mount(fstype, dir, fstype, 0, "")
}
