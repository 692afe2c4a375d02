package exporter

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"go.opentelemetry.io/collector/pdata/pcommon"

	"github.com/icptrack/icptrack/flow"
	"github.com/icptrack/icptrack/semconv"
)

// ScopeName is the instrumentation scope of everything icptrack emits.
const ScopeName = "github.com/icptrack/icptrack"

// DefaultServiceName is the service-name rule icptrack uses unless told
// otherwise: each process is a service named after its executable.
const DefaultServiceName = "{exe}"

// serviceNameFields are the placeholders a service-name rule may use.
var serviceNameFields = []string{"{exe}", "{comm}", "{container}"}

// ValidateServiceName checks a service-name rule: text with any of the
// placeholders {exe} (the executable's file name), {comm} (the process
// name) and {container} (the container id, or empty).
func ValidateServiceName(rule string) error {
	if strings.TrimSpace(rule) == "" {
		return fmt.Errorf("the service-name rule is empty: use %s, {comm}, or a name", DefaultServiceName)
	}
	rest := rule
	for _, f := range serviceNameFields {
		rest = strings.ReplaceAll(rest, f, "")
	}
	if i := strings.IndexAny(rest, "{}"); i >= 0 {
		return fmt.Errorf("service-name rule %q has an unknown placeholder: use %s", rule, strings.Join(serviceNameFields, ", "))
	}
	return nil
}

// ResourceOptions say what goes into each traced process's Resource.
type ResourceOptions struct {
	// ServiceName is the rule for service.name; DefaultServiceName when
	// empty.
	ServiceName string
	// HostName is host.name; os.Hostname() when empty, unless
	// NoHostName: then there is none (a replayed capture that does not
	// say where it was taken must not claim the replaying machine).
	HostName   string
	NoHostName bool
	// Attributes are added to every Resource (OTEL_RESOURCE_ATTRIBUTES);
	// they do not override what icptrack knows about the process.
	Attributes map[string]string
}

// resources builds and caches one Resource per traced process.
type resources struct {
	opts  ResourceOptions
	procs map[uint32]*procResource
}

type procResource struct {
	exe, comm, cmdline, container string
	attrs                         pcommon.Map
}

func newResources(opts ResourceOptions) *resources {
	if opts.ServiceName == "" {
		opts.ServiceName = DefaultServiceName
	}
	if opts.HostName == "" && !opts.NoHostName {
		opts.HostName, _ = os.Hostname()
	}
	return &resources{opts: opts, procs: make(map[uint32]*procResource)}
}

// of returns the attributes of op's process, rebuilt when the process
// exec'd or renamed itself.
func (r *resources) of(op *flow.Operation) pcommon.Map {
	p := r.procs[op.PID]
	if p != nil && p.exe == op.Exe && p.comm == op.Comm && p.cmdline == op.Cmdline && p.container == op.ContainerID {
		return p.attrs
	}
	if p == nil {
		if len(r.procs) >= 1<<16 {
			clear(r.procs) // processes come and go: start afresh rather than grow
		}
		p = &procResource{}
		r.procs[op.PID] = p
	}
	p.exe, p.comm, p.cmdline, p.container = op.Exe, op.Comm, op.Cmdline, op.ContainerID
	p.attrs = r.build(op)
	return p.attrs
}

func (r *resources) build(op *flow.Operation) pcommon.Map {
	m := pcommon.NewMap()
	m.EnsureCapacity(8 + len(r.opts.Attributes))
	if op.PID == flow.Kernel.PID {
		m.PutStr(semconv.AttrServiceName, flow.Kernel.Comm)
	} else {
		exe := ExecutableName(op)
		m.PutStr(semconv.AttrServiceName, r.serviceName(exe, op))
		m.PutInt(semconv.AttrProcessPID, int64(op.PID))
		if op.PPID != 0 {
			m.PutInt(semconv.AttrProcessParentPID, int64(op.PPID))
		}
		m.PutStr(semconv.AttrProcessExecutableName, exe)
		if op.Exe != "" {
			m.PutStr(semconv.AttrProcessExecutablePath, op.Exe)
		}
		if op.Cmdline != "" {
			m.PutStr(semconv.AttrProcessCommandLine, op.Cmdline)
		}
		if op.ContainerID != "" {
			m.PutStr(semconv.AttrContainerID, op.ContainerID)
		}
	}
	if r.opts.HostName != "" {
		m.PutStr(semconv.AttrHostName, r.opts.HostName)
	}
	for k, v := range r.opts.Attributes {
		if _, ok := m.Get(k); !ok {
			m.PutStr(k, v)
		}
	}
	return m
}

func (r *resources) serviceName(exe string, op *flow.Operation) string {
	rule := r.opts.ServiceName
	if rule == DefaultServiceName {
		return exe
	}
	return strings.NewReplacer("{exe}", exe, "{comm}", op.Comm, "{container}", op.ContainerID).Replace(rule)
}

// ExecutableName is process.executable.name: the base name of the
// process's executable, or its comm when the executable is not known.
func ExecutableName(op *flow.Operation) string {
	if op.Exe == "" {
		return op.Comm
	}
	return filepath.Base(op.Exe)
}
