package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/icptrack/icptrack/internal/ipcload"
	"github.com/icptrack/icptrack/internal/kerneltest"
)

// These tests build icptrack and run it as a user would. Those that trace
// need root; under CI=true they must run.

var binary string

func TestMain(m *testing.M) {
	// The workloads some tests trace are this test binary run again.
	ipcload.Main()
	dir, err := os.MkdirTemp("", "icptrack-cli")
	if err != nil {
		panic(err)
	}
	// Readable by everyone: one test runs it as an unprivileged user.
	_ = os.Chmod(dir, 0o755)
	binary = filepath.Join(dir, "icptrack")
	if out, err := exec.Command("go", "build", "-o", binary, ".").CombinedOutput(); err != nil {
		panic("build icptrack: " + err.Error() + "\n" + string(out))
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

type result struct {
	stdout, stderr string
	code           int
}

func run(t *testing.T, args ...string) result {
	t.Helper()
	return runCmd(t, exec.Command(binary, args...))
}

func runCmd(t *testing.T, cmd *exec.Cmd) result {
	t.Helper()
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		t.Fatalf("run %v: %v", cmd.Args, err)
	}
	return result{stdout.String(), stderr.String(), cmd.ProcessState.ExitCode()}
}

// needsBPF skips a test that loads BPF when not root (fails it in CI).
func needsBPF(t *testing.T) { kerneltest.NeedsRoot(t, "this test") }

// oneLineError checks that a failure says one clear line, starting with
// icptrack:, that contains each of the wanted words.
func oneLineError(t *testing.T, r result, code int, want ...string) {
	t.Helper()
	if r.code != code {
		t.Errorf("exit code %d, want %d; stderr: %s", r.code, code, r.stderr)
	}
	lines := strings.Split(strings.TrimSpace(r.stderr), "\n")
	if len(lines) != 1 || !strings.HasPrefix(lines[0], "icptrack: ") {
		t.Errorf("want one line starting with icptrack:, got %q", r.stderr)
	}
	for _, w := range want {
		if !strings.Contains(r.stderr, w) {
			t.Errorf("error %q does not say %q", r.stderr, w)
		}
	}
}

// selfAs links the test binary into dir under each of names, so that a
// workload (ipcload) runs under a process name of its own; it returns
// the first link's path.
func selfAs(t *testing.T, dir string, names ...string) string {
	t.Helper()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range names {
		if err := os.Link(self, filepath.Join(dir, name)); err != nil {
			t.Fatalf("link the test binary as %s: %v", name, err)
		}
	}
	return filepath.Join(dir, names[0])
}

func readEvents(t *testing.T, path string) []map[string]any {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var evs []map[string]any
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var ev map[string]any
		if err := json.Unmarshal(sc.Bytes(), &ev); err != nil {
			t.Fatalf("event log line is not JSON: %v: %s", err, sc.Text())
		}
		evs = append(evs, ev)
	}
	return evs
}

func TestRunTracesAPipelineAndKeepsStdoutClean(t *testing.T) {
	needsBPF(t)
	events := filepath.Join(t.TempDir(), "events.jsonl")
	r := run(t, "run", "--events", events, "--", "sh", "-c", "printf hello | cat; echo side >/dev/null")
	if r.code != 0 {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	if r.stdout != "hello" {
		t.Errorf("stdout %q, want the command's own output only", r.stdout)
	}
	if !strings.Contains(r.stderr, "0 events dropped") || !strings.Contains(r.stderr, "MECHANISM") {
		t.Errorf("no summary on stderr:\n%s", r.stderr)
	}

	var send, recv map[string]any
	for _, ev := range readEvents(t, events) {
		if ev["mechanism"] != "pipe" || ev["bytes"] != 5.0 {
			continue
		}
		switch ev["op"] {
		case "send":
			if ev["comm"] == "sh" { // cat's own write of hello goes to the test's pipe
				send = ev
			}
		case "receive":
			recv = ev
		}
	}
	if send == nil || recv == nil {
		t.Fatalf("no 5-byte pipe send and receive in the event log")
	}
	if recv["peer_pid"] != send["pid"] || recv["channel"] != send["channel"] || recv["comm"] != "cat" {
		t.Errorf("receive %v does not name the send %v as its peer on the same channel", recv, send)
	}
	if links, _ := recv["links"].([]any); len(links) != 1 || links[0] != send["id"] {
		t.Errorf("receive links %v, want [%v]", recv["links"], send["id"])
	}
}

func TestRunEventsToStdout(t *testing.T) {
	needsBPF(t)
	r := run(t, "run", "--events", "-", "--mechanisms", "pipe", "--", "sh", "-c", "echo hi | cat >/dev/null")
	if r.code != 0 {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	n := 0
	for _, line := range strings.Split(strings.TrimSpace(r.stdout), "\n") {
		var ev map[string]any
		if err := json.Unmarshal([]byte(line), &ev); err != nil {
			t.Fatalf("stdout line is not an event: %q", line)
		}
		n++
	}
	if n < 2 {
		t.Errorf("%d events on stdout, want the pipe's send and receives", n)
	}
}

func TestRunExitsWithTheCommandsCode(t *testing.T) {
	needsBPF(t)
	if r := run(t, "run", "--", "sh", "-c", "exit 3"); r.code != 3 {
		t.Errorf("exit code %d, want 3", r.code)
	}
	if r := run(t, "run", "--", "sh", "-c", "kill -TERM $$"); r.code != 128+15 {
		t.Errorf("exit code %d, want 143 for a command killed by SIGTERM", r.code)
	}
}

func TestRunStopsOnInterruptAndStillSummarises(t *testing.T) {
	needsBPF(t)
	cmd := exec.Command(binary, "run", "--", "sleep", "30")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	// Wait for the command to run under icptrack, then interrupt icptrack.
	deadline := time.Now().Add(10 * time.Second)
	for !hasChild(cmd.Process.Pid, "sleep") {
		if time.Now().After(deadline) {
			cmd.Process.Kill()
			t.Fatal("sleep never started")
		}
		time.Sleep(20 * time.Millisecond)
	}
	start := time.Now()
	_ = cmd.Process.Signal(syscall.SIGINT)
	_ = cmd.Wait()
	if took := time.Since(start); took > 10*time.Second {
		t.Errorf("took %s to stop after SIGINT", took)
	}
	if code := cmd.ProcessState.ExitCode(); code != 130 {
		t.Errorf("exit code %d, want 130 (the command, killed by SIGINT)", code)
	}
	if !strings.Contains(stderr.String(), "events dropped") {
		t.Errorf("no summary after SIGINT:\n%s", stderr.String())
	}
}

// hasChild reports whether any thread of pid has forked a child named comm.
func hasChild(pid int, comm string) bool {
	lists, _ := filepath.Glob(filepath.Join("/proc", strconv.Itoa(pid), "task", "*", "children"))
	for _, list := range lists {
		children, _ := os.ReadFile(list)
		for _, c := range strings.Fields(string(children)) {
			if name, _ := os.ReadFile("/proc/" + c + "/comm"); strings.TrimSpace(string(name)) == comm {
				return true
			}
		}
	}
	return false
}

func TestRunCommandNotFound(t *testing.T) {
	r := run(t, "run", "--", "no-such-command-icptrack")
	oneLineError(t, r, 127, "command not found", "no-such-command-icptrack")
}

func TestRunUnknownMechanismListsTheValidOnes(t *testing.T) {
	r := run(t, "run", "--mechanisms", "pipe,smoke-signal", "--", "true")
	oneLineError(t, r, 2, "smoke-signal", "pipe", "unix_stream", "tcp", "udp")
}

func TestRunBadFlagValues(t *testing.T) {
	oneLineError(t, run(t, "run", "--payload", "99999", "--", "true"), 2, "--payload", "4096")
	oneLineError(t, run(t, "run", "--ring-buffer", "3000", "--", "true"), 2, "--ring-buffer", "power of two")
	oneLineError(t, run(t, "run", "--ring-buffer", "lots", "--", "true"), 2, "--ring-buffer", "not a size")
	oneLineError(t, run(t, "run", "--memory-limit", "1MiB", "--", "true"), 2, "--memory-limit", "at least 32MiB")
	oneLineError(t, run(t, "run", "--memory-limit", "lots", "--", "true"), 2, "--memory-limit", "not a size")
	oneLineError(t, run(t, "run"), 2, "needs a command")
}

func TestRunUnwritableEventsPath(t *testing.T) {
	r := run(t, "run", "--events", "/proc/icptrack/events.jsonl", "--", "true")
	oneLineError(t, r, 1, "cannot write the event log", "/proc/icptrack/events.jsonl", "--events")
}

func TestRunWithoutPrivilegesSaysWhatToDo(t *testing.T) {
	if os.Geteuid() != 0 {
		r := run(t, "run", "--", "true")
		oneLineError(t, r, 1, "root", "CAP_BPF", "CAP_PERFMON")
		return
	}
	// As root, run it as nobody.
	cmd := exec.Command(binary, "run", "--", "true")
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	cmd.Dir = "/"
	r := runCmd(t, cmd)
	oneLineError(t, r, 1, "root", "CAP_BPF", "CAP_PERFMON", "setcap")
}

func TestRunWithoutBTFSaysWhatToDo(t *testing.T) {
	needsBPF(t)
	if _, err := exec.LookPath("unshare"); err != nil {
		t.Skip("unshare is not installed")
	}
	// Hide the kernel's BTF in a private mount namespace.
	cmd := exec.Command("unshare", "--mount", "--propagation", "private", "sh", "-c",
		`mount -t tmpfs none /sys/kernel/btf && exec "$0" run -- true`, binary)
	r := runCmd(t, cmd)
	oneLineError(t, r, 1, "BTF", "CONFIG_DEBUG_INFO_BTF")
}

func TestTraceRejectsBadSelectors(t *testing.T) {
	oneLineError(t, run(t, "trace", "--pid", "999999999"), 2, "--pid", "no such process")
	oneLineError(t, run(t, "trace", "--pid", "12abc"), 2, "--pid", "not a process id")
	oneLineError(t, run(t, "trace", "--mechanisms", "pipe,telepathy"), 2, "telepathy", "posix_mq", "signal")
	oneLineError(t, run(t, "trace", "--duration", "5 minutes"), 2, "--duration")
	oneLineError(t, run(t, "trace", "--comm", "a-name-much-too-long"), 2, "--comm", "15 characters")
	oneLineError(t, run(t, "trace", "--container", "ffffffffffff"), 2, "--container", "no running container")
	oneLineError(t, run(t, "trace", "--cgroup", "/no/such/cgroup"), 2, "--cgroup", "no such cgroup")
}

// icptrack trace selects by name in the kernel, stops after --duration,
// and never reports itself.
func TestTraceByNameForADuration(t *testing.T) {
	needsBPF(t)
	events := filepath.Join(t.TempDir(), "events.jsonl")
	tracer := exec.Command(binary, "trace", "--comm", "cat", "--duration", "3s", "--events", events, "--log-level", "info")
	var stderr bytes.Buffer
	pipe, err := tracer.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := tracer.Start(); err != nil {
		t.Fatal(err)
	}
	// It says when its programs are attached; every cat after that is
	// seen (the count below).
	lines := bufio.NewScanner(pipe)
	for lines.Scan() && !strings.Contains(lines.Text(), "icptrack is tracing") {
		stderr.WriteString(lines.Text() + "\n")
	}
	if !strings.Contains(lines.Text(), `"comms": "cat"`) {
		t.Fatalf("icptrack trace never said it was tracing cat:\n%s", stderr.String())
	}
	copied := make(chan struct{})
	go func() { _, _ = stderr.ReadFrom(pipe); close(copied) }()
	for i := 0; i < 3; i++ {
		if out, err := exec.Command("sh", "-c", "echo hello | cat >/dev/null").CombinedOutput(); err != nil {
			t.Fatalf("%v: %s", err, out)
		}
	}
	start := time.Now()
	<-copied
	if err := tracer.Wait(); err != nil {
		t.Fatalf("trace: %v\n%s", err, stderr.String())
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("trace ran %s past its start, want about 3s in all", took)
	}
	evs := readEvents(t, events)
	cats := 0
	for _, ev := range evs {
		if ev["comm"] != "cat" {
			t.Errorf("event of %v, want only cat's", ev["comm"])
		}
		if ev["op"] == "receive" && ev["bytes"] == 6.0 {
			cats++
		}
	}
	if cats != 3 {
		t.Errorf("%d receives of hello by cat, want 3", cats)
	}
	if !strings.Contains(stderr.String(), "events dropped") {
		t.Errorf("no summary:\n%s", stderr.String())
	}
}

func TestConfigFileMistakesAreOneClearLine(t *testing.T) {
	dir := t.TempDir()
	for name, c := range map[string]struct {
		yaml string
		want []string
	}{
		"unknown.yaml":  {"payload: 16\notlp:\n  endpont: http://localhost:4318\n", []string{"unknown.yaml:3: otlp.endpont", "did you mean otlp.endpoint"}},
		"duration.yaml": {"drain_interval: soon\n", []string{"duration.yaml:1: drain_interval", "not a duration"}},
		"endpoint.yaml": {"otlp:\n  endpoint: collector\n", []string{"endpoint.yaml:2: otlp.endpoint", "http://localhost:4318"}},
	} {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, []byte(c.yaml), 0o644); err != nil {
			t.Fatal(err)
		}
		oneLineError(t, run(t, "run", "--config", path, "--", "true"), 2, c.want...)
	}
	oneLineError(t, run(t, "trace", "--config", filepath.Join(dir, "missing.yaml")), 2, "missing.yaml", "no such file")
}

func TestExportFlagMistakes(t *testing.T) {
	oneLineError(t, run(t, "run", "--otlp-endpoint", "collector", "--", "true"), 2, "--otlp-endpoint", "http://localhost:4318")
	oneLineError(t, run(t, "run", "--otlp-protocol", "http/json", "--", "true"), 2, "--otlp-protocol", "grpc")
	oneLineError(t, run(t, "run", "--otlp-signals", "logs", "--", "true"), 2, "--otlp-signals", "traces")
	oneLineError(t, run(t, "run", "--prometheus", "9464", "--", "true"), 2, "--prometheus", "host:port")
	oneLineError(t, run(t, "run", "--service-name", "{pid}", "--", "true"), 2, "--service-name", "placeholder")
	oneLineError(t, run(t, "run", "--log-level", "loud", "--", "true"), 2, "--log-level", "debug")
	oneLineError(t, run(t, "run", "--trace-sample-ratio", "0", "--", "true"), 2, "--trace-sample-ratio", "above 0 and at most 1")
	oneLineError(t, run(t, "run", "--max-spans-per-second", "-1", "--", "true"), 2, "--max-spans-per-second", "0 for no cap")
	cmd := exec.Command(binary, "run", "--", "true")
	cmd.Env = append(os.Environ(), "OTEL_EXPORTER_OTLP_ENDPOINT=nohost")
	oneLineError(t, runCmd(t, cmd), 2, "OTLP", "not an OTLP endpoint")
}

// Settings in the file apply unless a flag overrides them.
func TestConfigFileSettingsApply(t *testing.T) {
	needsBPF(t)
	dir := t.TempDir()
	events := filepath.Join(dir, "from-file.jsonl")
	path := filepath.Join(dir, "icptrack.yaml")
	if err := os.WriteFile(path, []byte("events: "+events+"\nmechanisms: [pipe]\npayload: 4\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	r := run(t, "run", "--config", path, "--payload", "2", "--", "sh", "-c", "echo hello | cat > /dev/null")
	if r.code != 0 {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	evs := readEvents(t, events)
	if len(evs) == 0 {
		t.Fatal("the events file the config named is empty")
	}
	payloads := 0
	for _, ev := range evs {
		if ev["mechanism"] != "pipe" {
			t.Errorf("mechanism %v traced, the file said only pipe", ev["mechanism"])
		}
		if p, ok := ev["payload"].(string); ok {
			payloads++
			if len(p) > 4 { // base64 of at most 2 bytes
				t.Errorf("payload %q: --payload 2 did not override the file's 4", p)
			}
		}
	}
	if payloads == 0 {
		t.Error("no payload captured: the file's payload setting did not apply")
	}
}

// With --payload, only sends and receives that moved data carry payload
// and payload_truncated: a signal, an end of file, an open have none.
func TestEventLogPayloadOnlyWhereDataMoved(t *testing.T) {
	needsBPF(t)
	events := filepath.Join(t.TempDir(), "events.jsonl")
	r := run(t, "run", "--events", events, "--payload", "8", "--mechanisms", "pipe,signal,posix_shm", "--",
		"sh", "-c", "trap : USR1; kill -USR1 $$; printf hello | cat >/dev/null; : > /dev/shm/icptrack-payload-$$; rm /dev/shm/icptrack-payload-$$")
	if r.code != 0 {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	seen := map[string]int{}
	for _, ev := range readEvents(t, events) {
		_, payload := ev["payload"]
		_, truncated := ev["payload_truncated"]
		data := (ev["op"] == "send" || ev["op"] == "receive") && ev["bytes"].(float64) > 0 && ev["mechanism"] == "pipe"
		if payload != data || truncated != data {
			t.Errorf("%v %v of %v bytes: payload present %v, payload_truncated present %v, want %v",
				ev["mechanism"], ev["op"], ev["bytes"], payload, truncated, data)
		}
		switch {
		case data:
			seen["data"]++
		case ev["mechanism"] == "pipe":
			seen["end of file"]++
		default:
			seen[ev["mechanism"].(string)]++
		}
	}
	for _, k := range []string{"data", "end of file", "signal", "posix_shm"} {
		if seen[k] == 0 {
			t.Errorf("no %s operation in the event log (%v): the test shows nothing", k, seen)
		}
	}
}

// Signals take no time of their own: the summary shows no durations for
// them, in both modes, rather than 1ns.
func TestSummaryShowsNoDurationForSignals(t *testing.T) {
	needsBPF(t)
	for _, mode := range []string{"events", "metrics"} {
		r := run(t, "run", "--mode", mode, "--mechanisms", "signal", "--", "sh", "-c", "trap : USR1; kill -USR1 $$")
		if r.code != 0 {
			t.Fatalf("%s mode: exit %d: %s", mode, r.code, r.stderr)
		}
		rows := 0
		for _, l := range strings.Split(r.stderr, "\n") {
			if f := strings.Fields(l); len(f) > 3 && f[0] == "signal" {
				rows++
				if p50, p99 := f[len(f)-3], f[len(f)-2]; p50 != "—" || p99 != "—" {
					t.Errorf("%s mode: signal row %q shows P50 %s P99 %s, want — —", mode, l, p50, p99)
				}
			}
		}
		if rows == 0 {
			t.Errorf("%s mode: no signal row in the summary:\n%s", mode, r.stderr)
		}
	}
}

func TestMetricsMode(t *testing.T) {
	oneLineError(t, run(t, "run", "--mode", "metrics", "--events", "x.jsonl", "--", "true"), 2, "--events", "--mode events")
	oneLineError(t, run(t, "run", "--mode", "metrics", "--payload", "8", "--", "true"), 2, "--payload", "--mode events")
	oneLineError(t, run(t, "run", "--mode", "fast", "--", "true"), 2, "--mode", "events or metrics")
	needsBPF(t)
	r := run(t, "run", "--mode", "metrics", "--mechanisms", "pipe", "--", "sh", "-c", "for i in 1 2 3 4 5; do echo hello; done | cat > /dev/null")
	if r.code != 0 {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	for _, want := range []string{"icptrack (metrics mode):", "pipe", "cat", "0 events dropped"} {
		if !strings.Contains(r.stderr, want) {
			t.Errorf("summary does not say %q:\n%s", want, r.stderr)
		}
	}
	// cat read the 30 bytes the shell wrote.
	if !regexp.MustCompile(`pipe\s+cat\s+\d+\s+0B\s+30B`).MatchString(r.stderr) {
		t.Errorf("no row for cat receiving 30 bytes:\n%s", r.stderr)
	}
}
