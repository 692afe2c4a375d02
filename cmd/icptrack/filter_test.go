package main

import (
	"bufio"
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// The filter decides what reaches the event log, and it runs after
// correlation: the receive it keeps still names the write it left out.
func TestRunFilterKeepsOnlyMatchingOperations(t *testing.T) {
	needsBPF(t)
	events := filepath.Join(t.TempDir(), "events.jsonl")
	r := run(t, "run", "--events", events, "--filter", `comm == cat and op == receive and bytes == 5`,
		"--", "sh", "-c", "printf hello | cat; echo side >/dev/null")
	if r.code != 0 {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	evs := readEvents(t, events)
	if len(evs) == 0 {
		t.Fatal("the filter kept nothing: want cat's 5-byte read")
	}
	for _, ev := range evs {
		if ev["comm"] != "cat" || ev["op"] != "receive" || ev["bytes"] != 5.0 {
			t.Errorf("the filter let through %v", ev)
		}
	}
	recv := evs[0]
	if recv["peer_comm"] != "sh" || recv["mechanism"] != "pipe" {
		t.Errorf("kept receive %v does not name its writer, sh", recv)
	}
	if links, _ := recv["links"].([]any); len(links) != 1 {
		t.Errorf("kept receive's links %v, want the write it delivered", recv["links"])
	}

	// Without the filter the same command logs more: the filter did the work.
	all := filepath.Join(t.TempDir(), "all.jsonl")
	if r := run(t, "run", "--events", all, "--", "sh", "-c", "printf hello | cat; echo side >/dev/null"); r.code != 0 {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	if n := len(readEvents(t, all)); n <= len(evs) {
		t.Errorf("unfiltered log has %d operations, filtered %d", n, len(evs))
	}
}

// A filter that cannot be used stops icptrack before it traces, with exit
// code 2 and the mistake under a caret.
func TestBadFilterExitsTwoWithACaret(t *testing.T) {
	r := run(t, "run", "--filter", "pid == 1 and mechanism == unix_stram", "--", "true")
	if r.code != 2 {
		t.Fatalf("exit %d, want 2: %s", r.code, r.stderr)
	}
	want := "icptrack: --filter: filter 1:27: unknown mechanism \"unix_stram\""
	lines := strings.Split(strings.TrimRight(r.stderr, "\n"), "\n")
	if len(lines) != 3 || !strings.HasPrefix(lines[0], want) || !strings.Contains(lines[0], "did you mean unix_stream?") ||
		lines[1] != "  pid == 1 and mechanism == unix_stram" || lines[2] != "  "+strings.Repeat(" ", 26)+"^" {
		t.Errorf("stderr:\n%s\nwant %q, the filter, and a caret under unix_stram", r.stderr, want)
	}

	oneLineError(t, run(t, "trace", "--filter", `payload contains "GET"`), 2, "needs payload capture", "--payload")
	oneLineError(t, run(t, "run", "--mode", "metrics", "--filter", "pid == 1", "--", "true"), 2, "--filter needs --mode events")
	oneLineError(t, run(t, "run", "--mechanisms", "pipe", "--filter", "mechanism == tcp", "--", "true"), 2, "nothing would match")

	path := filepath.Join(t.TempDir(), "filter.yaml")
	if err := os.WriteFile(path, []byte("payload: 16\nfilter: |\n  comm == x or\n  cmm == y\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	r = run(t, "run", "--config", path, "--", "true")
	if r.code != 2 || !strings.Contains(r.stderr, "filter.yaml:4: filter: filter 2:1: unknown field \"cmm\" (did you mean comm?)") {
		t.Errorf("exit %d, stderr %q: want filter.yaml:4 and the field", r.code, r.stderr)
	}
}

// In trace, the pids a filter requires are selected in the kernel: the
// other processes are not traced at all, so a receive from one of them
// has no peer (README: "Pushdown").
func TestTraceFilterSelectsItsPIDsInTheKernel(t *testing.T) {
	needsBPF(t)
	// cat reads what this test writes into its stdin.
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	cat := exec.Command("cat")
	cat.Stdin = r
	if err := cat.Start(); err != nil {
		t.Fatal(err)
	}
	r.Close()
	defer func() { w.Close(); _ = cat.Wait() }()
	pid := strconv.Itoa(cat.Process.Pid)

	events := filepath.Join(t.TempDir(), "events.jsonl")
	tracer := exec.Command(binary, "trace", "--duration", "2s", "--events", events, "--log-level", "info",
		"--filter", "pid == "+pid+" and op == receive")
	pipe, err := tracer.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := tracer.Start(); err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	lines := bufio.NewScanner(pipe)
	for lines.Scan() && !strings.Contains(lines.Text(), "icptrack is tracing") {
		stderr.WriteString(lines.Text() + "\n")
	}
	if !strings.Contains(lines.Text(), `"filter_pids": [`+pid+`]`) {
		t.Fatalf("trace did not select pid %s in the kernel: %q\n%s", pid, lines.Text(), stderr.String())
	}
	copied := make(chan struct{})
	go func() { _, _ = stderr.ReadFrom(pipe); close(copied) }()
	// cat's read in flight since before the programs were attached is
	// not seen whole: let it return, then write what the test looks for.
	if _, err := w.WriteString("x\n"); err != nil {
		t.Fatal(err)
	}
	time.Sleep(200 * time.Millisecond)
	if _, err := w.WriteString("hello\n"); err != nil {
		t.Fatal(err)
	}
	w.Close()
	<-copied
	if err := tracer.Wait(); err != nil {
		t.Fatalf("trace: %v\n%s", err, stderr.String())
	}
	evs := readEvents(t, events)
	got := false
	for _, ev := range evs {
		if ev["pid"] != float64(cat.Process.Pid) || ev["op"] != "receive" {
			t.Errorf("the filter let through %v", ev)
		}
		if ev["bytes"] == 6.0 {
			got = true
			if _, ok := ev["peer_pid"]; ok {
				t.Errorf("cat's read names its writer %v, which the kernel should not have traced", ev["peer_pid"])
			}
		}
	}
	if !got {
		t.Errorf("no 6-byte read by cat in %v", evs)
	}
}
