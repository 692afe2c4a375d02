package filter

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/icptrack/icptrack/flow"
)

func FuzzParse(f *testing.F) {
	for _, e := range examples {
		f.Add(e)
	}
	for _, e := range []string{
		`comm == x and pdi == 3`, `mechanism == unix_stram`, `pid contains "x"`, `bytes > 1ms`,
		`endpoint matches "a(b"`, `comm glob "[a-"`, `(pid == 1`, `comm == "x`, "pid == 1 and\n cmm == x",
		`links contains 0000000000000001`, `peers contains 3`, `payload glob "G?T*[a-z]\\*"`,
		`time > "2026-12-05T09:59:59Z"`, `not not blocked`, `error in (EAGAIN, errno_600)`,
	} {
		f.Add(e)
	}
	full := nginxGet()
	full.Links, full.Peers, full.Error, full.Signal = []flow.OpID{1}, []uint32{3}, "EPIPE", "SIGTERM"
	full.Count, full.Busy, full.Peer = 2, time.Millisecond, flow.Peer{PID: 9, Comm: "p"}
	full.QueueDepth, full.HasMessageType, full.CgroupID, full.ContainerID = 3, true, 4, "c"
	ops := []*flow.Operation{nginxGet(), {}, full, {Payload: []byte{0xff, 0, 'G'}, PayloadCaptured: true}}
	f.Fuzz(func(t *testing.T, expr string) {
		flt, err := Parse(expr)
		if err != nil {
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("Parse(%q) = %v: not an *Error", expr, err)
			}
			if e.Line < 1 || e.Col < 1 || e.Line > strings.Count(expr, "\n")+1 {
				t.Fatalf("Parse(%q): error at %d:%d, outside the expression", expr, e.Line, e.Col)
			}
			_ = e.Caret()
			return
		}
		p := flt.Pushdown()
		for _, op := range ops {
			if flt.Match(op) && !p.Accepts(op) {
				t.Fatalf("%q accepts %+v but its pushdown %+v refuses it", expr, op, p)
			}
		}
	})
}
