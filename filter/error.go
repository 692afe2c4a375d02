package filter

import (
	"fmt"
	"strings"
)

// Error is a filter that cannot be used: where it went wrong (Line and Col
// count from 1, Col in characters) and why.
type Error struct {
	Expr      string // the whole expression
	Line, Col int
	Msg       string
	// Suggest is the closest known name to a misspelt field or value.
	Suggest string
}

func (e *Error) Error() string {
	s := fmt.Sprintf("filter %d:%d: %s", e.Line, e.Col, e.Msg)
	if e.Suggest != "" {
		s += fmt.Sprintf(" (did you mean %s?)", e.Suggest)
	}
	return s
}

// Caret renders the message, the line of the expression it is about, and a
// caret under the column, for a terminal.
func (e *Error) Caret() string {
	lines := strings.Split(e.Expr, "\n")
	line := ""
	if e.Line >= 1 && e.Line <= len(lines) {
		line = lines[e.Line-1]
	}
	// Tabs stay tabs so that the caret lines up under them.
	pad := []rune(line)
	if e.Col-1 < len(pad) {
		pad = pad[:e.Col-1]
	}
	var b strings.Builder
	for _, r := range pad {
		if r == '\t' {
			b.WriteRune('\t')
		} else {
			b.WriteByte(' ')
		}
	}
	for n := len(pad); n < e.Col-1; n++ {
		b.WriteByte(' ')
	}
	return e.Error() + "\n  " + line + "\n  " + b.String() + "^"
}

// closest returns the candidate nearest to s by edit distance, when it is
// near enough to be a misspelling of it.
func closest(s string, candidates []string) string {
	best, bestD := "", 1<<30
	for _, c := range candidates {
		if d := editDistance(strings.ToLower(s), strings.ToLower(c)); d < bestD {
			best, bestD = c, d
		}
	}
	limit := 2
	if len(s) <= 3 {
		limit = 1
	}
	if bestD > limit && !(len(s) >= 3 && strings.HasPrefix(best, s)) {
		return ""
	}
	return best
}

// editDistance counts the insertions, deletions, substitutions and swaps
// of neighbours that turn a into b (optimal string alignment).
func editDistance(a, b string) int {
	ra, rb := []rune(a), []rune(b)
	d := make([][]int, len(ra)+1)
	for i := range d {
		d[i] = make([]int, len(rb)+1)
		d[i][0] = i
	}
	for j := range d[0] {
		d[0][j] = j
	}
	for i := 1; i <= len(ra); i++ {
		for j := 1; j <= len(rb); j++ {
			cost := 1
			if ra[i-1] == rb[j-1] {
				cost = 0
			}
			d[i][j] = min(d[i-1][j]+1, d[i][j-1]+1, d[i-1][j-1]+cost)
			if i > 1 && j > 1 && ra[i-1] == rb[j-2] && ra[i-2] == rb[j-1] {
				d[i][j] = min(d[i][j], d[i-2][j-2]+1)
			}
		}
	}
	return d[len(ra)][len(rb)]
}
