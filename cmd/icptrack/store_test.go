package main

import (
	"bytes"
	"encoding/json"
	"github.com/icptrack/icptrack/internal/rsyslogtest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/icptrack/icptrack/exporter"
	"github.com/icptrack/icptrack/flow"
	"github.com/icptrack/icptrack/store"
)

// These tests make stores with the store package, then use them as a
// user would: through icptrack keys, verify and query.

func storeOps(n int) []*flow.Operation {
	base := time.Date(2026, 12, 5, 10, 0, 0, 0, time.UTC)
	ops := make([]*flow.Operation, n)
	for i := range ops {
		pid := uint32(100 + i%3)
		ops[i] = &flow.Operation{ID: flow.OpID(i + 1), Time: base.Add(time.Duration(i) * time.Millisecond), Duration: 1500,
			PID: pid, TID: pid, Comm: []string{"client", "server", "worker"}[i%3], Mechanism: flow.Pipe, Op: flow.OpType(1 + i%2),
			Syscall: "write", Channel: "pipe:42", Endpoint: "pipe:[42]", Bytes: int64(i), QueueDepth: -1}
	}
	return ops
}

// writeTestStore writes ops to a store in dir, with the keyring if
// keys is set.
func writeTestStore(t *testing.T, dir, keys string, ops []*flow.Operation) {
	t.Helper()
	w, err := store.Open(dir, store.Options{KeyFile: keys, BlockSize: 1 << 10, SegmentSize: 8 << 10})
	if err != nil {
		t.Fatal(err)
	}
	for _, op := range ops {
		if err := w.Append(op); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
}

var verifyKeyLine = regexp.MustCompile(`(?m)^icptrack-vk1-\S+$`)

func TestKeysVerifyAndQueryAStore(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "store")
	keys := filepath.Join(t.TempDir(), "keyring")
	r := run(t, "keys", "new", "--keyring", keys, "--store", dir, "--seal-every", "1m")
	if r.code != 0 {
		t.Fatalf("keys new: %d %s", r.code, r.stderr)
	}
	vk := verifyKeyLine.FindString(r.stdout)
	if vk == "" || !strings.Contains(r.stdout, "shown only this once") {
		t.Fatalf("keys new printed no verification key:\n%s", r.stdout)
	}
	ops := storeOps(500)
	writeTestStore(t, dir, keys, ops)

	r = run(t, "verify", dir, "--verify-key", vk, "--keyring", keys)
	if r.code != 0 {
		t.Fatalf("verify: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
	last := lines[len(lines)-1]
	if !strings.Contains(last, "all PASS") || !strings.Contains(last, "the chain, the seals (verification key), every GCM tag (keyring)") {
		t.Errorf("verify's summary: %s", last)
	}
	if !strings.Contains(r.stdout, "000000000001.seg  PASS  ") {
		t.Errorf("no PASS line for the first segment:\n%s", r.stdout)
	}

	r = run(t, "query", dir, "--keyring", keys, "--filter", "pid == 101", "--stats")
	if r.code != 0 {
		t.Fatalf("query: exit %d: %s", r.code, r.stderr)
	}
	var want bytes.Buffer
	log := exporter.NewEventLog(&want)
	for _, op := range ops {
		if op.PID == 101 {
			log.Write(op)
		}
	}
	log.Flush()
	if r.stdout != want.String() {
		t.Fatalf("query printed\n%s\nwant\n%s", head(r.stdout), head(want.String()))
	}
	if !strings.Contains(r.stderr, "blocks skipped by their index") {
		t.Errorf("--stats said: %s", r.stderr)
	}

	r = run(t, "query", dir, "--keyring", keys, "--from", "2026-12-05T10:00:00.1Z", "--to", "2026-12-05T10:00:00.2Z", "--format", "csv")
	if n := strings.Count(r.stdout, "\n"); r.code != 0 || n != 101 {
		t.Errorf("query of 100ms as CSV: exit %d, %d lines (want a header and 100): %s", r.code, n, r.stderr)
	}

	// One byte changed: verify says where, and exits 1.
	seg := filepath.Join(dir, "000000000002.seg")
	b, err := os.ReadFile(seg)
	if err != nil {
		t.Fatal(err)
	}
	b[300] ^= 1
	os.WriteFile(seg, b, 0o600)
	r = run(t, "verify", dir, "--json")
	var rep store.Report
	if err := json.Unmarshal([]byte(r.stdout), &rep); err != nil {
		t.Fatalf("verify --json: %v\n%s", err, r.stdout)
	}
	if r.code != 1 || rep.OK || rep.Segments[1].Status != store.StatusModified || rep.Segments[1].Block < 0 {
		t.Errorf("verify after a byte was changed: exit %d, %+v", r.code, rep.Segments[1])
	}
	r = run(t, "verify", dir)
	if !strings.Contains(r.stdout, "000000000002.seg  FAIL  modified: block ") || !strings.Contains(r.stderr, "verify "+dir+": 1 of ") {
		t.Errorf("verify's text after a byte was changed:\n%s%s", r.stdout, r.stderr)
	}
}

func head(s string) string {
	if len(s) > 600 {
		return s[:600] + "…"
	}
	return s
}

func TestStoreCommandsRefuseBadKeysWithExit2(t *testing.T) {
	dir := t.TempDir()
	keys := filepath.Join(t.TempDir(), "keyring")
	if r := run(t, "keys", "new", "--keyring", keys); r.code != 0 {
		t.Fatal(r.stderr)
	}
	writeTestStore(t, dir, keys, storeOps(50))
	other := filepath.Join(t.TempDir(), "keyring")
	run(t, "keys", "new", "--keyring", other)

	oneLineError(t, run(t, "verify", dir, "--keyring", other), 2, "does not hold")
	oneLineError(t, run(t, "query", dir, "--keyring", other), 2, "does not hold")
	oneLineError(t, run(t, "query", dir), 2, "encrypted", "keyring")
	oneLineError(t, run(t, "verify", dir, "--keyring", filepath.Join(dir, "nope")), 2, "does not exist", "keys new")
	oneLineError(t, run(t, "verify", dir, "--verify-key", "icptrack-vk1-AAAA"), 2, "damaged")
	oneLineError(t, run(t, "verify", dir, "--verify-key", "hunter2"), 2, "not a verification key")
	os.Chmod(keys, 0o644)
	oneLineError(t, run(t, "verify", dir, "--keyring", keys), 2, "other users", "chmod 600")
	oneLineError(t, run(t, "query", dir, "--keyring", keys), 2, "other users", "chmod 600")
	oneLineError(t, run(t, "verify", filepath.Join(dir, "nothing-here")), 2, "no such file")
	oneLineError(t, run(t, "verify"), 2, "needs the store's directory")
	oneLineError(t, run(t, "query", dir, "--from", "yesterday"), 2, "--from", "RFC 3339")
	if r := run(t, "query", dir, "--filter", "pdi == 1"); r.code != 2 || !strings.Contains(r.stderr, "did you mean pid") {
		t.Errorf("query with a bad filter: exit %d: %s", r.code, r.stderr)
	}
	oneLineError(t, run(t, "keys", "new"), 2, "--keyring", "--store")
	oneLineError(t, run(t, "keys", "new", "--keyring", other), 2, "exists already")
}

// The store end to end: a real workload traced with --store and
// --events at once; the store verifies at every level and a query gives
// back the event log, byte for byte.
func TestRunStoreKeepsWhatTheEventLogShows(t *testing.T) {
	needsBPF(t)
	tmp := t.TempDir()
	dir, keys, events := filepath.Join(tmp, "store"), filepath.Join(tmp, "keyring"), filepath.Join(tmp, "events.jsonl")
	r := run(t, "keys", "new", "--keyring", keys, "--store", dir)
	vk := verifyKeyLine.FindString(r.stdout)
	if r.code != 0 || vk == "" {
		t.Fatalf("keys new: %d %s", r.code, r.stderr)
	}
	work := mixWorkload(t)
	args := append([]string{"run", "--store", dir, "--store-key", keys, "--events", events, "--payload", "32", "--"}, work.Args...)
	cmd := exec.Command(binary, args...)
	cmd.Env = work.Env
	r = runCmd(t, cmd)
	if r.code != 0 {
		t.Fatalf("run: exit %d: %s", r.code, r.stderr)
	}
	if !regexp.MustCompile(`icptrack: store: \d+ operations written, 0 dropped`).MatchString(r.stderr) {
		t.Errorf("run's summary says nothing of the store:\n%s", r.stderr)
	}
	r = run(t, "verify", dir, "--verify-key", vk, "--keyring", keys)
	if r.code != 0 || !strings.Contains(r.stdout, "all PASS") {
		t.Fatalf("verify: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	want, err := os.ReadFile(events)
	if err != nil {
		t.Fatal(err)
	}
	if n := bytes.Count(want, []byte("\n")); n < 50 {
		t.Fatalf("the event log has %d operations: the workload was not traced", n)
	}
	r = run(t, "query", dir, "--keyring", keys)
	if r.code != 0 {
		t.Fatalf("query: exit %d: %s", r.code, r.stderr)
	}
	if r.stdout != string(want) {
		t.Fatalf("query gives\n%s\nthe event log has\n%s", head(r.stdout), head(string(want)))
	}
}

func TestRunStoreMistakesAreUsageErrors(t *testing.T) {
	dir := t.TempDir()
	oneLineError(t, run(t, "run", "--store-key", "/etc/keyring", "--", "true"), 2, "--store-key", "--store DIR")
	oneLineError(t, run(t, "run", "--mode", "metrics", "--store", dir, "--", "true"), 2, "--store needs --mode events")
	keys := filepath.Join(t.TempDir(), "keyring")
	run(t, "keys", "new", "--keyring", keys)
	os.Chmod(keys, 0o644)
	oneLineError(t, run(t, "run", "--store", dir, "--store-key", keys, "--", "true"), 2, "other users", "chmod 600")
	oneLineError(t, run(t, "run", "--store", dir, "--store-key", keys+".missing", "--", "true"), 2, "does not exist", "keys new")
	conf := filepath.Join(t.TempDir(), "config.yaml")
	os.WriteFile(conf, []byte("store:\n  dir: "+dir+"\n  max_age: forever\n"), 0o600)
	oneLineError(t, run(t, "run", "--config", conf, "--", "true"), 2, "store.max_age", "is not an age")
}

// The checkpoints go off the host through syslog, and verify reads them
// back from what rsyslog wrote: they alone catch the newest segment
// removed.
func TestStoreCheckpointsGoToSyslogAndCatchTheNewestSegmentRemoved(t *testing.T) {
	needsBPF(t)
	srv := rsyslogtest.Start(t, rsyslogtest.Options{Input: rsyslogtest.TCP})
	dir := filepath.Join(t.TempDir(), "store")
	r := run(t, "keys", "new", "--store", dir)
	vk := verifyKeyLine.FindString(r.stdout)
	if r.code != 0 || vk == "" {
		t.Fatalf("keys new: %d %s", r.code, r.stderr)
	}
	for range 2 {
		if r := run(t, "run", "--store", dir, "--syslog", srv.URL, "--", "sh", "-c", "echo hi | cat >/dev/null"); r.code != 0 {
			t.Fatalf("run: exit %d: %s", r.code, r.stderr)
		}
	}
	checkpoints := 0
	for end := time.Now().Add(waitSyslog); checkpoints < 2 && time.Now().Before(end); time.Sleep(50 * time.Millisecond) {
		checkpoints = 0
		for _, m := range srv.Messages() {
			if m.MsgID == "checkpoint" {
				checkpoints++
			}
		}
	}
	if checkpoints < 2 {
		t.Fatalf("%d checkpoints reached rsyslog, want one for each run's closed segment", checkpoints)
	}
	r = run(t, "verify", dir, "--verify-key", vk, "--checkpoint", srv.All())
	if r.code != 0 || strings.Count(r.stdout, ")  PASS") < 2 {
		t.Fatalf("verify with rsyslog's checkpoints: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	os.Remove(filepath.Join(dir, "000000000002.seg"))
	if r := run(t, "verify", dir, "--verify-key", vk); r.code != 0 {
		t.Fatalf("the newest segment removed fails without checkpoints, so this tests less than it says: %s", r.stdout)
	}
	r = run(t, "verify", dir, "--verify-key", vk, "--checkpoint", srv.All())
	if r.code != 1 || !strings.Contains(r.stdout, "FAIL  missing: segment 2") {
		t.Fatalf("verify after the newest segment was removed: exit %d\n%s", r.code, r.stdout)
	}
}
