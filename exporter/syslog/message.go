package syslog

import (
	"strconv"
	"time"
	"unicode/utf8"
)

// PEN is the private enterprise number in icptrack's SD-IDs: 32473, the
// one IANA set aside for documentation (RFC 5612), as icptrack has none
// of its own. A receiver may match on the names ipc@32473,
// drop@32473, ratelimit@32473 and checkpoint@32473.
const PEN = "32473"

const appName = "icptrack"

// message is one syslog message before it is encoded.
type message struct {
	severity int
	time     time.Time
	procID   uint32 // 0: none
	msgID    string
	sdID     string // the one SD-ELEMENT's id, when there are params
	params   []param
	text     string // MSG, raw: encode makes it visible
}

type param struct{ name, value string }

// encoder writes messages as RFC 5424 text.
type encoder struct {
	facility int
	hostname string // already valid: printable US-ASCII
	// maxDatagram, when set, is the most a message may take: a longer
	// one is cut (truncate).
	maxDatagram int
}

// valueCap is how much of each SD-PARAM value a message cut to fit a
// datagram keeps, so that every field still fits after the header.
const valueCap = 64

// encode appends m, in full or, if it does not fit a datagram, cut: its
// values capped at valueCap and its MSG shortened. truncated says which.
func (e *encoder) encode(b []byte, m *message) (out []byte, truncated bool) {
	start := len(b)
	b, _ = e.appendMessage(b, m, 0)
	if e.maxDatagram == 0 || len(b)-start <= e.maxDatagram {
		return b, false
	}
	b, msgAt := e.appendMessage(b[:start], m, valueCap)
	if msgAt-start > e.maxDatagram {
		// Even capped, the fields do not fit: send the header and MSG.
		short := *m
		short.params = nil
		b, msgAt = e.appendMessage(b[:start], &short, 0)
	}
	if len(b)-start <= e.maxDatagram {
		return b, true
	}
	cut := start + e.maxDatagram
	for cut > msgAt && !utf8.RuneStart(b[cut]) {
		cut--
	}
	if cut <= msgAt {
		cut = msgAt - 1 // no room for any of MSG: drop the space before it too
	}
	return b[:cut], true
}

// appendMessage appends m with SD-PARAM values cut at capValue bytes (0:
// whole), and says where MSG starts (len(b) when there is none).
func (e *encoder) appendMessage(b []byte, m *message, capValue int) ([]byte, int) {
	b = append(b, '<')
	b = strconv.AppendInt(b, int64(e.facility*8+m.severity), 10)
	b = append(b, ">1 "...)
	if m.time.IsZero() {
		b = append(b, '-')
	} else {
		// RFC 5424 allows at most six digits of a second.
		b = m.time.UTC().AppendFormat(b, "2006-01-02T15:04:05.000000Z")
	}
	b = append(b, ' ')
	b = append(b, e.hostname...)
	b = append(b, ' ')
	b = append(b, appName...)
	b = append(b, ' ')
	if m.procID == 0 {
		b = append(b, '-')
	} else {
		b = strconv.AppendUint(b, uint64(m.procID), 10)
	}
	b = append(b, ' ')
	b = append(b, m.msgID...)
	b = append(b, ' ')
	if len(m.params) == 0 {
		b = append(b, '-')
	} else {
		b = append(b, '[')
		b = append(b, m.sdID...)
		b = append(b, '@')
		b = append(b, PEN...)
		for _, p := range m.params {
			b = append(b, ' ')
			b = append(b, p.name...)
			b = append(b, '=', '"')
			b = appendParamValue(b, p.value, capValue)
			b = append(b, '"')
		}
		b = append(b, ']')
	}
	if m.text == "" {
		return b, len(b)
	}
	b = append(b, ' ')
	msgAt := len(b)
	return appendVisible(b, m.text), msgAt
}

const hexDigits = "0123456789abcdef"

// appendVisible writes s with control characters and bytes that are not
// UTF-8 as \xNN, as the text format does, so that a process name or path
// can neither break a line in the file the receiver writes nor make the
// message invalid UTF-8.
func appendVisible(b []byte, s string) []byte {
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		if (r == utf8.RuneError && size == 1) || r < 0x20 || r == 0x7f {
			b = append(b, '\\', 'x', hexDigits[s[i]>>4], hexDigits[s[i]&0xf])
		} else {
			b = append(b, s[i:i+size]...)
		}
		i += size
	}
	return b
}

// appendParamValue writes s as an SD-PARAM value: visible as in
// appendVisible, then escaped as RFC 5424 section 6.3.3 asks, with a
// backslash before each '"', '\' and ']' (so the \ of a \xNN becomes \\).
// With capValue set, it stops after that many bytes of s and adds "…".
func appendParamValue(b []byte, s string, capValue int) []byte {
	for i := 0; i < len(s); {
		if capValue > 0 && i >= capValue {
			return append(b, "…"...)
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case (r == utf8.RuneError && size == 1) || r < 0x20 || r == 0x7f:
			b = append(b, '\\', '\\', 'x', hexDigits[s[i]>>4], hexDigits[s[i]&0xf])
		case r == '"' || r == '\\' || r == ']':
			b = append(b, '\\', byte(r))
		default:
			b = append(b, s[i:i+size]...)
		}
		i += size
	}
	return b
}

// validName makes s a valid HOSTNAME or SD-NAME: printable US-ASCII
// without space, '=', ']' or '"', at most max characters; "-" if empty.
func validName(s string, max int) string {
	b := make([]byte, 0, len(s))
	for i := 0; i < len(s) && len(b) < max; i++ {
		c := s[i]
		if c <= 32 || c >= 127 || c == '=' || c == ']' || c == '"' {
			c = '_'
		}
		b = append(b, c)
	}
	if len(b) == 0 {
		return "-"
	}
	return string(b)
}
