// Package probes loads icptrack's eBPF programs, attaches the hooks the
// chosen mechanisms need, and turns ring-buffer records into flow.Events.
package probes

import (
	"fmt"
	"os"
	"time"

	"github.com/icptrack/icptrack/flow"
)

// MaxPayloadBytes is the most payload an operation can carry (--payload).
const MaxPayloadBytes = 4096

// Config says what to trace and how.
type Config struct {
	// Mechanisms to trace. Those the kernel cannot serve are turned off,
	// and Tracer.Unavailable says why.
	Mechanisms flow.MechanismSet
	// Required are mechanisms the user named: Open fails when one of
	// them cannot be traced.
	Required flow.MechanismSet
	// PayloadBytes is how many bytes of each operation's data to copy;
	// 0 turns capture off.
	PayloadBytes int
	// RingBufferBytes is the size of the kernel-to-userspace ring buffer: a
	// power of two, at least one page.
	RingBufferBytes int
	// DrainInterval is how often the ring buffer is read when it is not
	// filling up.
	DrainInterval time.Duration
	// FollowPID traces the children of this process, and theirs, from the
	// moment they are forked (icptrack run). The process itself is not
	// traced.
	FollowPID int
	// TraceAll traces every process but icptrack itself.
	TraceAll bool
	// AttachOnly attaches the hooks the mechanisms need with programs
	// that return at once: the floor a benchmark compares against.
	AttachOnly bool
	// Cmdline adds each process's command line to its operations.
	Cmdline bool
	// Coalesce, when positive, makes the kernel send a run of
	// same-direction operations by one thread on one byte stream (pipe,
	// FIFO, unix stream, TCP), each starting where the last ended and
	// all within Coalesce of the first, as one record with their count
	// (flow.Event.Count), their total bytes and the byte range they
	// covered. 0 sends a record per operation.
	Coalesce time.Duration
	// MetricsOnly counts operations in the kernel (Tracer.Aggregates)
	// instead of sending each one: no events, no correlation, a fraction
	// of the cost.
	MetricsOnly bool
	// Select, with TraceAll, traces only the processes it names (and
	// what they fork from then on); Tracer.SetSelector changes it.
	Select *Selector

	// sockSyscalls: the kernel has neither the socket tracepoints nor
	// fentry/fexit, and unix sockets are seen from the syscall hooks
	// (decided by probing, in load).
	sockSyscalls bool
}

// Selector names processes to trace. Any match selects.
type Selector struct {
	PIDs  []int
	Comms []string
	// Cgroup is a cgroup v2 directory: processes in it or below it.
	Cgroup string
}

// DefaultConfig traces every mechanism, with no payload.
func DefaultConfig() Config {
	return Config{
		Mechanisms:      flow.AllMechanisms(),
		RingBufferBytes: 16 << 20,
		DrainInterval:   50 * time.Millisecond,
	}
}

// Validate says what is wrong with the configuration, and what to do.
func (c *Config) Validate() error {
	if c.Mechanisms == 0 {
		return fmt.Errorf("no mechanism to trace: name at least one")
	}
	if c.PayloadBytes < 0 || c.PayloadBytes > MaxPayloadBytes {
		return fmt.Errorf("payload size %d is out of range: use 0 (off) to %d bytes", c.PayloadBytes, MaxPayloadBytes)
	}
	page := os.Getpagesize()
	if c.RingBufferBytes < page || c.RingBufferBytes&(c.RingBufferBytes-1) != 0 {
		return fmt.Errorf("ring buffer size %d is not a power of two of at least %d bytes", c.RingBufferBytes, page)
	}
	if c.DrainInterval <= 0 {
		return fmt.Errorf("drain interval %s must be positive", c.DrainInterval)
	}
	if c.Coalesce < 0 {
		return fmt.Errorf("coalesce window %s is negative: use 0 (a record per operation) or a duration such as 1ms", c.Coalesce)
	}
	if c.FollowPID == 0 && !c.TraceAll {
		return fmt.Errorf("nothing selected to trace: set a process to follow or trace all")
	}
	return nil
}

// syscallHooks reports whether sys_enter/sys_exit must be attached: pipes
// and FIFOs are only visible there, and socket payloads need the user
// buffer the entry hook saves. Everything else avoids them, because every
// syscall of every process pays for them once attached.
func (c *Config) syscallHooks() bool {
	return c.Mechanisms&syscallMechanisms != 0 || (c.PayloadBytes > 0 && c.sockets()) ||
		(c.sockSyscalls && c.Mechanisms&unixSockets != 0)
}

// syscallMechanisms are seen only from sys_enter/sys_exit.
var syscallMechanisms = flow.SetOf(flow.Pipe, flow.FIFO, flow.POSIXMQ, flow.SysVMQ, flow.SysVShm, flow.POSIXShm, flow.Memfd)

// coalescing reports whether the kernel coalesces runs of operations:
// only when it sends records one by one.
func (c *Config) coalescing() bool { return c.Coalesce > 0 && !c.MetricsOnly && !c.AttachOnly }

func (c *Config) signals() bool { return c.Mechanisms.Has(flow.Signal) }

func (c *Config) sockets() bool {
	return c.Mechanisms&flow.SetOf(flow.UnixStream, flow.UnixDgram, flow.UnixSeqpacket, flow.TCP, flow.UDP) != 0
}

func (c *Config) datagrams() bool {
	return c.Mechanisms&flow.SetOf(flow.UnixDgram, flow.UnixSeqpacket, flow.UDP) != 0 && !c.sockSyscalls
}
