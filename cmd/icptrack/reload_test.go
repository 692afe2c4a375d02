package main

import (
	"encoding/csv"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/icptrack/icptrack/exporter/syslog"
	"github.com/icptrack/icptrack/internal/ipcload"
	"github.com/icptrack/icptrack/internal/rsyslogtest"
)

// SIGHUP while a workload writes into a pipe at a steady pace: the
// configuration is read again three times (a new event log, a filter and
// a syslog output; a mistake, which changes nothing; another event log,
// no syslog, and a setting that needs a restart), and every one of the
// writes the workload made is in exactly one of the three event logs, and
// rsyslog got exactly those of the second.
func TestReloadOnSIGHUPLosesNoOperation(t *testing.T) {
	needsBPF(t)
	srv := rsyslogtest.Start(t, rsyslogtest.Options{Input: rsyslogtest.TCP})
	dir := t.TempDir()
	writer := selfAs(t, dir, "reload-writer")
	logs := []string{filepath.Join(dir, "a.jsonl"), filepath.Join(dir, "b.jsonl"), filepath.Join(dir, "c.jsonl")}
	cfg := filepath.Join(dir, "icptrack.yaml")
	writeCfg := func(text string) {
		t.Helper()
		if err := os.WriteFile(cfg, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	selectors := "trace:\n  comms: [reload-writer, cat]\n"
	writeCfg(selectors + "events: " + logs[0] + "\n")

	agent := startTraceAgent(t, cfg)
	waitFor, hup := agent.waitFor, agent.hup
	waitFor("icptrack is tracing", 1)

	const count, size = 3000, 64
	work := pacedPipe(t, writer, count, size)
	time.Sleep(700 * time.Millisecond)
	writeCfg(selectors + "events: " + logs[1] + "\nfilter: comm == \"reload-writer\"\ntrace_sample_ratio: 0.5\n" +
		"syslog:\n  url: " + srv.URL + "\n  filter: mechanism == pipe\n  rate_limit: 100000\n")
	hup()
	waitFor("reloaded the configuration", 1)
	time.Sleep(700 * time.Millisecond)
	writeCfg(selectors + "events: " + logs[2] + "\nfilter: mechanism == pipx\n")
	hup()
	waitFor("keeps running as it was", 1)
	time.Sleep(300 * time.Millisecond)
	writeCfg(selectors + "events: " + logs[2] + "\nring_buffer: 64MiB\n")
	hup()
	waitFor("reloaded the configuration", 2)
	if err := work.Wait(); err != nil {
		t.Fatalf("the workload: %v", err)
	}
	log := agent.stop()
	if !strings.Contains(log, `unknown mechanism \"pipx\"`) || !strings.Contains(log, "ring_buffer") || !strings.Contains(log, "take effect only when icptrack restarts") {
		t.Errorf("the log does not say what the reloads did:\n%s", log)
	}

	// Every write in exactly one log; the filter of the second left the
	// reads by cat out of it, and the third has them again.
	seen := map[string]bool{}
	var sends, bytes int64
	secondLog := map[string]bool{}
	for i, path := range logs {
		var mine, cats int64
		for _, ev := range readEvents(t, path) {
			id, _ := ev["id"].(string)
			if seen[id] {
				t.Fatalf("operation %s is in two event logs", id)
			}
			seen[id] = true
			if i == 1 && ev["mechanism"] == "pipe" { // syslog's filter
				secondLog[id] = true
			}
			switch {
			case ev["comm"] == "reload-writer" && ev["op"] == "send" && ev["mechanism"] == "pipe":
				n := int64(1)
				if c, ok := ev["count"].(float64); ok {
					n = int64(c)
				}
				sends += n
				bytes += int64(ev["bytes"].(float64))
				mine += n
			case ev["comm"] == "cat":
				cats++
			}
		}
		if mine == 0 {
			t.Errorf("%s has none of the writes: the reload did not switch the event log there", filepath.Base(path))
		}
		if (i == 1) != (cats == 0) {
			t.Errorf("%s has %d operations by cat; the filter of the second log leaves them out, the others keep them", filepath.Base(path), cats)
		}
	}
	ms := srv.WaitFor(len(secondLog), waitSyslog)
	got := map[string]bool{}
	for _, m := range ms {
		id := m.Fields["ipc@"+syslog.PEN]["id"]
		if !secondLog[id] || got[id] {
			t.Errorf("rsyslog got %s, which is not in the second event log, or twice", id)
		}
		got[id] = true
	}
	if len(got) != len(secondLog) {
		t.Errorf("rsyslog got %d operations, want the %d of the second event log: the syslog output added and removed by reloads", len(got), len(secondLog))
	}
	if sends != count || bytes != count*size {
		t.Errorf("the three event logs hold %d writes and %d bytes, want %d and %d: the reloads lost or repeated operations\n%s",
			sends, bytes, count, count*size, log)
	}
}

// traceAgent is icptrack trace running with a configuration file, for
// reload tests.
type traceAgent struct {
	t      *testing.T
	cfg    string
	cmd    *exec.Cmd
	stderr *lockedBuffer
	exited chan error
}

// startTraceAgent runs icptrack trace --config cfg, logging at info.
func startTraceAgent(t *testing.T, cfg string) *traceAgent {
	t.Helper()
	a := &traceAgent{t: t, cfg: cfg, cmd: exec.Command(binary, "trace", "--config", cfg, "--log-level", "info"),
		stderr: &lockedBuffer{}, exited: make(chan error, 1)}
	a.cmd.Stderr = a.stderr
	if err := a.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { a.exited <- a.cmd.Wait() }()
	t.Cleanup(func() { _ = a.cmd.Process.Kill() })
	return a
}

// waitFor waits until icptrack has logged what n times.
func (a *traceAgent) waitFor(what string, n int) {
	a.t.Helper()
	for deadline := time.Now().Add(20 * time.Second); strings.Count(a.stderr.String(), what) < n; time.Sleep(20 * time.Millisecond) {
		select {
		case err := <-a.exited:
			a.t.Fatalf("icptrack ended (%v) before it logged %q:\n%s", err, what, a.stderr)
		default:
		}
		if time.Now().After(deadline) {
			a.t.Fatalf("icptrack did not log %q %d times in 20s:\n%s", what, n, a.stderr)
		}
	}
}

// write replaces the configuration file.
func (a *traceAgent) write(config string) {
	a.t.Helper()
	if err := os.WriteFile(a.cfg, []byte(config), 0o600); err != nil {
		a.t.Fatal(err)
	}
}

// reload rewrites the file, sends SIGHUP and waits until icptrack says it
// reloaded for the nth time.
func (a *traceAgent) reload(config string, n int) {
	a.t.Helper()
	a.write(config)
	a.hup()
	a.waitFor("reloaded the configuration", n)
}

// refuse rewrites the file, sends SIGHUP and waits until icptrack says,
// for the nth time, that it keeps running as it was.
func (a *traceAgent) refuse(config string, n int) {
	a.t.Helper()
	a.write(config)
	a.hup()
	a.waitFor("keeps running as it was", n)
}

// hup asks icptrack to read its configuration again.
func (a *traceAgent) hup() {
	a.t.Helper()
	if err := a.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		a.t.Fatal(err)
	}
}

// stop ends icptrack with SIGTERM, which must flush everything, and
// returns its log.
func (a *traceAgent) stop() string {
	a.t.Helper()
	if err := a.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		a.t.Fatal(err)
	}
	select {
	case err := <-a.exited:
		if err != nil {
			a.t.Fatalf("icptrack: %v\n%s", err, a.stderr)
		}
	case <-time.After(20 * time.Second):
		a.t.Fatalf("icptrack did not stop on SIGTERM:\n%s", a.stderr)
	}
	return a.stderr.String()
}

// SIGHUP changes which processes are traced, while the same two writers
// run: by name, then the other name, then the pid a new filter requires
// (pushed into the kernel), then a selector naming a process that does not
// exist, a mistake that changes nothing. Each writer writes a phase of
// messages after each reload, phase P's messages size+P bytes long, and
// the event log has exactly the phases its writer was selected in.
func TestReloadChangesTheSelectors(t *testing.T) {
	needsBPF(t)
	dir := t.TempDir()
	a := selfAs(t, dir, "sel-writer-a", "sel-writer-b")
	b := filepath.Join(dir, "sel-writer-b")
	events := filepath.Join(dir, "events.jsonl")
	cfg := filepath.Join(dir, "icptrack.yaml")
	writeCfg := func(text string) {
		t.Helper()
		if err := os.WriteFile(cfg, []byte("events: "+events+"\n"+text), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	writeCfg("trace:\n  comms: [sel-writer-a]\n")
	agent := startTraceAgent(t, cfg)
	agent.waitFor("icptrack is tracing", 1)

	const count, size, phases = 50, 64, 4
	var works []*exec.Cmd
	for _, w := range []string{a, b} {
		name := filepath.Base(w)
		work := exec.Command("sh", "-c", fmt.Sprintf("%s 1 %d %d %s %s %d | cat >/dev/null", w, size, count, dir, name, phases))
		work.Env = append(os.Environ(), ipcload.Env+"=phased-write")
		work.Stderr = os.Stderr
		if err := work.Start(); err != nil {
			t.Fatal(err)
		}
		works = append(works, work)
	}
	pids := map[string]int{}
	phase := func(p int) {
		t.Helper()
		got, err := ipcload.RunPhase(dir, p, "sel-writer-a", "sel-writer-b")
		if err != nil {
			t.Fatal(err)
		}
		maps.Copy(pids, got)
	}
	phase(0)
	writeCfg("trace:\n  comms: [sel-writer-b]\n")
	agent.hup()
	agent.waitFor("reloaded the configuration", 1)
	phase(1)
	writeCfg(fmt.Sprintf("filter: pid == %d\n", pids["sel-writer-a"]))
	agent.hup()
	agent.waitFor("reloaded the configuration", 2)
	phase(2)
	writeCfg("trace:\n  pids: [999999999]\n")
	agent.hup()
	agent.waitFor("keeps running as it was", 1)
	phase(3)
	for _, w := range works {
		if err := w.Wait(); err != nil {
			t.Fatalf("a writer: %v", err)
		}
	}
	log := agent.stop()
	if !strings.Contains(log, "--pid 999999999: no such process") {
		t.Errorf("the log does not say what was wrong with the last reload's selectors:\n%s", log)
	}
	want := map[string][phases]bool{
		"sel-writer-a": {true, false, true, true},
		"sel-writer-b": {false, true, false, false},
	}
	got := map[string]*[phases]int{"sel-writer-a": {}, "sel-writer-b": {}}
	for _, ev := range readEvents(t, events) {
		// A run of writes the kernel sent as one record has their count.
		b, _ := ev["bytes"].(float64)
		n, bytes := 1, int(b)
		if c, ok := ev["count"].(float64); ok {
			n = int(c)
		}
		p := bytes/n - size
		if c := got[ev["comm"].(string)]; c != nil && ev["op"] == "send" && ev["mechanism"] == "pipe" && p >= 0 && p < phases {
			c[p] += n
		}
	}
	for name, phs := range want {
		for p, traced := range phs {
			w := 0
			if traced {
				w = count
			}
			if got[name][p] != w {
				t.Errorf("phase %d: the event log has %d of %s's writes, want %d", p, got[name][p], name, w)
			}
		}
	}
}

// trace appends to its event log, as a service's log must: a restart
// (systemd's Restart=on-failure) keeps what the log holds, and a CSV log
// keeps one header row.
func TestTraceAppendsToItsEventLog(t *testing.T) {
	needsBPF(t)
	dir := t.TempDir()
	writer := selfAs(t, dir, "append-writer")
	events := filepath.Join(dir, "events.csv")
	cfg := filepath.Join(dir, "icptrack.yaml")
	if err := os.WriteFile(cfg, []byte("events: "+events+"\nformat: csv\ntrace:\n  comms: [append-writer]\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	const count, size = 10, 32
	for run := range 2 {
		agent := startTraceAgent(t, cfg)
		agent.waitFor("icptrack is tracing", 1)
		work := exec.Command("sh", "-c", fmt.Sprintf("%s 1 %d %d write | cat >/dev/null", writer, count, size+run))
		work.Env = append(os.Environ(), ipcload.Env+"=write")
		if out, err := work.CombinedOutput(); err != nil {
			t.Fatalf("the workload: %v\n%s", err, out)
		}
		agent.stop()
	}
	f, err := os.Open(events)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	rows, err := csv.NewReader(f).ReadAll()
	if err != nil {
		t.Fatalf("the event log is not one CSV file: %v", err)
	}
	col := map[string]int{}
	for i, c := range rows[0] {
		col[c] = i
	}
	writes := map[int]int{} // by the run, from the message size
	for i, row := range rows[1:] {
		if row[col["id"]] == "id" {
			t.Fatalf("row %d is a second header", i+2)
		}
		if row[col["comm"]] != "append-writer" || row[col["op"]] != "send" || row[col["mechanism"]] != "pipe" {
			continue
		}
		n := 1
		if c := row[col["count"]]; c != "" {
			n, _ = strconv.Atoi(c)
		}
		bytes, _ := strconv.Atoi(row[col["bytes"]])
		writes[bytes/n-size] += n
	}
	if writes[0] != count || writes[1] != count || len(writes) != 2 {
		t.Errorf("the event log has writes %v (by run), want %d of each of the two runs", writes, count)
	}
}
