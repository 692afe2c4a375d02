package filter

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/icptrack/icptrack/flow"
)

// The four examples.
var examples = []string{
	`comm glob "nginx*" and (mechanism == unix_stream or bytes > 4096) and payload contains "GET"`,
	`pid in (1234, 5678) and not error == EAGAIN`,
	`endpoint matches "^/run/.*\.sock$" and duration > 1ms`,
	`peer_comm == postgres and op == receive and blocked`,
}

// nginxGet matches the first example.
func nginxGet() *flow.Operation {
	return &flow.Operation{
		ID: 0x00000000000000ab, Time: time.Date(2026, 12, 5, 10, 0, 0, 0, time.UTC),
		Duration: 2 * time.Millisecond, PID: 1234, TID: 1235, PPID: 1, Comm: "nginx-worker",
		Mechanism: flow.UnixStream, Op: flow.Send, Syscall: "write", Channel: "unix:1:2",
		Endpoint: "/run/app.sock", Bytes: 300, QueueDepth: -1,
		Payload: []byte("GET /index.html HTTP/1.1\r\n"), PayloadCaptured: true,
	}
}

func mustParse(t testing.TB, expr string) *Filter {
	t.Helper()
	f, err := Parse(expr)
	if err != nil {
		var e *Error
		if errors.As(err, &e) {
			t.Fatalf("Parse(%q): %s", expr, e.Caret())
		}
		t.Fatalf("Parse(%q): %v", expr, err)
	}
	return f
}

func TestExamplesMatchWhatTheySay(t *testing.T) {
	op := nginxGet()
	pg := &flow.Operation{PID: 77, Comm: "app", Mechanism: flow.TCP, Op: flow.Receive, Blocked: true,
		Peer: flow.Peer{PID: 90, Comm: "postgres"}, QueueDepth: -1}
	eagain := &flow.Operation{PID: 5678, Comm: "x", Mechanism: flow.Pipe, Op: flow.Receive, Error: "EAGAIN", QueueDepth: -1}
	epipe := &flow.Operation{PID: 5678, Comm: "x", Mechanism: flow.Pipe, Op: flow.Send, Error: "EPIPE", QueueDepth: -1}
	cases := []struct {
		expr string
		op   *flow.Operation
		want bool
	}{
		{examples[0], op, true},
		{examples[1], op, true}, // pid 1234, no error
		{examples[1], eagain, false},
		{examples[1], epipe, true},
		{examples[2], op, true},
		{examples[3], pg, true},
		{examples[3], op, false},
	}
	for _, c := range cases {
		if got := mustParse(t, c.expr).Match(c.op); got != c.want {
			t.Errorf("%s on %+v = %v, want %v", c.expr, c.op, got, c.want)
		}
	}
	// Each condition of the first example can refuse on its own.
	for _, change := range []func(*flow.Operation){
		func(o *flow.Operation) { o.Comm = "apache" },
		func(o *flow.Operation) { o.Mechanism = flow.Pipe },
		func(o *flow.Operation) { o.Payload = []byte("POST /") },
		func(o *flow.Operation) { o.PayloadCaptured = false },
	} {
		o := nginxGet()
		change(o)
		if mustParse(t, examples[0]).Match(o) {
			t.Errorf("%s matched %+v", examples[0], o)
		}
	}
	o := nginxGet()
	o.Mechanism, o.Bytes = flow.Pipe, 8192
	if !mustParse(t, examples[0]).Match(o) {
		t.Errorf("bytes > 4096 did not stand in for the mechanism")
	}
}

func TestOperatorsPerType(t *testing.T) {
	op := nginxGet()
	op.Links = []flow.OpID{0x10, 0x20}
	op.Peers = []uint32{40, 41}
	op.Count, op.Busy = 3, 500*time.Microsecond
	op.CgroupID, op.ContainerID = 99, "abc123"
	cases := map[string]bool{
		`pid == 1234`: true, `pid != 1234`: false, `pid < 1235`: true, `pid <= 1233`: false,
		`pid > 1233`: true, `pid >= 1235`: false, `pid in (1, 1234)`: true, `pid in (1, 2)`: false,
		`pid == 0x4d2`: true, `tid == 1235`: true, `ppid == 1`: true,
		`bytes == 300`: true, `bytes < 1KiB`: true, `bytes < 300B`: false, `bytes >= 1K`: false,
		`duration > 1ms`: true, `duration > 2ms`: false, `duration == 2ms`: true, `duration_ns == 2000000`: true,
		`time > "2026-12-05T09:59:59Z"`: true, `time < "2026-12-05T10:00:00Z"`: false,
		`id == 00000000000000ab`: true, `id != 00000000000000ab`: false,
		`comm == nginx-worker`: true, `comm == "nginx"`: false, `comm != nginx`: true,
		`comm contains work`: true, `comm matches "^ng.*r$"`: true, `comm matches "^x"`: false,
		`comm glob "nginx*"`: true, `comm glob "*worker"`: true, `comm glob "*x-w*"`: true,
		`comm glob "ngin?-worker"`: true, `comm glob "[a-n]ginx*"`: true, `comm glob "[^n]ginx*"`: false,
		`comm glob "nginx"`: false, `comm glob "*"`: true, `comm in (a, nginx-worker)`: true,
		`endpoint glob "/run/*.sock"`: true, `endpoint glob "/run/*/x"`: false,
		`mechanism == unix_stream`: true, `mechanism != unix_stream`: false,
		`mechanism in (pipe, unix_stream)`: true, `mechanism in (pipe, fifo)`: false,
		`op == send`: true, `op in (receive)`: false,
		`syscall == write`: true, `channel == "unix:1:2"`: true,
		`blocked`: false, `not blocked`: true, `blocked == false`: true, `blocked != false`: false,
		`payload contains "GET"`: true, `payload glob "GET *"`: true, `payload glob "G?T *"`: true,
		`payload matches "HTTP/1\\.[01]"`: true, `payload == "GET"`: false, `payload != "GET"`: true,
		`payload`: true, `payload_truncated`: false, `payload_truncated == false`: true,
		`links contains 0000000000000020`: true, `links contains 0000000000000030`: false, `links`: true,
		`peers contains 41`: true, `peers contains 42`: false, `peers`: true,
		`count == 3`: true, `busy_ns == 500000`: true, `busy_ns`: true,
		`cgroup_id == 99`: true, `container_id == abc123`: true, `container_id`: true,
		`not pid == 1234`: false, `pid == 1 or pid == 1234`: true, `pid == 1 and pid == 1234`: false,
		`not (pid == 1 or comm == x)`: true, `NOT pid == 1 AND comm == nginx-worker`: true,
		"pid == 1234\n  and comm == nginx-worker": true,
	}
	for expr, want := range cases {
		if got := mustParse(t, expr).Match(op); got != want {
			t.Errorf("%s = %v, want %v", expr, got, want)
		}
	}
}

// An absent optional field equals nothing: == and the orderings and
// contains fail, != holds, and the bare field is false.
func TestAbsentFields(t *testing.T) {
	op := &flow.Operation{PID: 1, Comm: "a", Mechanism: flow.Pipe, Op: flow.Send, QueueDepth: -1}
	cases := map[string]bool{
		`error == EAGAIN`: false, `error != EAGAIN`: true, `not error == EAGAIN`: true,
		`error`: false, `not error`: true, `error contains E`: false, `error in (EAGAIN, EPIPE)`: false,
		`peer_pid == 0`: false, `peer_pid != 0`: true, `peer_comm`: false, `peer_comm != x`: true,
		`queue_depth >= 0`: false, `queue_depth < 0`: false, `queue_depth`: false,
		`message_type == 0`: false, `payload contains ""`: false, `payload`: false,
		`payload_truncated == false`: false, `payload_truncated != true`: true,
		`cgroup_id == 0`: false, `exe == ""`: false, `busy_ns == 0`: false, `count == 1`: true,
		`links`: false, `peers contains 1`: false, `signal == SIGTERM`: false, `signal != SIGTERM`: true,
	}
	for expr, want := range cases {
		if got := mustParse(t, expr).Match(op); got != want {
			t.Errorf("%s on an operation without the field = %v, want %v", expr, got, want)
		}
	}
	// A kernel-raised signal has a peer: pid 0, comm kernel.
	sig := &flow.Operation{Mechanism: flow.Signal, Op: flow.Receive, Peer: flow.Kernel, Signal: "SIGSEGV", QueueDepth: -1}
	for expr, want := range map[string]bool{`peer_pid == 0`: true, `peer_comm == kernel`: true, `signal == SIGSEGV`: true} {
		if got := mustParse(t, expr).Match(sig); got != want {
			t.Errorf("%s on a kernel signal = %v, want %v", expr, got, want)
		}
	}
}

func TestErrorsSayWhereAndWhat(t *testing.T) {
	cases := []struct {
		expr      string
		line, col int
		msg       string // a part of the message
		suggest   string
	}{
		{`comm == x and pdi == 3`, 1, 15, `unknown field "pdi"`, "pid"},
		{`mechanism == unix_stram`, 1, 14, `unknown mechanism "unix_stram"`, "unix_stream"},
		{`op == recieve`, 1, 7, `unknown operation`, "receive"},
		{`error == EAGIAN`, 1, 10, `unknown errno name`, "EAGAIN"},
		{`signal == SIGTREM`, 1, 11, `unknown signal name`, "SIGTERM"},
		{`pid contains "x"`, 1, 5, "pid is a number: it takes", ""},
		{`bytes > 1ms`, 1, 9, "bytes takes a size", ""},
		{`bytes > 0.3KB`, 1, 9, "bytes takes a size", ""},
		{`duration > 1000`, 1, 12, "duration takes a duration", ""},
		{`duration_ns > 1ms`, 1, 15, "write duration > 1ms", ""},
		{`endpoint matches "a(b"`, 1, 18, "bad regular expression", ""},
		{`comm glob "[a-"`, 1, 11, "bad glob", ""},
		{`comm`, 1, 1, "not a condition", ""},
		{`blocked == maybe`, 1, 12, "true or false", ""},
		{`pid in 1, 2`, 1, 8, "expected ( after in", ""},
		{`pid in (1 2)`, 1, 11, "expected , or )", ""},
		{`(pid == 1`, 1, 10, "expected ) to close the ( at 1:1", ""},
		{`pid == 1 pid == 2`, 1, 10, "expected and, or", ""},
		{`pid = 1`, 1, 5, "expected == or !=", ""},
		{`comm == "x`, 1, 9, "unterminated string", ""},
		{`comm == and`, 1, 9, "keyword and", ""},
		{"", 1, 1, "empty filter", ""},
		{"pid == 1 and\n   cmm == x", 2, 4, `unknown field "cmm"`, "comm"},
		{`links contains 12`, 1, 16, "operation id", ""},
		{`peers > 3`, 1, 7, "peers is a list of pids", ""},
		{`payload > 3`, 1, 9, "payload is a bytes", ""},
		{`zzzzzz == 1`, 1, 1, `unknown field "zzzzzz"`, ""},
	}
	for _, c := range cases {
		_, err := Parse(c.expr)
		var e *Error
		if !errors.As(err, &e) {
			t.Errorf("Parse(%q) = %v, want an *Error", c.expr, err)
			continue
		}
		if e.Line != c.line || e.Col != c.col || !strings.Contains(e.Msg, c.msg) || e.Suggest != c.suggest {
			t.Errorf("Parse(%q) = %d:%d %q (suggest %q), want %d:%d containing %q (suggest %q)",
				c.expr, e.Line, e.Col, e.Msg, e.Suggest, c.line, c.col, c.msg, c.suggest)
		}
	}
}

func TestCaretPointsAtTheMistake(t *testing.T) {
	_, err := Parse("pid == 1 and\n\tmechanism == unix_stram")
	e := err.(*Error)
	want := "filter 2:15: unknown mechanism \"unix_stram\": use one of pipe, fifo, unix_stream, unix_dgram, " +
		"unix_seqpacket, tcp, udp, posix_mq, sysv_mq, sysv_shm, posix_shm, memfd, signal (did you mean unix_stream?)\n" +
		"  \tmechanism == unix_stram\n" +
		"  \t             ^"
	if got := e.Caret(); got != want {
		t.Errorf("Caret() =\n%s\nwant\n%s", got, want)
	}
}

func TestUsesPayload(t *testing.T) {
	for expr, want := range map[string]bool{
		examples[0]: true, examples[1]: false, `not payload`: true, `payload_truncated`: false,
		`pid == 1 or (comm == x and payload matches "a")`: true,
	} {
		if got := mustParse(t, expr).UsesPayload(); got != want {
			t.Errorf("UsesPayload(%s) = %v, want %v", expr, got, want)
		}
	}
}

func TestPushdownTakesTopLevelSelectors(t *testing.T) {
	p := mustParse(t, `pid in (1234, 5678) and comm == nginx and (mechanism == pipe or mechanism == fifo) and `+
		`container_id == c1 and cgroup_id in (7) and tid == 9 and bytes > 3`).Pushdown()
	if len(p.PIDs) != 2 || p.PIDs[0] != 1234 || p.PIDs[1] != 5678 || len(p.Comms) != 1 || p.Comms[0] != "nginx" ||
		p.Mechanisms != flow.SetOf(flow.Pipe, flow.FIFO) || len(p.ContainerIDs) != 1 || len(p.CgroupIDs) != 1 ||
		p.CgroupIDs[0] != 7 || len(p.TIDs) != 1 || p.TIDs[0] != 9 {
		t.Errorf("pushdown = %+v", p)
	}
	// Nothing under or, not, or on another operator can be pushed.
	for _, expr := range []string{
		`pid == 1 or comm == x`, `not pid == 1`, `pid != 1`, `pid > 1`, `comm glob "x*"`,
		`(pid == 1 and comm == x) or bytes > 1`, `mechanism == pipe or pid == 1`, `not (mechanism == pipe and pid == 1)`,
	} {
		if p := mustParse(t, expr).Pushdown(); !p.Empty() {
			t.Errorf("%s pushed down %+v", expr, p)
		}
	}
}
