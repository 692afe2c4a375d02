package filter

import (
	"slices"

	"github.com/icptrack/icptrack/flow"
)

// Pushdown is what the kernel may select on for a filter: each field that
// is set is a necessary condition (the operation's value must be in it);
// an empty field constrains nothing. It comes from the filter's top-level
// and-ed conditions that test pid, tid, comm, cgroup_id, container_id,
// mechanism or channel with == or in (or an or of such tests on one
// field).
type Pushdown struct {
	PIDs         []uint32
	TIDs         []uint32
	Comms        []string
	CgroupIDs    []uint64
	ContainerIDs []string
	Mechanisms   flow.MechanismSet
	// Channels is not for the kernel, which does not know channels by
	// their names: the store's block index skips blocks with it.
	Channels []string
}

// Empty reports whether the pushdown constrains nothing.
func (p Pushdown) Empty() bool {
	return len(p.PIDs) == 0 && len(p.TIDs) == 0 && len(p.Comms) == 0 &&
		len(p.CgroupIDs) == 0 && len(p.ContainerIDs) == 0 && p.Mechanisms == 0 && len(p.Channels) == 0
}

// Accepts reports whether op meets every constraint.
func (p Pushdown) Accepts(op *flow.Operation) bool {
	return (len(p.PIDs) == 0 || slices.Contains(p.PIDs, op.PID)) &&
		(len(p.TIDs) == 0 || slices.Contains(p.TIDs, op.TID)) &&
		(len(p.Comms) == 0 || slices.Contains(p.Comms, op.Comm)) &&
		(len(p.CgroupIDs) == 0 || slices.Contains(p.CgroupIDs, op.CgroupID)) &&
		(len(p.ContainerIDs) == 0 || slices.Contains(p.ContainerIDs, op.ContainerID)) &&
		(p.Mechanisms == 0 || p.Mechanisms.Has(op.Mechanism)) &&
		(len(p.Channels) == 0 || slices.Contains(p.Channels, op.Channel))
}

// selection is one pushed-down field's allowed values.
type selection struct {
	field string
	nums  []int64
	strs  []string
}

func pushdownOf(root *node) Pushdown {
	var conj []*node
	var split func(n *node)
	split = func(n *node) {
		if n.kind == nAnd {
			split(n.left)
			split(n.right)
			return
		}
		conj = append(conj, n)
	}
	split(root)

	// Each and-ed condition must hold, so each selection must: keep the
	// first for each field. (Two on one field intersect, but the first
	// alone is already necessary; an empty intersection means nothing
	// matches, and then any pushdown is right.)
	seen := map[string]bool{}
	var p Pushdown
	for _, n := range conj {
		sel, ok := selectionOf(n)
		if !ok || seen[sel.field] {
			continue
		}
		seen[sel.field] = true
		switch sel.field {
		case "pid", "tid":
			ids := make([]uint32, 0, len(sel.nums))
			for _, v := range sel.nums {
				if v < 0 || v > 1<<32-1 {
					continue // no operation has it: leaving it out keeps the rest necessary
				}
				ids = append(ids, uint32(v))
			}
			if len(ids) == 0 {
				ids = []uint32{0} // none can match; 0 is no real pid
			}
			if sel.field == "pid" {
				p.PIDs = ids
			} else {
				p.TIDs = ids
			}
		case "cgroup_id":
			for _, v := range sel.nums {
				p.CgroupIDs = append(p.CgroupIDs, uint64(v))
			}
		case "comm":
			p.Comms = sel.strs
		case "container_id":
			p.ContainerIDs = sel.strs
		case "channel":
			p.Channels = sel.strs
		case "mechanism":
			for _, v := range sel.nums {
				p.Mechanisms |= flow.SetOf(flow.Mechanism(v))
			}
		}
	}
	return p
}

// selectionOf says which values of one pushable field n requires, if it
// is an == or in on one, or an or of such tests on the same field.
func selectionOf(n *node) (selection, bool) {
	switch n.kind {
	case nOr:
		l, ok := selectionOf(n.left)
		if !ok {
			return selection{}, false
		}
		r, ok := selectionOf(n.right)
		if !ok || r.field != l.field {
			return selection{}, false
		}
		return selection{l.field, append(slices.Clone(l.nums), r.nums...), append(slices.Clone(l.strs), r.strs...)}, true
	case nPred:
		switch n.field.name {
		case "pid", "tid", "comm", "cgroup_id", "container_id", "mechanism", "channel":
		default:
			return selection{}, false
		}
		if n.op != "==" && n.op != "in" {
			return selection{}, false
		}
		return selection{n.field.name, slices.Clone(n.nums), slices.Clone(n.strs)}, true
	}
	return selection{}, false
}
