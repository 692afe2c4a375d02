package filter

import (
	"fmt"
	"math/rand"
	"strings"
	"testing"

	"github.com/icptrack/icptrack/flow"
)

// Small domains, so that random filters and random operations meet often.
var (
	genPIDs  = []uint32{1, 2, 3}
	genComms = []string{"a", "b", "c"}
	genMechs = []flow.Mechanism{flow.Pipe, flow.UnixStream, flow.TCP}
)

func genOp(r *rand.Rand) *flow.Operation {
	op := &flow.Operation{
		PID: genPIDs[r.Intn(3)], TID: genPIDs[r.Intn(3)], Comm: genComms[r.Intn(3)],
		Mechanism: genMechs[r.Intn(3)], Op: flow.Send, Bytes: int64(r.Intn(3)), QueueDepth: -1,
		CgroupID: uint64(r.Intn(3)), ContainerID: []string{"", "k1", "k2"}[r.Intn(3)],
		Channel: []string{"", "pipe:1", "pipe:2"}[r.Intn(3)],
	}
	if r.Intn(2) == 0 {
		op.Error = "EAGAIN"
	}
	return op
}

func genAtom(r *rand.Rand) string {
	list := func(vals []string) string {
		n := 1 + r.Intn(2)
		parts := make([]string, n)
		for i := range parts {
			parts[i] = vals[r.Intn(len(vals))]
		}
		return "(" + strings.Join(parts, ", ") + ")"
	}
	pick := func(vals []string) string { return vals[r.Intn(len(vals))] }
	pids := []string{"1", "2", "3", "4"}
	comms := []string{"a", "b", "c", "d"}
	mechs := []string{"pipe", "unix_stream", "tcp", "udp"}
	cgs := []string{"0", "1", "2"}
	ctrs := []string{`""`, "k1", "k2"}
	eqOps := []string{"==", "!=", "in", "<", ">"}
	switch r.Intn(10) {
	case 0, 1:
		field := pick([]string{"pid", "tid"})
		op := pick(eqOps)
		if op == "in" {
			return field + " in " + list(pids)
		}
		return field + " " + op + " " + pick(pids)
	case 2:
		switch op := pick([]string{"==", "!=", "in", "glob"}); op {
		case "in":
			return "comm in " + list(comms)
		case "glob":
			return `comm glob "` + pick([]string{"a*", "*", "?"}) + `"`
		default:
			return "comm " + op + " " + pick(comms)
		}
	case 3:
		if r.Intn(2) == 0 {
			return "mechanism in " + list(mechs)
		}
		return "mechanism " + pick([]string{"==", "!="}) + " " + pick(mechs)
	case 4:
		if r.Intn(2) == 0 {
			return "cgroup_id in " + list(cgs)
		}
		return "cgroup_id " + pick(eqOps[:2]) + " " + pick(cgs)
	case 5:
		if r.Intn(2) == 0 {
			return "container_id in " + list(ctrs)
		}
		return "container_id " + pick(eqOps[:2]) + " " + pick(ctrs)
	case 6:
		return "bytes " + pick([]string{"==", "!=", "<", ">"}) + " " + pick([]string{"0", "1", "2"})
	case 7:
		return pick([]string{"error", "error == EAGAIN", "error != EAGAIN", "container_id"})
	case 8:
		chans := []string{`""`, "pipe:1", "pipe:2"}
		if r.Intn(2) == 0 {
			return "channel in " + list(chans)
		}
		return "channel " + pick(eqOps[:2]) + " " + pick(chans)
	}
	return "blocked"
}

func genExpr(r *rand.Rand, depth int) string {
	if depth <= 0 || r.Intn(3) == 0 {
		return genAtom(r)
	}
	switch r.Intn(4) {
	case 0:
		return "not " + genExpr(r, depth-1)
	case 1:
		return "(" + genExpr(r, depth-1) + " or " + genExpr(r, depth-1) + ")"
	}
	return "(" + genExpr(r, depth-1) + " and " + genExpr(r, depth-1) + ")"
}

// Falco once pushed a condition into the kernel that refused events the
// whole condition accepted. Whatever the filter accepts, its pushdown must.
func TestPushdownIsNecessary(t *testing.T) {
	r := rand.New(rand.NewSource(13))
	ops := make([]*flow.Operation, 300)
	for i := range ops {
		ops[i] = genOp(r)
	}
	var checked, constrained int
	for i := 0; i < 5000; i++ {
		// Top-level ands of 1–4 conditions, so that there is something to push.
		parts := make([]string, 1+r.Intn(4))
		for j := range parts {
			parts[j] = genExpr(r, 2)
		}
		expr := strings.Join(parts, " and ")
		f := mustParse(t, expr)
		p := f.Pushdown()
		for _, op := range ops {
			if !f.Match(op) {
				continue
			}
			checked++
			if !p.Empty() {
				constrained++
			}
			if !p.Accepts(op) {
				t.Fatalf("%s accepts %+v but its pushdown %+v refuses it", expr, op, p)
			}
		}
	}
	// The property is only tested where filters match and push something.
	if checked < 10000 || constrained < 3000 {
		t.Fatalf("too few cases: %d matches, %d with a pushdown", checked, constrained)
	}
	t.Logf("%d matching operations, %d under a non-empty pushdown", checked, constrained)
}

// The pushdown is not only safe but useful: it refuses what the filter
// refuses on the pushed fields.
func TestPushdownRefusesOtherSelections(t *testing.T) {
	p := mustParse(t, `pid == 1 and comm in (a, b) and mechanism == tcp`).Pushdown()
	for _, c := range []struct {
		op   flow.Operation
		want bool
	}{
		{flow.Operation{PID: 1, Comm: "a", Mechanism: flow.TCP}, true},
		{flow.Operation{PID: 2, Comm: "a", Mechanism: flow.TCP}, false},
		{flow.Operation{PID: 1, Comm: "c", Mechanism: flow.TCP}, false},
		{flow.Operation{PID: 1, Comm: "b", Mechanism: flow.Pipe}, false},
	} {
		if got := p.Accepts(&c.op); got != c.want {
			t.Errorf("%+v accepts %s = %v, want %v", p, fmt.Sprint(c.op.PID, c.op.Comm, c.op.Mechanism), got, c.want)
		}
	}
}
