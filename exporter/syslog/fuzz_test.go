package syslog

import (
	"bytes"
	"errors"
	"strings"
	"testing"
	"unicode/utf8"
)

// FuzzEncode feeds names a process chooses (its comm, its socket paths)
// to the encoder: whatever they hold, the message is valid UTF-8 with no
// control character, fits a datagram when it must, and its structured
// data parses back, by RFC 5424's rules, to the names as the text format
// shows them.
func FuzzEncode(f *testing.F) {
	f.Add("writer", "pipe:[1]", false)
	f.Add("x\"] evil=\"1\\\n\xff", "/tmp/a]b\"c\\d\ne\xfe.sock", true)
	f.Add(strings.Repeat("é]", 40), strings.Repeat("\\\"", 2000), true)
	f.Fuzz(func(t *testing.T, comm, endpoint string, datagram bool) {
		e := encoder{facility: 3, hostname: "h"}
		if datagram {
			e.maxDatagram = minDatagram
		}
		m := operationMessage(failedOp(1, comm, endpoint))
		b, truncated := e.encode(nil, &m)
		if !utf8.Valid(b) {
			t.Fatalf("not UTF-8: %q", b)
		}
		for _, c := range b {
			if c < 0x20 || c == 0x7f {
				t.Fatalf("control character %#x in %q", c, b)
			}
		}
		if datagram && len(b) > e.maxDatagram {
			t.Fatalf("%d bytes for a datagram of %d", len(b), e.maxDatagram)
		}
		sd, err := parseSD(b)
		if errors.Is(err, errNoSD) && truncated {
			return // cut to the header and MSG
		}
		if err != nil {
			t.Fatalf("structured data does not parse: %v: %q", err, b)
		}
		if !truncated {
			if got, want := sd["comm"], string(appendVisible(nil, comm)); got != want {
				t.Fatalf("comm parsed back as %q, want %q", got, want)
			}
			if got, want := sd["endpoint"], string(appendVisible(nil, endpoint)); endpoint != "" && got != want {
				t.Fatalf("endpoint parsed back as %q, want %q", got, want)
			}
		}
		if sd["error"] != "EPIPE" || sd["id"] != "6d2bdcefbdf7416d" {
			t.Fatalf("fields lost: %v", sd)
		}
	})
}

var errNoSD = errors.New("no structured data")

// parseSD reads the one SD-ELEMENT of a message icptrack wrote, as a
// receiver would: after six header fields, [id name="value" ...] with
// \", \\ and \] as escapes.
func parseSD(b []byte) (map[string]string, error) {
	for range 6 {
		i := bytes.IndexByte(b, ' ')
		if i < 0 {
			return nil, errors.New("short header")
		}
		b = b[i+1:]
	}
	if len(b) > 0 && b[0] == '-' {
		return nil, errNoSD
	}
	if len(b) == 0 || b[0] != '[' {
		return nil, errors.New("no [")
	}
	i := bytes.IndexAny(b, " ]")
	if i < 0 || string(b[1:i]) != "ipc@"+PEN {
		return nil, errors.New("bad SD-ID")
	}
	b = b[i:]
	out := map[string]string{}
	for len(b) > 0 && b[0] == ' ' {
		eq := bytes.IndexByte(b, '=')
		if eq < 0 || eq+1 >= len(b) || b[eq+1] != '"' {
			return nil, errors.New("bad PARAM-NAME")
		}
		name := string(b[1:eq])
		b = b[eq+2:]
		var v []byte
		for {
			if len(b) == 0 {
				return nil, errors.New("unterminated value")
			}
			c := b[0]
			if c == '"' {
				b = b[1:]
				break
			}
			if c == ']' {
				return nil, errors.New("] not escaped")
			}
			if c == '\\' && len(b) > 1 && (b[1] == '"' || b[1] == '\\' || b[1] == ']') {
				v = append(v, b[1])
				b = b[2:]
				continue
			}
			v = append(v, c)
			b = b[1:]
		}
		out[name] = string(v)
	}
	if len(b) == 0 || b[0] != ']' {
		return nil, errors.New("SD-ELEMENT not closed")
	}
	return out, nil
}
