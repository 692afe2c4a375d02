package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
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

	agent := exec.Command(binary, "trace", "--config", cfg, "--log-level", "info")
	stderr := &lockedBuffer{}
	agent.Stderr = stderr
	if err := agent.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- agent.Wait() }()
	t.Cleanup(func() { _ = agent.Process.Kill() })
	waitFor := func(what string, n int) {
		t.Helper()
		for deadline := time.Now().Add(20 * time.Second); strings.Count(stderr.String(), what) < n; time.Sleep(20 * time.Millisecond) {
			select {
			case err := <-exited:
				t.Fatalf("icptrack ended (%v) before it logged %q:\n%s", err, what, stderr)
			default:
			}
			if time.Now().After(deadline) {
				t.Fatalf("icptrack did not log %q %d times in 20s:\n%s", what, n, stderr)
			}
		}
	}
	waitFor("icptrack is tracing", 1)

	const count, size = 3000, 64
	work := exec.Command("sh", "-c", fmt.Sprintf("%s 1 %d %d 1ms | cat >/dev/null", writer, count, size))
	work.Env = append(os.Environ(), ipcload.Env+"=paced-write")
	if err := work.Start(); err != nil {
		t.Fatal(err)
	}
	hup := func() {
		t.Helper()
		if err := agent.Process.Signal(syscall.SIGHUP); err != nil {
			t.Fatal(err)
		}
	}
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
	if err := agent.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-exited:
		if err != nil {
			t.Fatalf("icptrack: %v\n%s", err, stderr)
		}
	case <-time.After(20 * time.Second):
		t.Fatalf("icptrack did not stop on SIGTERM:\n%s", stderr)
	}
	log := stderr.String()
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
