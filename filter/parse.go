package filter

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// node is the parsed expression, checked: every value is already of its
// field's type.
type node struct {
	kind        nodeKind
	left, right *node // and, or; not uses left
	field       *fieldDef
	op          string // ==, !=, <, <=, >, >=, contains, matches, glob, in; "" for a bare field
	nums        []int64
	strs        []string
	re          *regexp.Regexp
	line, col   int
}

type nodeKind uint8

const (
	nAnd nodeKind = iota
	nOr
	nNot
	nPred
)

type parser struct {
	expr string
	toks []token
	pos  int
}

func (p *parser) peek() token { return p.toks[p.pos] }
func (p *parser) next() token { t := p.toks[p.pos]; p.pos++; return t }

func (p *parser) errAt(t token, format string, args ...any) *Error {
	return &Error{Expr: p.expr, Line: t.line, Col: t.col, Msg: fmt.Sprintf(format, args...)}
}

func isWord(t token, w string) bool { return t.kind == tWord && strings.EqualFold(t.text, w) }

func describe(t token) string {
	switch t.kind {
	case tEOF:
		return "the end of the filter"
	case tString:
		return strconv.Quote(t.text)
	}
	return strconv.Quote(t.text)
}

// parse reads expr into a checked tree.
func parse(expr string) (*node, *Error) {
	toks, err := lex(expr)
	if err != nil {
		return nil, err
	}
	p := &parser{expr: expr, toks: toks}
	if p.peek().kind == tEOF {
		return nil, p.errAt(p.peek(), "empty filter: write a condition such as comm == nginx")
	}
	n, err := p.or()
	if err != nil {
		return nil, err
	}
	if t := p.peek(); t.kind != tEOF {
		return nil, p.errAt(t, "expected and, or or the end of the filter, found %s", describe(t))
	}
	return n, nil
}

func (p *parser) or() (*node, *Error) {
	l, err := p.and()
	if err != nil {
		return nil, err
	}
	for isWord(p.peek(), "or") {
		t := p.next()
		r, err := p.and()
		if err != nil {
			return nil, err
		}
		l = &node{kind: nOr, left: l, right: r, line: t.line, col: t.col}
	}
	return l, nil
}

func (p *parser) and() (*node, *Error) {
	l, err := p.unary()
	if err != nil {
		return nil, err
	}
	for isWord(p.peek(), "and") {
		t := p.next()
		r, err := p.unary()
		if err != nil {
			return nil, err
		}
		l = &node{kind: nAnd, left: l, right: r, line: t.line, col: t.col}
	}
	return l, nil
}

func (p *parser) unary() (*node, *Error) {
	t := p.peek()
	if isWord(t, "not") {
		p.next()
		n, err := p.unary()
		if err != nil {
			return nil, err
		}
		return &node{kind: nNot, left: n, line: t.line, col: t.col}, nil
	}
	if t.kind == tLParen {
		p.next()
		n, err := p.or()
		if err != nil {
			return nil, err
		}
		if c := p.peek(); c.kind != tRParen {
			return nil, p.errAt(c, "expected ) to close the ( at %d:%d, found %s", t.line, t.col, describe(c))
		}
		p.next()
		return n, nil
	}
	return p.predicate()
}

var keywords = []string{"and", "or", "not", "in", "contains", "matches", "glob"}

func (p *parser) predicate() (*node, *Error) {
	t := p.next()
	if t.kind != tWord || isKeyword(t.text) {
		return nil, p.errAt(t, "expected a field name, found %s", describe(t))
	}
	f, ok := fieldByName[t.text]
	if !ok {
		e := p.errAt(t, "unknown field %q", t.text)
		e.Suggest = closest(t.text, fieldNames())
		return nil, e
	}
	n := &node{kind: nPred, field: f, line: t.line, col: t.col}
	opTok := p.peek()
	switch {
	case opTok.kind == tCmp:
		n.op = opTok.text
	case opTok.kind == tWord && (isWord(opTok, "contains") || isWord(opTok, "matches") || isWord(opTok, "glob") || isWord(opTok, "in")):
		n.op = strings.ToLower(opTok.text)
	default:
		// A bare field: a boolean's value, or whether an optional field
		// is there.
		if f.kind != kBool && f.has == nil {
			return nil, p.errAt(t, "%s is a %s that every operation has, not a condition: compare it, as in %s",
				f.name, f.kind, example(f))
		}
		return n, nil
	}
	p.next()
	if err := checkOp(p, opTok, f, n.op); err != nil {
		return nil, err
	}
	if n.op == "in" {
		open := p.next()
		if open.kind != tLParen {
			return nil, p.errAt(open, "expected ( after in, as in pid in (1, 2), found %s", describe(open))
		}
		for {
			v := p.next()
			if err := p.value(n, f, v); err != nil {
				return nil, err
			}
			sep := p.next()
			if sep.kind == tRParen {
				break
			}
			if sep.kind != tComma {
				return nil, p.errAt(sep, "expected , or ) in the list after in, found %s", describe(sep))
			}
		}
		return n, nil
	}
	v := p.next()
	if err := p.value(n, f, v); err != nil {
		return nil, err
	}
	return n, nil
}

func isKeyword(s string) bool {
	for _, k := range keywords {
		if strings.EqualFold(s, k) {
			return true
		}
	}
	return false
}

func example(f *fieldDef) string {
	switch f.kind {
	case kString:
		return f.name + ` == "text"`
	case kMechanism:
		return f.name + " == unix_stream"
	case kOp:
		return f.name + " == receive"
	case kDuration:
		return f.name + " > 1ms"
	case kSize:
		return f.name + " > 4KiB"
	case kID:
		return f.name + " == 00000000000000ff"
	case kTime:
		return f.name + ` > "2026-01-02T15:04:05Z"`
	}
	return f.name + " == 1"
}

// operators lists what each kind of field can be compared with.
func operators(k kind) []string {
	switch k {
	case kInt, kSize, kDuration, kNanos, kTime:
		return []string{"==", "!=", "<", "<=", ">", ">=", "in"}
	case kString, kErrno, kSignal:
		return []string{"==", "!=", "contains", "matches", "glob", "in"}
	case kMechanism, kOp, kID:
		return []string{"==", "!=", "in"}
	case kBool:
		return []string{"==", "!="}
	case kIDList, kPIDList:
		return []string{"contains"}
	case kPayload:
		return []string{"==", "!=", "contains", "matches", "glob"}
	}
	return nil
}

func checkOp(p *parser, t token, f *fieldDef, op string) *Error {
	for _, o := range operators(f.kind) {
		if o == op {
			return nil
		}
	}
	return p.errAt(t, "%s is a %s: it takes %s, not %s", f.name, f.kind, strings.Join(operators(f.kind), " "), op)
}

// value checks v against the field and the operator and appends it to n.
func (p *parser) value(n *node, f *fieldDef, v token) *Error {
	if v.kind != tWord && v.kind != tString {
		return p.errAt(v, "expected a value for %s, found %s", f.name, describe(v))
	}
	if v.kind == tWord && isKeyword(v.text) {
		return p.errAt(v, "expected a value for %s, found the keyword %s (quote it to mean the word)", f.name, v.text)
	}
	s := v.text
	bad := func(what string) *Error {
		return p.errAt(v, "%s takes %s, not %q", f.name, what, s)
	}
	switch n.op {
	case "matches":
		re, err := regexp.Compile(s)
		if err != nil {
			return p.errAt(v, "bad regular expression %q: %v", s, strings.TrimPrefix(err.Error(), "error parsing regexp: "))
		}
		n.re = re
		return nil
	case "glob":
		if err := checkGlob(s); err != nil {
			return p.errAt(v, "bad glob %q: %v", s, err)
		}
		n.strs = append(n.strs, s)
		return nil
	case "contains":
		switch f.kind {
		case kIDList:
			id, err := parseID(s)
			if err != nil {
				return bad("an operation id (16 hex digits)")
			}
			n.nums = append(n.nums, id)
		case kPIDList:
			pid, err := strconv.ParseUint(s, 10, 32)
			if err != nil {
				return bad("a pid")
			}
			n.nums = append(n.nums, int64(pid))
		default:
			n.strs = append(n.strs, s)
		}
		return nil
	}
	switch f.kind {
	case kInt, kNanos:
		x, err := strconv.ParseInt(s, 0, 64)
		if err != nil {
			if f.kind == kNanos {
				if _, derr := time.ParseDuration(s); derr == nil {
					return p.errAt(v, "%s takes a number of nanoseconds, not %q: write duration %s %s", f.name, s, n.op, s)
				}
			}
			return bad("a number")
		}
		n.nums = append(n.nums, x)
	case kSize:
		x, err := parseSize(s)
		if err != nil {
			return bad("a size (4096, 4KiB, 1MB)")
		}
		n.nums = append(n.nums, x)
	case kDuration:
		d, err := time.ParseDuration(s)
		if err != nil {
			return bad("a duration (500us, 1ms, 2s)")
		}
		n.nums = append(n.nums, int64(d))
	case kTime:
		t, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			return bad(`an RFC 3339 time ("2026-01-02T15:04:05Z")`)
		}
		n.nums = append(n.nums, t.UnixNano())
	case kID:
		id, err := parseID(s)
		if err != nil {
			return bad("an operation id (16 hex digits)")
		}
		n.nums = append(n.nums, id)
	case kMechanism, kOp:
		names := mechanismValues
		if f.kind == kOp {
			names = opValues
		}
		x, ok := names[s]
		if !ok {
			e := p.errAt(v, "unknown %s %q: use one of %s", f.kind, s, strings.Join(sortedByValue(names), ", "))
			e.Suggest = closest(s, keys(names))
			return e
		}
		n.nums = append(n.nums, x)
	case kErrno:
		if !validErrno(s) {
			e := p.errAt(v, "unknown errno name %q (EAGAIN, EPIPE, …)", s)
			e.Suggest = closest(s, keys(errnoValues))
			return e
		}
		n.strs = append(n.strs, s)
	case kSignal:
		if _, ok := signalValues[s]; !ok {
			e := p.errAt(v, "unknown signal name %q (SIGTERM, SIGRTMIN+3, …)", s)
			e.Suggest = closest(s, keys(signalValues))
			return e
		}
		n.strs = append(n.strs, s)
	case kBool:
		switch strings.ToLower(s) {
		case "true":
			n.nums = append(n.nums, 1)
		case "false":
			n.nums = append(n.nums, 0)
		default:
			return bad("true or false")
		}
	default: // kString, kPayload
		n.strs = append(n.strs, s)
	}
	return nil
}

func sortedByValue(m map[string]int64) []string {
	out := make([]string, len(m))
	for k, v := range m {
		out[v-1] = k
	}
	return out
}

func parseID(s string) (int64, error) {
	if len(s) != 16 {
		return 0, fmt.Errorf("not 16 hex digits")
	}
	x, err := strconv.ParseUint(s, 16, 64)
	return int64(x), err
}

// parseSize reads 4096, 4K, 4KiB (1024), 4KB (1000), and so on to G; B
// may end any of them.
func parseSize(s string) (int64, error) {
	i := 0
	for i < len(s) && s[i] >= '0' && s[i] <= '9' {
		i++
	}
	if i == 0 {
		return 0, fmt.Errorf("no number")
	}
	x, err := strconv.ParseInt(s[:i], 10, 64)
	if err != nil {
		return 0, err
	}
	mult := int64(1)
	switch s[i:] {
	case "", "B":
	case "K", "KiB":
		mult = 1 << 10
	case "M", "MiB":
		mult = 1 << 20
	case "G", "GiB":
		mult = 1 << 30
	case "KB", "kB":
		mult = 1e3
	case "MB":
		mult = 1e6
	case "GB":
		mult = 1e9
	default:
		return 0, fmt.Errorf("unknown unit %q", s[i:])
	}
	if x > (1<<63-1)/mult {
		return 0, fmt.Errorf("too large")
	}
	return x * mult, nil
}
