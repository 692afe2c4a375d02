package main

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/icptrack/icptrack/exporter/syslog"
	"github.com/icptrack/icptrack/internal/ipcload"
	"github.com/icptrack/icptrack/internal/rsyslogtest"
	"github.com/icptrack/icptrack/internal/testca"
)

// rsyslog receives exactly the operations that failed, as the event log
// shows them: the default --syslog-filter.
func TestRunSendsTheFailedOperationsToSyslog(t *testing.T) {
	needsBPF(t)
	srv := rsyslogtest.Start(t, rsyslogtest.Options{Input: rsyslogtest.TCP})
	dir := t.TempDir()
	writer := selfAs(t, dir, "epipe-writer")
	events := filepath.Join(dir, "events.jsonl")
	// Three writes to a pipe whose reader is gone (EPIPE), and a pipe
	// that works.
	script := fmt.Sprintf("for i in 1 2 3; do %s=sigpipe %s; done; printf hello | cat >/dev/null", ipcload.Env, writer)
	r := run(t, "run", "--syslog", srv.URL, "--events", events, "--", "sh", "-c", script)
	if r.code != 0 {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}

	want := map[string]map[string]any{}
	ok := 0
	for _, ev := range readEvents(t, events) {
		if ev["error"] != nil {
			want[ev["id"].(string)] = ev
		} else {
			ok++
		}
	}
	epipe := 0
	for _, ev := range want {
		if ev["error"] == "EPIPE" && ev["comm"] == "epipe-writer" {
			epipe++
		}
	}
	if epipe != 3 || ok == 0 {
		t.Fatalf("the event log has %d EPIPE writes by epipe-writer and %d successes, want 3 and some", epipe, ok)
	}

	srv.WaitFor(len(want), waitSyslog)
	time.Sleep(300 * time.Millisecond) // and no more come
	ms := srv.Messages()
	got := map[string]bool{}
	for _, m := range ms {
		f := m.Fields["ipc@"+syslog.PEN]
		id := f["id"]
		ev, ok := want[id]
		if !ok {
			t.Errorf("rsyslog got an operation the event log does not show as failed: %+v", m)
			continue
		}
		if got[id] {
			t.Errorf("operation %s arrived twice", id)
		}
		got[id] = true
		pid := strconv.FormatFloat(ev["pid"].(float64), 'f', 0, 64)
		if m.ProcID != pid || m.MsgID != ev["op"] || f["error"] != ev["error"] || f["comm"] != ev["comm"] ||
			f["mechanism"] != ev["mechanism"] || f["endpoint"] != ev["endpoint"] || m.Pri != "28" {
			t.Errorf("message %+v\ndoes not match the event log's %v", m, ev)
		}
	}
	if len(got) != len(want) {
		var missing []string
		for id := range want {
			if !got[id] {
				missing = append(missing, id)
			}
		}
		sort.Strings(missing)
		t.Errorf("rsyslog got %d of the %d failed operations; missing %v", len(got), len(want), missing)
	}
	line := fmt.Sprintf("icptrack: syslog: %d operations written, 0 dropped", len(want))
	if !strings.Contains(r.stderr, line) {
		t.Errorf("the summary does not say %q:\n%s", line, r.stderr)
	}
}

const waitSyslog = 10 * time.Second

func TestSyslogMistakes(t *testing.T) {
	rsyslogtest.Needs(t)
	ca := testca.New(t, "real")
	impostor := testca.New(t, "impostor")
	cert, key := impostor.Issue(t, "server", false, "127.0.0.1")
	srv := rsyslogtest.Start(t, rsyslogtest.Options{Input: rsyslogtest.TLS, CAFile: impostor.File, CertFile: cert, KeyFile: key})
	conf := filepath.Join(t.TempDir(), "config.yaml")
	if err := os.WriteFile(conf, []byte("syslog:\n  url: "+srv.URL+"\n  ca_file: "+ca.File+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	badConf := filepath.Join(t.TempDir(), "bad.yaml")
	if err := os.WriteFile(badConf, []byte("syslog:\n  url: tcp://127.0.0.1:514\n  facility: kernel\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		args []string
		code int
		says []string
	}{
		{[]string{"--syslog", "logs:514"}, 2, []string{"--syslog", "unix:///dev/log", "tls://host:6514"}},
		{[]string{"--syslog", "tcp://127.0.0.1:514", "--syslog-filter", "eror == EPIPE"}, 2, []string{"--syslog-filter", "did you mean error"}},
		{[]string{"--syslog", "tcp://127.0.0.1:514", "--syslog-filter", "payload contains x"}, 2, []string{"--payload"}},
		{[]string{"--syslog", "tcp://127.0.0.1:514", "--mode", "metrics"}, 2, []string{"--mode events"}},
		{[]string{"--config", badConf}, 2, []string{"bad.yaml:3: syslog.facility", "local0"}},
		// A TLS server icptrack does not trust stops it before it traces.
		{[]string{"--config", conf}, 1, []string{"certificate signed by unknown authority", "syslog.ca_file"}},
	} {
		r := run(t, append(append([]string{"run"}, tc.args...), "--", "true")...)
		if strings.Contains(r.stderr, "--syslog-filter: filter") {
			// A filter's mistake is shown under its line with a caret.
			r.stderr = strings.SplitN(r.stderr, "\n", 2)[0]
		}
		oneLineError(t, r, tc.code, tc.says...)
	}
}
