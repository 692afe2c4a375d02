package replay

import (
	"cmp"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/icptrack/icptrack/flow"
)

// Reason says why an operation of the capture is not re-enacted.
type Reason uint8

// The reasons, from the most to the least common in real captures.
const (
	// A call that failed (EAGAIN on an empty socket, EPIPE): whether it
	// fails again depends on the other end's timing, and re-enacting a
	// read that was meant to fail could take bytes a later read needs.
	Failed Reason = iota + 1
	// A signal the kernel raised (SIGCHLD, SIGPIPE): only the kernel can
	// send it.
	KernelSignal
	// A process signalling itself (raise, the Go runtime's SIGURG): not
	// inter-process, and a stand-in's own runtime would add its own.
	SelfSignal
	// The process at the other end was not traced, so no stand-in plays
	// it.
	Untraced
	// The bytes it received were sent before the capture began, or by a
	// process that was not traced: the capture does not say who sent them.
	UnknownSender
	// Bytes or messages never received in the capture (it ended first),
	// more than the channel can hold, so the stand-in would block.
	NeverReceived
	// SIGKILL and SIGSTOP cannot be handled: they would end or stop the
	// stand-in that receives them.
	Uncatchable
	// The capture does not say which end of the connection the process
	// used, or one process used both.
	UnknownEnd
	// An operation the re-enactment has no way to perform faithfully
	// (a futex wait or wake, a queue notification).
	Unsupported
	reasonEnd
)

var reasonTexts = [...]string{
	Failed:        "failed in the capture: whether it fails again depends on timing",
	KernelSignal:  "sent by the kernel",
	SelfSignal:    "a process signalling itself, not another",
	Untraced:      "the other end was not traced",
	UnknownSender: "who sent the bytes is not in the capture (before it began, or untraced)",
	NeverReceived: "never received in the capture, and more than the channel holds",
	Uncatchable:   "SIGKILL and SIGSTOP would end or stop the stand-in",
	UnknownEnd:    "which end of the connection was used is not in the capture",
	Unsupported:   "cannot be re-enacted faithfully",
}

func (r Reason) String() string {
	if r > 0 && r < reasonEnd {
		return reasonTexts[r]
	}
	return fmt.Sprintf("reason(%d)", uint8(r))
}

// Skip is an operation of the capture that is not re-enacted.
type Skip struct {
	Op     flow.OpID
	PID    uint32
	Comm   string
	Mech   flow.Mechanism
	Type   flow.OpType
	Ops    int64 // the calls the record stands for
	Reason Reason
	// Detail sharpens the reason: the errno, the signal, the syscall.
	Detail string
}

func skipOf(op *flow.Operation, r Reason, detail string) Skip {
	return Skip{Op: op.ID, PID: op.PID, Comm: op.Comm, Mech: op.Mechanism, Type: op.Op, Ops: op.Ops(), Reason: r, Detail: detail}
}

// SkipGroup counts the skipped operations of one mechanism, type and
// reason.
type SkipGroup struct {
	Mech   flow.Mechanism
	Type   flow.OpType
	Reason Reason
	// Details are the distinct details seen, such as EAGAIN, SIGCHLD.
	Details []string
	Records int
	Ops     int64
	// Example is one of them, to look up in the capture.
	Example flow.OpID
}

// Group gathers skipped operations by mechanism, type and reason, most
// numerous first.
func Group(skips []Skip) []SkipGroup {
	type key struct {
		m flow.Mechanism
		t flow.OpType
		r Reason
	}
	idx := map[key]int{}
	var out []SkipGroup
	for _, s := range skips {
		k := key{s.Mech, s.Type, s.Reason}
		i, ok := idx[k]
		if !ok {
			i = len(out)
			idx[k] = i
			out = append(out, SkipGroup{Mech: s.Mech, Type: s.Type, Reason: s.Reason, Example: s.Op})
		}
		g := &out[i]
		g.Records++
		g.Ops += s.Ops
		if s.Detail != "" && !slices.Contains(g.Details, s.Detail) {
			g.Details = append(g.Details, s.Detail)
		}
	}
	for i := range out {
		slices.Sort(out[i].Details)
	}
	slices.SortStableFunc(out, func(a, b SkipGroup) int {
		return cmp.Or(cmp.Compare(b.Ops, a.Ops), cmp.Compare(a.Mech, b.Mech), cmp.Compare(a.Type, b.Type))
	})
	return out
}

// PrintSkipped writes the report of what is not re-enacted: one line per
// mechanism, type and reason.
func PrintSkipped(w io.Writer, skips []Skip) {
	groups := Group(skips)
	if len(groups) == 0 {
		fmt.Fprintln(w, "every operation of the capture is re-enacted")
		return
	}
	var total int64
	for _, g := range groups {
		total += g.Ops
	}
	fmt.Fprintf(w, "not re-enacted: %d operations\n", total)
	for _, g := range groups {
		what := g.Mech.String() + " " + g.Type.String()
		if len(g.Details) > 0 {
			d := g.Details
			if len(d) > 4 {
				d = append(slices.Clone(d[:4]), "…")
			}
			what += " (" + strings.Join(d, ", ") + ")"
		}
		fmt.Fprintf(w, "  %6d  %-34s %s; e.g. id %s\n", g.Ops, what, g.Reason, g.Example)
	}
}
