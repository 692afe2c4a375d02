package syslog

import (
	"errors"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/icptrack/icptrack/flow"
	"github.com/icptrack/icptrack/internal/rsyslogtest"
	"github.com/icptrack/icptrack/internal/testca"
)

// These tests send to a real rsyslogd (internal/rsyslogtest) and check
// what it parsed: the RFC 5424 header fields, and the structured data as
// rsyslog's own parser (mmpstrucdata) decoded it.

const waitMessages = 10 * time.Second

func newSink(t *testing.T, cfg Config) *Sink {
	t.Helper()
	s, err := New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func byMsgID(ms []rsyslogtest.Message, id string) []rsyslogtest.Message {
	var out []rsyslogtest.Message
	for _, m := range ms {
		if m.MsgID == id {
			out = append(out, m)
		}
	}
	return out
}

// tlsServer starts rsyslog with TLS, asking clients for a certificate,
// and returns it and the client's settings.
func tlsServer(t *testing.T) (*rsyslogtest.Server, Config) {
	ca := testca.New(t, "syslog-test")
	cert, key := ca.Issue(t, "server", false, "127.0.0.1", "localhost")
	clientCert, clientKey := ca.Issue(t, "client", true, "icptrack-agent")
	srv := rsyslogtest.Start(t, rsyslogtest.Options{Input: rsyslogtest.TLS, CAFile: ca.File, CertFile: cert, KeyFile: key, ClientAuth: true})
	return srv, Config{URL: srv.URL, CAFile: ca.File, CertFile: clientCert, KeyFile: clientKey}
}

func TestSendsOverEveryTransport(t *testing.T) {
	rsyslogtest.Needs(t)
	host, _ := os.Hostname()
	for _, input := range []string{rsyslogtest.UnixDgram, rsyslogtest.UnixStream, rsyslogtest.UDP, rsyslogtest.TCP, rsyslogtest.TLS} {
		t.Run(input, func(t *testing.T) {
			var srv *rsyslogtest.Server
			cfg := Config{}
			if input == rsyslogtest.TLS {
				srv, cfg = tlsServer(t)
			} else {
				srv = rsyslogtest.Start(t, rsyslogtest.Options{Input: input})
				cfg.URL = srv.URL
			}
			s := newSink(t, cfg)

			failed := failedOp(4242, "writer", "pipe:[5678]")
			ok := failedOp(4243, "reader", "pipe:[5678]")
			ok.Op, ok.Error, ok.Bytes = flow.Receive, "", 5
			s.Add(failed)
			s.Add(ok) // the default filter sends only failures
			s.RecordDrops(time.Now(), "ring_buffer", 7)
			s.Checkpoint("icptrack store checkpoint", map[string]string{"seq": "10", "chain": "9f86d081"})
			s.Tick(time.Now())
			if err := s.Close(); err != nil {
				t.Fatalf("Close: %v", err)
			}
			ms := srv.WaitFor(3, waitMessages)
			if len(ms) != 3 {
				t.Fatalf("rsyslog got %d messages, want the failed operation, the drops and the checkpoint: %+v", len(ms), ms)
			}
			for _, m := range ms {
				if m.App != "icptrack" || m.Hostname != validName(host, 255) {
					t.Errorf("APP-NAME %q HOSTNAME %q, want icptrack and %q", m.App, m.Hostname, host)
				}
			}

			op := byMsgID(ms, "send")
			if len(op) != 1 {
				t.Fatalf("want one send message, got %+v", ms)
			}
			m := op[0]
			if m.Pri != "28" || m.ProcID != "4242" {
				t.Errorf("PRI %s PROCID %s, want 28 (daemon.warning) and the traced pid 4242", m.Pri, m.ProcID)
			}
			if ts, err := time.Parse(time.RFC3339Nano, m.Time); err != nil || !ts.Equal(failed.Time.Truncate(time.Microsecond)) {
				t.Errorf("TIMESTAMP %s (%v), want the operation's %s", m.Time, err, failed.Time)
			}
			want := map[string]string{"id": failed.ID.String(), "mechanism": "pipe", "op": "send", "syscall": "write",
				"channel": "pipe:5678", "endpoint": "pipe:[5678]", "bytes": "0", "comm": "writer", "peer_pid": "4243",
				"peer_comm": "reader", "error": "EPIPE", "duration_ns": "3100"}
			if got := m.Fields["ipc@"+PEN]; !equalMaps(got, want) {
				t.Errorf("structured data as rsyslog parsed it:\n%v\nwant\n%v", got, want)
			}
			if m.Msg != operationLine(failed) {
				t.Errorf("MSG %q, want %q", m.Msg, operationLine(failed))
			}

			drop := byMsgID(ms, "drop")
			if len(drop) != 1 || drop[0].Pri != "29" || !equalMaps(drop[0].Fields["drop@"+PEN], map[string]string{"reason": "ring_buffer", "count": "7"}) {
				t.Errorf("drop notice: %+v, want daemon.notice with reason ring_buffer and count 7", drop)
			}
			cp := byMsgID(ms, "checkpoint")
			if len(cp) != 1 || cp[0].Msg != "icptrack store checkpoint" ||
				!equalMaps(cp[0].Fields["checkpoint@"+PEN], map[string]string{"seq": "10", "chain": "9f86d081"}) {
				t.Errorf("checkpoint: %+v", cp)
			}
			st := s.AllStats()
			if st.Written != 1 || st.Dropped != 0 || st.Lagging != 0 || st.CheckpointsSent != 1 || st.CheckpointsLost != 0 {
				t.Errorf("stats %+v, want 1 written and the checkpoint sent", st)
			}
		})
	}
}

func equalMaps(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range b {
		if got, ok := a[k]; !ok || got != v {
			return false
		}
	}
	return true
}

// A process chooses its own name (prctl) and its socket paths: what it
// puts there must not forge fields or lines.
func TestHostileNamesArriveEscaped(t *testing.T) {
	for _, input := range []string{rsyslogtest.TCP, rsyslogtest.UDP} {
		t.Run(input, func(t *testing.T) {
			srv := rsyslogtest.Start(t, rsyslogtest.Options{Input: input})
			s := newSink(t, Config{URL: srv.URL})
			op := failedOp(77, "x\"] evil=\"1\\\n\xff", "/tmp/a]b\"c\\d\ne\xfe.sock")
			s.Add(op)
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			ms := srv.WaitFor(1, waitMessages)
			if len(ms) != 1 {
				t.Fatalf("got %d messages, want 1: %+v", len(ms), ms)
			}
			m := ms[0]
			// rsyslog decoded one element whose values are the names with
			// the newline and the bytes that are not UTF-8 as \xNN.
			f := m.Fields["ipc@"+PEN]
			if len(m.Fields) != 1 || f["comm"] != `x"] evil="1\\x0a\xff` || f["endpoint"] != `/tmp/a]b"c\d\x0ae\xfe.sock` || f["error"] != "EPIPE" {
				t.Errorf("rsyslog parsed %v", m.Fields)
			}
			if _, forged := f["evil"]; forged {
				t.Error("a name forged a field")
			}
			wantSD := `comm="x\"\] evil=\"1\\\\x0a\\xff"`
			if !strings.Contains(m.SD, wantSD) {
				t.Errorf("STRUCTURED-DATA %s\nwant it to hold %s", m.SD, wantSD)
			}
			wantMsg := `x"] evil="1\\x0a\xff[77] pipe send write /tmp/a]b"c\d\x0ae\xfe.sock 0B → reader[78] 3.1µs EPIPE`
			if m.Msg != wantMsg {
				t.Errorf("MSG %q\nwant %q", m.Msg, wantMsg)
			}
		})
	}
}

func TestCutsLongUDPMessagesAndCountsThem(t *testing.T) {
	srv := rsyslogtest.Start(t, rsyslogtest.Options{Input: rsyslogtest.UDP})
	s := newSink(t, Config{URL: srv.URL})
	s.Add(failedOp(5, "writer", "/run/"+strings.Repeat("long/", 1000)+"app.sock"))
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	ms := srv.WaitFor(1, waitMessages)
	if len(ms) != 1 {
		t.Fatalf("got %d messages, want the cut one", len(ms))
	}
	f := ms[0].Fields["ipc@"+PEN]
	if f["error"] != "EPIPE" || f["endpoint"] != "/run/"+strings.Repeat("long/", 11)+"long…" {
		t.Errorf("the cut message as rsyslog parsed it: %v", f)
	}
	if st := s.AllStats(); st.Truncated != 1 || st.Written != 1 {
		t.Errorf("stats %+v, want 1 written, 1 truncated", st)
	}
}

func TestRateLimitSuppressesAndReportsWhenItLifts(t *testing.T) {
	srv := rsyslogtest.Start(t, rsyslogtest.Options{Input: rsyslogtest.TCP})
	s := newSink(t, Config{URL: srv.URL, RateLimit: 10})
	const n = 200
	for i := range n {
		op := failedOp(100, "flood", "pipe:[1]")
		op.ID = flow.OpID(i + 1)
		s.Add(op)
	}
	st := s.AllStats()
	passed := n - st.Suppressed
	if st.Suppressed < n-12 || passed < 10 {
		t.Fatalf("%d suppressed of %d at a limit of 10 a second, want about %d", st.Suppressed, n, n-10)
	}
	now := time.Now()
	s.Tick(now) // still limited: no report yet
	ms := srv.WaitFor(int(passed), waitMessages)
	time.Sleep(200 * time.Millisecond)
	if got := byMsgID(srv.Messages(), "ratelimit"); len(got) != 0 {
		t.Fatalf("reported while the limit held: %+v", got)
	}
	if len(byMsgID(ms, "send")) != int(passed) {
		t.Fatalf("rsyslog got %d operations, want the %d the limit passed", len(byMsgID(ms, "send")), passed)
	}
	s.Tick(now.Add(2 * time.Second)) // nothing held back for a second: lifted
	ms = srv.WaitFor(int(passed)+1, waitMessages)
	rl := byMsgID(ms, "ratelimit")
	if len(rl) != 1 {
		t.Fatalf("want one rate limit report, got %+v", rl)
	}
	want := map[string]string{"suppressed": strconv.FormatUint(st.Suppressed, 10), "rate_limit": "10"}
	if rl[0].Pri != "29" || !equalMaps(rl[0].Fields["ratelimit@"+PEN], want) {
		t.Errorf("report %+v, want daemon.notice with %v", rl[0], want)
	}
	if !strings.Contains(rl[0].Msg, "held back "+strconv.FormatUint(st.Suppressed, 10)+" operations") {
		t.Errorf("MSG %q does not say how many", rl[0].Msg)
	}
}

func TestServerDownDropsAreCountedAndItReconnects(t *testing.T) {
	srv := rsyslogtest.Start(t, rsyslogtest.Options{Input: rsyslogtest.TCP})
	s := newSink(t, Config{URL: srv.URL, QueueSize: 16, Timeout: time.Second, FlushTimeout: time.Second})
	id := 0
	add := func(k int) {
		for range k {
			id++
			op := failedOp(200, "writer", "pipe:[1]")
			op.ID = flow.OpID(id)
			s.Add(op)
		}
	}
	add(1)
	if ms := srv.WaitFor(1, waitMessages); len(ms) != 1 {
		t.Fatalf("got %d messages before the outage", len(ms))
	}

	srv.Stop()
	time.Sleep(300 * time.Millisecond) // the sink sees the connection close
	add(100)
	time.Sleep(300 * time.Millisecond)
	down := s.AllStats()
	if down.Dropped < 100-17 || down.Written != 1 || down.Written+down.Dropped+down.Lagging != 101 {
		t.Fatalf("with the server down: %+v; want 1 written, the queue (16) and one in hand waiting, the rest dropped", down)
	}
	if err := s.Flush(); err == nil || !strings.Contains(err.Error(), "refused") {
		t.Errorf("Flush with the server down: %v, want the messages still waiting and why", err)
	}

	srv.Restart()
	s.Tick(time.Now()) // the drop notice
	want := 101 - int(down.Dropped) + 1
	srv.WaitFor(want, waitMessages)
	add(1)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	ms := srv.WaitFor(want+1, waitMessages)
	st := s.AllStats()
	if st.Dropped != down.Dropped || st.Written != 102-down.Dropped || st.Reconnects < 1 {
		t.Errorf("after the server came back: %+v, want the %d dropped while it was down and the rest written", st, down.Dropped)
	}
	if got := len(byMsgID(ms, "send")); got != int(st.Written) {
		t.Errorf("rsyslog got %d operations, the sink says it wrote %d", got, st.Written)
	}
	drop := byMsgID(ms, "drop")
	if len(drop) != 1 || !equalMaps(drop[0].Fields["drop@"+PEN], map[string]string{"reason": "syslog", "count": strconv.FormatUint(down.Dropped, 10)}) {
		t.Errorf("drop notice %+v, want reason syslog and count %d", drop, down.Dropped)
	}
}

func TestTLSRefusesAnUntrustedServer(t *testing.T) {
	rsyslogtest.Needs(t)
	ca := testca.New(t, "real")
	impostor := testca.New(t, "impostor")
	for _, tc := range []struct {
		name   string
		signer *testca.CA
		names  []string
		host   string
		says   []string
	}{
		{"untrusted CA", impostor, []string{"127.0.0.1"}, "127.0.0.1", []string{"certificate signed by unknown authority", "syslog.ca_file"}},
		{"wrong server name", ca, []string{"syslog.example"}, "localhost", []string{"valid for syslog.example, not localhost", "a certificate for localhost"}},
		{"wrong server address", ca, []string{"syslog.example"}, "127.0.0.1", []string{"cannot validate certificate for 127.0.0.1", "a certificate for 127.0.0.1"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cert, key := tc.signer.Issue(t, "server", false, tc.names...)
			srv := rsyslogtest.Start(t, rsyslogtest.Options{Input: rsyslogtest.TLS, CAFile: tc.signer.File, CertFile: cert, KeyFile: key})
			_, err := New(Config{URL: strings.Replace(srv.URL, "127.0.0.1", tc.host, 1), CAFile: ca.File})
			var ce *CertificateError
			if !errors.As(err, &ce) {
				t.Fatalf("New: %v, want a certificate error", err)
			}
			for _, w := range tc.says {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not say %q", err, w)
				}
			}
		})
	}
}

// An attacker who answers a tls:// URL with plain TCP gets no message: the
// sink never falls back to sending in the clear.
func TestTLSToAPlainServerSendsNothing(t *testing.T) {
	srv := rsyslogtest.Start(t, rsyslogtest.Options{Input: rsyslogtest.TCP})
	ca := testca.New(t, "real")
	s, err := New(Config{URL: strings.Replace(srv.URL, "tcp://", "tls://", 1), CAFile: ca.File, Timeout: 500 * time.Millisecond, FlushTimeout: time.Second})
	if err != nil {
		t.Fatalf("New: %v (a server that does not answer TLS is retried, not fatal)", err)
	}
	s.Add(failedOp(9, "secret-comm", "pipe:[1]"))
	if err := s.Flush(); err == nil || !strings.Contains(err.Error(), "is the server speaking TLS on this port?") {
		t.Errorf("Flush: %v, want it to say the server does not speak TLS", err)
	}
	_ = s.Close()
	if st := s.AllStats(); st.Written != 0 || st.Dropped != 1 {
		t.Errorf("stats %+v, want nothing written and the operation dropped", st)
	}
	all, _ := os.ReadFile(srv.All())
	if strings.Contains(string(all), "secret-comm") || len(srv.Messages()) != 0 {
		t.Errorf("the message reached the plain server:\n%s", all)
	}
}

// The correlator reuses an operation once the sink's Add returns: what
// arrives must be the operation as it was added.
func TestSendsTheOperationAsItWasWhenAdded(t *testing.T) {
	srv := rsyslogtest.Start(t, rsyslogtest.Options{Input: rsyslogtest.TCP})
	s := newSink(t, Config{URL: srv.URL})
	op := failedOp(300, "first", "pipe:[1]")
	s.Add(op)
	*op = *failedOp(301, "reused", "pipe:[2]")
	op.Error = ""
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	ms := srv.WaitFor(1, waitMessages)
	if len(ms) != 1 || ms[0].ProcID != "300" || ms[0].Fields["ipc@"+PEN]["comm"] != "first" {
		t.Errorf("rsyslog got %+v, want the operation as it was added", ms)
	}
}
