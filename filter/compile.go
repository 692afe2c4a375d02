package filter

import (
	"bytes"
	"slices"
	"strings"

	"github.com/icptrack/icptrack/flow"
)

func compile(n *node) pred {
	switch n.kind {
	case nAnd:
		l, r := compile(n.left), compile(n.right)
		return func(op *flow.Operation) bool { return l(op) && r(op) }
	case nOr:
		l, r := compile(n.left), compile(n.right)
		return func(op *flow.Operation) bool { return l(op) || r(op) }
	case nNot:
		x := compile(n.left)
		return func(op *flow.Operation) bool { return !x(op) }
	}
	f := n.field
	if n.op == "" {
		if f.kind == kBool {
			return f.boolean // false when absent: payload_truncated without capture
		}
		return f.has
	}
	p := compileValue(n)
	if f.has == nil {
		return p
	}
	// An absent field equals nothing: != holds, every other test fails.
	has := f.has
	if n.op == "!=" {
		return func(op *flow.Operation) bool { return !has(op) || p(op) }
	}
	return func(op *flow.Operation) bool { return has(op) && p(op) }
}

// compileValue compiles a comparison as if the field were there.
func compileValue(n *node) pred {
	f := n.field
	switch f.kind {
	case kInt, kSize, kDuration, kNanos, kTime, kID, kMechanism, kOp:
		return compileNum(n, f.num)
	case kBool:
		want := n.nums[0] == 1
		get := f.boolean
		if n.op == "!=" {
			return func(op *flow.Operation) bool { return get(op) != want }
		}
		return func(op *flow.Operation) bool { return get(op) == want }
	case kString, kErrno, kSignal:
		return compileString(n, f.str)
	case kPayload:
		return compilePayload(n)
	case kIDList:
		want := flow.OpID(n.nums[0])
		return func(op *flow.Operation) bool { return slices.Contains(op.Links, want) }
	case kPIDList:
		want := uint32(n.nums[0])
		return func(op *flow.Operation) bool { return slices.Contains(op.Peers, want) }
	}
	panic("filter: no compiler for " + f.kind.String())
}

func compileNum(n *node, get func(*flow.Operation) int64) pred {
	if n.op == "in" {
		if n.field.kind == kMechanism || n.field.kind == kOp {
			var mask uint64
			for _, v := range n.nums {
				mask |= 1 << uint(v)
			}
			return func(op *flow.Operation) bool {
				v := get(op)
				return v >= 0 && v < 64 && mask&(1<<uint(v)) != 0
			}
		}
		set := slices.Clone(n.nums)
		return func(op *flow.Operation) bool { return slices.Contains(set, get(op)) }
	}
	v := n.nums[0]
	switch n.op {
	case "==":
		return func(op *flow.Operation) bool { return get(op) == v }
	case "!=":
		return func(op *flow.Operation) bool { return get(op) != v }
	case "<":
		return func(op *flow.Operation) bool { return get(op) < v }
	case "<=":
		return func(op *flow.Operation) bool { return get(op) <= v }
	case ">":
		return func(op *flow.Operation) bool { return get(op) > v }
	case ">=":
		return func(op *flow.Operation) bool { return get(op) >= v }
	}
	panic("filter: no numeric operator " + n.op)
}

func compileString(n *node, get func(*flow.Operation) string) pred {
	switch n.op {
	case "matches":
		re := n.re
		return func(op *flow.Operation) bool { return re.MatchString(get(op)) }
	case "glob":
		items, _ := compileGlob(n.strs[0]) // checked when parsed
		if lit, ok := globLiteral(items); ok {
			return literalStringGlob(get, lit, items)
		}
		return func(op *flow.Operation) bool { return globMatch(items, get(op), decodeString) }
	case "in":
		set := slices.Clone(n.strs)
		return func(op *flow.Operation) bool { return slices.Contains(set, get(op)) }
	}
	v := n.strs[0]
	switch n.op {
	case "==":
		return func(op *flow.Operation) bool { return get(op) == v }
	case "!=":
		return func(op *flow.Operation) bool { return get(op) != v }
	case "contains":
		return func(op *flow.Operation) bool { return strings.Contains(get(op), v) }
	}
	panic("filter: no string operator " + n.op)
}

// globShape is the shape of a glob whose only wildcards are * at its ends,
// which the common cases (nginx*, *.sock, *db*) are: they need no walk.
type globShape uint8

const (
	shapeExact globShape = iota
	shapePrefix
	shapeSuffix
	shapeContains
	shapeAny // *
)

func globLiteral(items []globItem) (globShape, bool) {
	switch {
	case len(items) == 0:
		return shapeExact, true
	case len(items) == 1 && items[0].kind == gStar:
		return shapeAny, true
	case len(items) == 1 && items[0].kind == gLit:
		return shapeExact, true
	case len(items) == 2 && items[0].kind == gLit && items[1].kind == gStar:
		return shapePrefix, true
	case len(items) == 2 && items[0].kind == gStar && items[1].kind == gLit:
		return shapeSuffix, true
	case len(items) == 3 && items[0].kind == gStar && items[1].kind == gLit && items[2].kind == gStar:
		return shapeContains, true
	}
	return 0, false
}

func globLit(items []globItem) string {
	for _, it := range items {
		if it.kind == gLit {
			return it.lit
		}
	}
	return ""
}

func literalStringGlob(get func(*flow.Operation) string, shape globShape, items []globItem) pred {
	lit := globLit(items)
	switch shape {
	case shapePrefix:
		return func(op *flow.Operation) bool { return strings.HasPrefix(get(op), lit) }
	case shapeSuffix:
		return func(op *flow.Operation) bool { return strings.HasSuffix(get(op), lit) }
	case shapeContains:
		return func(op *flow.Operation) bool { return strings.Contains(get(op), lit) }
	case shapeAny:
		return func(*flow.Operation) bool { return true }
	}
	return func(op *flow.Operation) bool { return get(op) == lit }
}

func compilePayload(n *node) pred {
	switch n.op {
	case "matches":
		re := n.re
		return func(op *flow.Operation) bool { return re.Match(op.Payload) }
	case "glob":
		items, _ := compileGlob(n.strs[0])
		if shape, ok := globLiteral(items); ok {
			lit := []byte(globLit(items))
			switch shape {
			case shapePrefix:
				return func(op *flow.Operation) bool { return bytes.HasPrefix(op.Payload, lit) }
			case shapeSuffix:
				return func(op *flow.Operation) bool { return bytes.HasSuffix(op.Payload, lit) }
			case shapeContains:
				return func(op *flow.Operation) bool { return bytes.Contains(op.Payload, lit) }
			case shapeAny:
				return func(*flow.Operation) bool { return true }
			}
			return func(op *flow.Operation) bool { return bytes.Equal(op.Payload, lit) }
		}
		return func(op *flow.Operation) bool { return globMatch(items, op.Payload, decodeBytes) }
	}
	v := []byte(n.strs[0])
	switch n.op {
	case "==":
		return func(op *flow.Operation) bool { return bytes.Equal(op.Payload, v) }
	case "!=":
		return func(op *flow.Operation) bool { return !bytes.Equal(op.Payload, v) }
	case "contains":
		return func(op *flow.Operation) bool { return bytes.Contains(op.Payload, v) }
	}
	panic("filter: no payload operator " + n.op)
}
