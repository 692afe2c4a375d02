package filter

import (
	"strings"
	"unicode"
	"unicode/utf8"
)

type tokKind uint8

const (
	tEOF tokKind = iota
	tWord
	tString
	tLParen
	tRParen
	tComma
	tCmp // == != < <= > >=
)

type token struct {
	kind      tokKind
	text      string // a string's text is unquoted
	line, col int
}

// lex splits expr into tokens. A bare word runs to the next space,
// parenthesis, comma, quote or comparison sign, so that sizes (4KiB),
// durations (1ms), paths and errno names need no quotes.
func lex(expr string) ([]token, *Error) {
	var toks []token
	line, col := 1, 1
	i := 0
	errAt := func(l, c int, msg string) *Error {
		return &Error{Expr: expr, Line: l, Col: c, Msg: msg}
	}
	advance := func(n int) {
		for _, r := range expr[i : i+n] {
			if r == '\n' {
				line, col = line+1, 1
			} else {
				col++
			}
		}
		i += n
	}
	for i < len(expr) {
		r, size := utf8.DecodeRuneInString(expr[i:])
		if unicode.IsSpace(r) {
			advance(size)
			continue
		}
		l, c := line, col
		switch {
		case r == '(':
			toks = append(toks, token{tLParen, "(", l, c})
			advance(1)
		case r == ')':
			toks = append(toks, token{tRParen, ")", l, c})
			advance(1)
		case r == ',':
			toks = append(toks, token{tComma, ",", l, c})
			advance(1)
		case r == '=' || r == '!' || r == '<' || r == '>':
			op := expr[i : i+1]
			if i+1 < len(expr) && expr[i+1] == '=' {
				op = expr[i : i+2]
			}
			if op == "=" || op == "!" {
				return nil, errAt(l, c, "expected == or !=, found "+op)
			}
			toks = append(toks, token{tCmp, op, l, c})
			advance(len(op))
		case r == '"' || r == '\'':
			// "…" knows \" and \\ and keeps any other backslash as it is,
			// so that a regular expression's \. needs no doubling; '…' is
			// taken as written.
			var b strings.Builder
			j := i + 1
			closed := false
			for j < len(expr) {
				ch := expr[j]
				if ch == byte(r) {
					closed = true
					break
				}
				if r == '"' && ch == '\\' && j+1 < len(expr) && (expr[j+1] == '"' || expr[j+1] == '\\') {
					b.WriteByte(expr[j+1])
					j += 2
					continue
				}
				b.WriteByte(ch)
				j++
			}
			if !closed {
				return nil, errAt(l, c, "unterminated string: add the closing "+string(r))
			}
			toks = append(toks, token{tString, b.String(), l, c})
			advance(j + 1 - i)
		default:
			j := i
			for j < len(expr) {
				r, size := utf8.DecodeRuneInString(expr[j:])
				if unicode.IsSpace(r) || strings.ContainsRune("(),\"'=!<>", r) {
					break
				}
				j += size
			}
			toks = append(toks, token{tWord, expr[i:j], l, c})
			advance(j - i)
		}
	}
	return append(toks, token{tEOF, "", line, col}), nil
}
