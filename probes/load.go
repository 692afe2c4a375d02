package probes

import (
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"sync"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"github.com/cilium/ebpf/btf"
	"github.com/cilium/ebpf/link"
	"golang.org/x/sys/unix"

	"github.com/icptrack/icptrack/flow"
)

// MechanismStatus says whether a mechanism is traced on this kernel, with
// which hooks, or why not.
type MechanismStatus struct {
	Mechanism flow.Mechanism
	// Hooks are the programs that see it ("tp_btf/sys_enter", ...).
	Hooks []string
	// Err is why it is off; nil when it is on.
	Err error
}

// groupResult is how a hook group fared.
type groupResult struct {
	group *hookGroup
	hooks []hook // the variant that attached
	err   error  // why no variant did
}

// rejectEnv names programs (comma-separated) that are made to fail the
// verifier: a test knob, to check that one rejected program turns off only
// its own mechanisms.
const rejectEnv = "ICPTRACK_TEST_REJECT"

// loadGroups loads and attaches every hook group the configuration needs,
// each on its own: the maps are created once and shared, and a group that
// no variant can serve is reported, not fatal. Only the process table is
// fatal, since everything needs it.
func (t *Tracer) loadGroups(spec *ebpf.CollectionSpec) error {
	coll, err := ebpf.NewCollection(withPrograms(spec, nil))
	if err != nil {
		return loadError(err)
	}
	t.coll = coll
	// Selectors before any program runs: a task's verdict is kept from
	// the first time a program meets it.
	if t.cfg.TraceAll {
		if err := t.writeSelector(t.cfg.Select); err != nil {
			return err
		}
	}
	reject := strings.Split(os.Getenv(rejectEnv), ",")
	for i := range hookGroups {
		g := &hookGroups[i]
		if !g.needed(&t.cfg) {
			continue
		}
		if g.name == "sockets" && t.cfg.sockSyscalls {
			t.groups = append(t.groups, t.socketsViaSyscalls()...)
			continue
		}
		res := groupResult{group: g}
		var errs []string
		for _, variant := range g.variants {
			hooks := wanted(variant, &t.cfg)
			if len(hooks) == 0 {
				continue
			}
			if err := t.attachVariant(spec, hooks, reject); err != nil {
				errs = append(errs, err.Error())
				continue
			}
			res.hooks = hooks
			break
		}
		if res.hooks == nil {
			res.err = errors.New(strings.Join(errs, "; "))
			if g.serves == 0 && !g.optional {
				return fmt.Errorf("load the process table's programs: %w", loadError(res.err))
			}
		}
		t.groups = append(t.groups, res)
	}
	return nil
}

// withPrograms is spec with only the given programs: a shallow copy, since
// loading does not change a spec, and copying every program's
// instructions for each group would be wasted.
func withPrograms(spec *ebpf.CollectionSpec, progs map[string]*ebpf.ProgramSpec) *ebpf.CollectionSpec {
	return &ebpf.CollectionSpec{Maps: spec.Maps, Variables: spec.Variables, Types: spec.Types,
		ByteOrder: spec.ByteOrder, Programs: progs}
}

// attachVariant loads a variant's programs against the shared maps and
// attaches them all, or leaves nothing behind.
func (t *Tracer) attachVariant(spec *ebpf.CollectionSpec, hooks []hook, reject []string) error {
	vs := withPrograms(spec, make(map[string]*ebpf.ProgramSpec, len(hooks)))
	for _, h := range hooks {
		ps := spec.Programs[h.program]
		if ps == nil {
			return fmt.Errorf("%s: the BPF object has no program %s (rebuild it with make generate)", h, h.program)
		}
		ps = ps.Copy()
		if slices.Contains(reject, h.program) {
			// Reads far past the context: every verifier refuses it.
			ps.Instructions = asm.Instructions{
				asm.LoadMem(asm.R0, asm.R1, 4096, asm.DWord),
				asm.Return(),
			}
		}
		vs.Programs[h.program] = ps
	}
	// The programs' collection holds the shared maps as replacements:
	// it is not closed, only its programs are taken.
	vc, err := ebpf.NewCollectionWithOptions(vs, ebpf.CollectionOptions{MapReplacements: t.coll.Maps})
	if err != nil {
		return hookError(hooks, err)
	}
	var progs []*ebpf.Program
	var links []link.Link
	undo := func() {
		for _, l := range links {
			l.Close()
		}
		for _, p := range progs {
			p.Close()
		}
	}
	for _, h := range hooks {
		p := vc.Programs[h.program]
		progs = append(progs, p)
	}
	for _, h := range hooks {
		l, err := link.AttachTracing(link.TracingOptions{Program: vc.Programs[h.program], AttachType: h.attach})
		if err != nil {
			undo()
			return fmt.Errorf("attach %s: %w", h, attachReason(err))
		}
		links = append(links, l)
	}
	t.progs = append(t.progs, progs...)
	t.links = append(t.links, links...)
	return nil
}

// hookError says which program of a variant failed to load, and why, in
// a line: a verifier's log is cut to its last lines.
func hookError(hooks []hook, err error) error {
	name := hooks[0].String()
	for _, h := range hooks {
		if strings.Contains(err.Error(), "program "+h.program+":") {
			name = h.String()
		}
	}
	var ve *ebpf.VerifierError
	switch {
	case errors.As(err, &ve):
		return fmt.Errorf("%s: the verifier rejected it (%s); please report it with uname -r",
			name, strings.Join(verifierTail(ve.Log, 2), " | "))
	case errors.Is(err, ebpf.ErrNotSupported) && hooks[0].attach == ebpf.AttachTraceRawTp:
		return fmt.Errorf("%s: this kernel has no such tracepoint", name)
	case errors.Is(err, ebpf.ErrNotSupported):
		return fmt.Errorf("%s: this kernel has no such function to hook", name)
	case errors.Is(err, unix.EPERM) && hooks[0].attach != ebpf.AttachTraceRawTp:
		return fmt.Errorf("%s: this kernel does not permit fentry/fexit programs", name)
	case errors.Is(err, unix.EPERM):
		return fmt.Errorf("%s: the kernel refused to load it: %w", name, ErrPermission)
	}
	return fmt.Errorf("%s: %v", name, err)
}

// verifierTail is the last n lines of a verifier log that say something:
// not its closing statistics.
func verifierTail(log []string, n int) []string {
	var out []string
	for i := len(log) - 1; i >= 0 && len(out) < n; i-- {
		l := strings.TrimSpace(log[i])
		if l == "" || strings.HasPrefix(l, "processed ") || strings.HasPrefix(l, "verification time") ||
			strings.HasPrefix(l, "stack depth") {
			continue
		}
		out = append([]string{l}, out...)
	}
	return out
}

func attachReason(err error) error {
	if errors.Is(err, unix.Errno(524)) /* ENOTSUPP */ || errors.Is(err, ebpf.ErrNotSupported) {
		return errors.New("it loads, but this kernel cannot attach it (no BPF trampoline for it)")
	}
	return err
}

// Mechanisms says, for each mechanism the configuration asked for,
// whether it is traced and how, or why not.
func (t *Tracer) Mechanisms() []MechanismStatus {
	var out []MechanismStatus
	for _, m := range flow.AllMechanisms().List() {
		if !t.cfg.Mechanisms.Has(m) {
			continue
		}
		st := MechanismStatus{Mechanism: m}
		var errs []string
		for _, g := range t.groups {
			if g.group.serves == 0 || !g.group.serves.Has(m) {
				continue // the process table serves all, and is never off
			}
			if g.err != nil {
				errs = append(errs, g.err.Error())
				continue
			}
			for _, h := range g.hooks {
				if h.needs == 0 || h.needs.Has(m) {
					st.Hooks = append(st.Hooks, h.String())
				}
			}
		}
		if errs != nil {
			st.Err = errors.New(strings.Join(errs, "; "))
			st.Hooks = nil
		}
		out = append(out, st)
	}
	return out
}

// Unavailable returns the mechanisms that are off, with why.
func (t *Tracer) Unavailable() []MechanismStatus {
	var out []MechanismStatus
	for _, st := range t.Mechanisms() {
		if st.Err != nil {
			out = append(out, st)
		}
	}
	return out
}

// checkMechanisms fails when a mechanism the user named cannot be traced,
// or when none can.
func (t *Tracer) checkMechanisms() error {
	off := t.Unavailable()
	var named []MechanismStatus
	for _, st := range off {
		if t.cfg.Required.Has(st.Mechanism) {
			named = append(named, st)
		}
	}
	if named != nil {
		return fmt.Errorf("%w on this kernel (%s): %s; leave them out of --mechanisms, "+
			"or see what the kernel offers with icptrack check", ErrMechanismUnavailable, KernelRelease(), describeOff(named))
	}
	if len(off) == t.cfg.Mechanisms.Len() {
		return fmt.Errorf("%w on this kernel (%s): %s; see what the kernel offers with icptrack check",
			ErrMechanismUnavailable, KernelRelease(), describeOff(off))
	}
	return nil
}

// describeOff names the mechanisms that are off, those off for one reason
// together.
func describeOff(off []MechanismStatus) string {
	var reasons []string
	by := map[string][]string{}
	for _, st := range off {
		r := st.Err.Error()
		if by[r] == nil {
			reasons = append(reasons, r)
		}
		by[r] = append(by[r], st.Mechanism.String())
	}
	parts := make([]string, len(reasons))
	for i, r := range reasons {
		parts[i] = strings.Join(by[r], ", ") + ": " + r
	}
	return strings.Join(parts, "; ")
}

// ErrMechanismUnavailable is what Open returns when a mechanism that was
// asked for by name cannot be traced on this kernel.
var ErrMechanismUnavailable = errors.New("cannot trace")

// KernelRelease is uname -r.
func KernelRelease() string {
	var u unix.Utsname
	if err := unix.Uname(&u); err != nil {
		return "unknown kernel"
	}
	return unix.ByteSliceToString(u.Release[:])
}

// socketHooksExist says whether the kernel offers a way into every
// socket send and receive: the tracepoints, or fexit on unix sockets'.
// Where it has neither, unix sockets are seen from the syscall hooks.
// Asked once per process: trying fexit patches kernel text, which is
// worth doing once, not at every Open.
var socketHooksExist = sync.OnceValue(func() bool {
	if spec, err := btf.LoadKernelSpec(); err == nil {
		var td *btf.Typedef
		if spec.TypeByName("btf_trace_sock_send_length", &td) == nil {
			return true
		}
	}
	return tryTracing(ebpf.AttachTraceFExit, "unix_stream_sendmsg") == nil
})

// socketsViaSyscalls is how the sockets group fares when unix sockets are
// seen from the syscall hooks: as they did, and loopback TCP and UDP not
// at all.
func (t *Tracer) socketsViaSyscalls() []groupResult {
	unixGroup := &hookGroup{name: "unix sockets", serves: unixSockets}
	inetGroup := &hookGroup{name: "inet sockets", serves: inetSockets}
	res := []groupResult{
		{group: unixGroup},
		{group: inetGroup, err: errors.New("tp_btf/sock_send_length: this kernel has no such tracepoint, " +
			"nor fentry/fexit to see the socket layer otherwise (Linux 6.3 or later has the tracepoint)")},
	}
	for _, g := range t.groups {
		if g.group.name == "syscalls" {
			res[0].hooks, res[0].err = g.hooks, g.err
		}
	}
	return res
}
