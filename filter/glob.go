package filter

import (
	"errors"
	"strings"
	"unicode/utf8"
)

// A glob is matched against the whole value: * is any run of characters
// (/ included: endpoints are paths, and a path's * should reach into
// them), ? one character, [abc], [a-z] and [^a-z] a class, \ makes the next
// character literal. On payload a character is a byte.
type globKind uint8

const (
	gLit globKind = iota
	gOne
	gStar
	gClass
)

type globItem struct {
	kind   globKind
	lit    string
	ranges []rune // pairs: lo, hi
	negate bool
}

func (it *globItem) inClass(r rune) bool {
	for i := 0; i+1 < len(it.ranges); i += 2 {
		if r >= it.ranges[i] && r <= it.ranges[i+1] {
			return !it.negate
		}
	}
	return it.negate
}

func checkGlob(p string) error {
	_, err := compileGlob(p)
	return err
}

func compileGlob(p string) ([]globItem, error) {
	var items []globItem
	var lit strings.Builder
	flush := func() {
		if lit.Len() > 0 {
			items = append(items, globItem{kind: gLit, lit: lit.String()})
			lit.Reset()
		}
	}
	for i := 0; i < len(p); {
		c := p[i]
		switch c {
		case '\\':
			if i+1 >= len(p) {
				return nil, errors.New(`it ends with \: write \\ for a backslash`)
			}
			_, n := utf8.DecodeRuneInString(p[i+1:])
			lit.WriteString(p[i+1 : i+1+n])
			i += 1 + n
		case '*':
			flush()
			if len(items) == 0 || items[len(items)-1].kind != gStar {
				items = append(items, globItem{kind: gStar})
			}
			i++
		case '?':
			flush()
			items = append(items, globItem{kind: gOne})
			i++
		case '[':
			flush()
			it := globItem{kind: gClass}
			j := i + 1
			if j < len(p) && (p[j] == '^' || p[j] == '!') {
				it.negate = true
				j++
			}
			first := true
			for {
				if j >= len(p) {
					return nil, errors.New("a [ is not closed by ]")
				}
				if p[j] == ']' && !first {
					j++
					break
				}
				first = false
				lo, n := utf8.DecodeRuneInString(p[j:])
				if lo == '\\' && j+1 < len(p) {
					j++
					lo, n = utf8.DecodeRuneInString(p[j:])
				}
				j += n
				hi := lo
				if j+1 < len(p) && p[j] == '-' && p[j+1] != ']' {
					j++
					hi, n = utf8.DecodeRuneInString(p[j:])
					j += n
					if hi < lo {
						return nil, errors.New("a range in [] runs backwards")
					}
				}
				it.ranges = append(it.ranges, lo, hi)
			}
			items = append(items, it)
			i = j
		default:
			lit.WriteByte(c)
			i++
		}
	}
	flush()
	return items, nil
}

type text interface{ ~string | ~[]byte }

func decodeString(s string) (rune, int) { return utf8.DecodeRuneInString(s) }
func decodeBytes(b []byte) (rune, int) {
	if len(b) == 0 {
		return utf8.RuneError, 0
	}
	return rune(b[0]), 1
}

// globMatch matches s against items: a greedy walk that, on a mismatch,
// lets the last * take one more character and tries again.
func globMatch[T text](items []globItem, s T, decode func(T) (rune, int)) bool {
	i, j := 0, 0
	starI, starJ := -1, 0
	for {
		if i < len(items) {
			it := &items[i]
			switch it.kind {
			case gStar:
				starI, starJ = i, j
				i++
				continue
			case gLit:
				if hasPrefixAt(s, j, it.lit) {
					i++
					j += len(it.lit)
					continue
				}
			case gOne:
				if j < len(s) {
					_, n := decode(s[j:])
					i++
					j += n
					continue
				}
			case gClass:
				if j < len(s) {
					r, n := decode(s[j:])
					if it.inClass(r) {
						i++
						j += n
						continue
					}
				}
			}
		} else if j == len(s) {
			return true
		}
		if starI < 0 || starJ >= len(s) {
			return false
		}
		_, n := decode(s[starJ:])
		starJ += n
		i, j = starI+1, starJ
	}
}

func hasPrefixAt[T text](s T, j int, lit string) bool {
	if len(s)-j < len(lit) {
		return false
	}
	for k := 0; k < len(lit); k++ {
		if s[j+k] != lit[k] {
			return false
		}
	}
	return true
}
