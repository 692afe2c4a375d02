// Package rsyslogtest runs a real rsyslogd for tests: its own, in a
// temporary directory, listening on one input, writing what it parsed of
// each message from icptrack (the RFC 5424 fields, and the structured
// data as rsyslog's mmpstrucdata decoded it) as JSON lines.
package rsyslogtest

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Inputs a server may listen on.
const (
	UnixDgram  = "unix"        // imuxsock, as /dev/log
	UnixStream = "unix-stream" // imptcp on a unix socket path
	UDP        = "udp"
	TCP        = "tcp"
	TLS        = "tls"
)

// Needs fails the test under CI=true when rsyslogd is not installed, and
// skips it elsewhere.
func Needs(t testing.TB) {
	t.Helper()
	if _, err := exec.LookPath("rsyslogd"); err == nil {
		return
	}
	const install = "apt-get install rsyslog rsyslog-gnutls"
	if os.Getenv("CI") == "true" {
		t.Fatalf("rsyslogd is not installed, and the syslog tests must run in CI: %s", install)
	}
	t.Skipf("rsyslogd is not installed: %s", install)
}

// Options choose the server's input.
type Options struct {
	Input string
	// TLS: the server's CA, certificate and key files; ClientAuth asks
	// clients for a certificate the CA signed.
	CAFile, CertFile, KeyFile string
	ClientAuth                bool
}

// Server is a running rsyslogd.
type Server struct {
	// URL is the --syslog URL that reaches it.
	URL string
	// Dir is its directory: its config, sockets and output.
	Dir  string
	t    testing.TB
	opts Options
	port int
	cmd  *exec.Cmd
	// exited is closed when cmd has exited.
	exited chan struct{}
}

// Start starts rsyslogd with one input; it is stopped when the test ends.
func Start(t testing.TB, opts Options) *Server {
	t.Helper()
	Needs(t)
	s := &Server{t: t, opts: opts, Dir: t.TempDir()}
	switch opts.Input {
	case UnixDgram:
		s.URL = "unix://" + filepath.Join(s.Dir, "log")
	case UnixStream:
		s.URL = "unix://" + filepath.Join(s.Dir, "stream")
	case UDP:
		s.port = freePort(t, "udp")
		s.URL = fmt.Sprintf("udp://127.0.0.1:%d", s.port)
	case TCP, TLS:
		s.port = freePort(t, "tcp")
		s.URL = fmt.Sprintf("%s://127.0.0.1:%d", opts.Input, s.port)
	default:
		t.Fatalf("rsyslogtest: unknown input %q", opts.Input)
	}
	if err := os.WriteFile(s.conf(), []byte(s.config()), 0o644); err != nil {
		t.Fatal(err)
	}
	s.start()
	t.Cleanup(s.Stop)
	return s
}

func (s *Server) conf() string { return filepath.Join(s.Dir, "rsyslog.conf") }

// Output is the file of parsed messages; All the file of every message
// rsyslog received, icptrack's or not, as it stored them
// (RSYSLOG_SyslogProtocol23Format: the RFC 5424 line).
func (s *Server) Output() string { return filepath.Join(s.Dir, "out.jsonl") }
func (s *Server) All() string    { return filepath.Join(s.Dir, "all.log") }

func (s *Server) config() string {
	var in string
	switch s.opts.Input {
	case UnixDgram:
		// The special parser takes the legacy format of syslog(3); off,
		// the socket's messages go through the RFC 5424 parser.
		in = fmt.Sprintf(`module(load="imuxsock" SysSock.Use="off")
input(type="imuxsock" Socket="%s/log" UseSpecialParser="off" ParseHostname="on" IgnoreTimestamp="off")`, s.Dir)
	case UnixStream:
		in = fmt.Sprintf(`module(load="imptcp")
input(type="imptcp" path="%s/stream")`, s.Dir)
	case UDP:
		in = fmt.Sprintf(`module(load="imudp")
input(type="imudp" address="127.0.0.1" port="%d")`, s.port)
	case TCP:
		in = fmt.Sprintf(`module(load="imtcp")
input(type="imtcp" address="127.0.0.1" port="%d")`, s.port)
	case TLS:
		auth := "anon"
		if s.opts.ClientAuth {
			auth = "x509/certvalid"
		}
		in = fmt.Sprintf(`global(DefaultNetstreamDriverCAFile="%s" DefaultNetstreamDriverCertFile="%s" DefaultNetstreamDriverKeyFile="%s")
module(load="imtcp" StreamDriver.Name="gtls" StreamDriver.Mode="1" StreamDriver.AuthMode="%s")
input(type="imtcp" address="127.0.0.1" port="%d")`, s.opts.CAFile, s.opts.CertFile, s.opts.KeyFile, auth, s.port)
	}
	return fmt.Sprintf(`global(workDirectory="%[1]s" maxMessageSize="64k")
module(load="mmpstrucdata")
%[2]s
template(name="fields" type="list" option.jsonf="on") {
  property(outname="pri" name="pri" format="jsonf")
  property(outname="hostname" name="hostname" format="jsonf")
  property(outname="app" name="app-name" format="jsonf")
  property(outname="procid" name="procid" format="jsonf")
  property(outname="msgid" name="msgid" format="jsonf")
  property(outname="sd" name="structured-data" format="jsonf")
  property(outname="msg" name="msg" format="jsonf")
  property(outname="time" name="timereported" dateFormat="rfc3339" format="jsonf")
  property(outname="fields" name="$!rfc5424-sd" format="jsonf")
}
action(type="omfile" file="%[1]s/all.log" template="RSYSLOG_SyslogProtocol23Format")
if $app-name == "icptrack" then {
  action(type="mmpstrucdata")
  action(type="omfile" file="%[1]s/out.jsonl" template="fields")
}
`, s.Dir, in)
}

func (s *Server) start() {
	t := s.t
	t.Helper()
	s.cmd = exec.Command("rsyslogd", "-n", "-f", s.conf(), "-i", filepath.Join(s.Dir, "rsyslogd.pid"))
	log, err := os.OpenFile(filepath.Join(s.Dir, "rsyslogd.stderr"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	s.cmd.Stdout, s.cmd.Stderr = log, log
	if err := s.cmd.Start(); err != nil {
		t.Fatalf("start rsyslogd: %v", err)
	}
	log.Close()
	exited := make(chan struct{})
	cmd := s.cmd
	go func() {
		_ = cmd.Wait()
		close(exited)
	}()
	s.exited = exited
	deadline := time.Now().Add(10 * time.Second)
	for !s.listening() {
		select {
		case <-exited:
			out, _ := os.ReadFile(filepath.Join(s.Dir, "rsyslogd.stderr"))
			t.Fatalf("rsyslogd exited at start: %s", out)
		default:
		}
		if time.Now().After(deadline) {
			out, _ := os.ReadFile(filepath.Join(s.Dir, "rsyslogd.stderr"))
			t.Fatalf("rsyslogd is not listening on %s after 10s: %s", s.URL, out)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// listening reads the kernel's socket tables, rather than connect, so
// that no stray message or connection reaches the server.
func (s *Server) listening() bool {
	switch s.opts.Input {
	case UnixDgram, UnixStream:
		b, _ := os.ReadFile("/proc/net/unix")
		path := strings.TrimPrefix(s.URL, "unix://")
		for _, line := range strings.Split(string(b), "\n") {
			if strings.HasSuffix(line, " "+path) {
				return true
			}
		}
		return false
	case UDP:
		return inTable("/proc/net/udp", s.port, "07")
	}
	return inTable("/proc/net/tcp", s.port, "0A")
}

// inTable looks for 127.0.0.1:port in state in a /proc/net table.
func inTable(table string, port int, state string) bool {
	b, _ := os.ReadFile(table)
	local := fmt.Sprintf("0100007F:%04X", port)
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) > 3 && f[1] == local && f[3] == state {
			return true
		}
	}
	return false
}

// Stop stops rsyslogd and waits for it.
func (s *Server) Stop() {
	if s.cmd == nil {
		return
	}
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.exited:
	case <-time.After(10 * time.Second):
		_ = s.cmd.Process.Kill()
		<-s.exited
	}
	s.cmd = nil
}

// Restart starts the server again, on the same address.
func (s *Server) Restart() {
	s.t.Helper()
	s.start()
}

// Message is what rsyslog parsed of one message.
type Message struct {
	Pri      string `json:"pri"`
	Hostname string `json:"hostname"`
	App      string `json:"app"`
	ProcID   string `json:"procid"`
	MsgID    string `json:"msgid"`
	SD       string `json:"sd"`
	Msg      string `json:"msg"`
	Time     string `json:"time"`
	// RawFields is the structured data as mmpstrucdata decoded it:
	// {"ipc@32473": {"comm": "…", …}} as JSON text.
	RawFields string `json:"fields"`
	Fields    map[string]map[string]string
}

// Messages are the messages received so far.
func (s *Server) Messages() []Message {
	s.t.Helper()
	f, err := os.Open(s.Output())
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		s.t.Fatal(err)
	}
	defer f.Close()
	var out []Message
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var m Message
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			s.t.Fatalf("rsyslog wrote a line that is not JSON: %v: %s", err, sc.Text())
		}
		if m.RawFields != "" {
			if err := json.Unmarshal([]byte(m.RawFields), &m.Fields); err != nil {
				s.t.Fatalf("rsyslog's structured data is not JSON: %v: %s", err, m.RawFields)
			}
		}
		out = append(out, m)
	}
	return out
}

// WaitFor waits until at least n messages have arrived, and returns them.
func (s *Server) WaitFor(n int, timeout time.Duration) []Message {
	s.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		ms := s.Messages()
		if len(ms) >= n || time.Now().After(deadline) {
			return ms
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func freePort(t testing.TB, network string) int {
	t.Helper()
	if network == "udp" {
		c, err := net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		return c.LocalAddr().(*net.UDPAddr).Port
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}
