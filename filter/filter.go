// Package filter is icptrack's filter language: an infix condition over
// the event log's fields (comm glob "nginx*" and bytes > 4KiB), checked
// when it is parsed, compiled to closures over *flow.Operation, and split
// into the part the kernel can select on (Pushdown).
package filter

import (
	"github.com/icptrack/icptrack/flow"
)

// Filter is a parsed, checked and compiled filter. Match is safe for
// concurrent use.
type Filter struct {
	expr     string
	root     *node
	match    pred
	payload  bool
	pushdown Pushdown
}

type pred func(*flow.Operation) bool

// Parse checks expr and compiles it. A filter that cannot be used is an
// *Error, which says where.
func Parse(expr string) (*Filter, error) {
	root, perr := parse(expr)
	if perr != nil {
		return nil, perr
	}
	f := &Filter{expr: expr, root: root, match: compile(root)}
	f.payload = usesField(root, "payload")
	f.pushdown = pushdownOf(root)
	return f, nil
}

// Match reports whether op passes the filter.
func (f *Filter) Match(op *flow.Operation) bool { return f.match(op) }

// String is the expression as written.
func (f *Filter) String() string { return f.expr }

// UsesPayload reports whether the filter reads the payload, which only
// payload capture (--payload) provides.
func (f *Filter) UsesPayload() bool { return f.payload }

// Pushdown is the part of the filter the kernel can select on: a
// necessary condition, so an operation it refuses the filter refuses too.
func (f *Filter) Pushdown() Pushdown { return f.pushdown }

func usesField(n *node, name string) bool {
	if n == nil {
		return false
	}
	if n.kind == nPred {
		return n.field.name == name
	}
	return usesField(n.left, name) || usesField(n.right, name)
}
