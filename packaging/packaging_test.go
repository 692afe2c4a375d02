package packaging

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/icptrack/icptrack/internal/config"
	"github.com/icptrack/icptrack/internal/kerneltest"
	"github.com/icptrack/icptrack/store"
)

// These tests read icptrack.service and run its ExecStart as systemd
// would: as the unit's user, with exactly its capabilities (inheritable,
// ambient and bounding set), no new privileges, its /proc view and umask.
// systemd is not PID 1 on the machines the tests run on, so setpriv and
// unshare (util-linux) do what it would do.

const unitFile = "icptrack.service"

// maxExposure is systemd-analyze security's score for the unit: a change
// that loosens the unit raises it and fails TestUnitExposure.
const maxExposure = 1.8

var binary string

func TestMain(m *testing.M) {
	if os.Getenv(systemdGuestEnv) != "" {
		// Inside TestUnitUnderSystemd's VM, which has no go: the
		// package installed the binary.
		binary = "/usr/bin/icptrack"
		os.Exit(m.Run())
	}
	dir, err := os.MkdirTemp("", "icptrack-packaging")
	if err != nil {
		panic(err)
	}
	// Readable by everyone: the service runs it as its own user.
	_ = os.Chmod(dir, 0o755)
	binary = filepath.Join(dir, "icptrack")
	if out, err := exec.Command("go", "build", "-o", binary, "../cmd/icptrack").CombinedOutput(); err != nil {
		panic("build icptrack: " + err.Error() + "\n" + string(out))
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// needTool skips without tool, or under CI=true fails: CI installs it.
func needTool(t *testing.T, tool, pkg string) string {
	t.Helper()
	p, err := exec.LookPath(tool)
	if err == nil {
		return p
	}
	if os.Getenv("CI") == "true" {
		t.Fatalf("%s is missing, and CI must run this test: apt-get install %s", tool, pkg)
	}
	t.Skipf("%s is missing: apt-get install %s", tool, pkg)
	return ""
}

// TestUnitVerifies runs systemd-analyze verify on the unit, in a root
// that holds the programs its Exec lines name, and fails on any warning.
func TestUnitVerifies(t *testing.T) {
	analyze := needTool(t, "systemd-analyze", "systemd")
	u := loadUnit(t, unitFile)
	root := t.TempDir()
	units, err := filepath.EvalSymlinks("/lib/systemd/system")
	if err != nil {
		t.Fatalf("the host's systemd units (which the unit's targets are): %v", err)
	}
	into := filepath.Join(root, strings.TrimPrefix(filepath.Dir(units), "/"))
	if err := os.MkdirAll(into, 0o755); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("cp", "-a", units, into).CombinedOutput(); err != nil {
		t.Fatalf("copy %s: %v\n%s", units, err, out)
	}
	for _, key := range []string{"ExecStart", "ExecReload"} {
		prog := strings.Fields(u.service(t, key))[0]
		from := binary // what the package installs at ExecStart's path
		if key != "ExecStart" {
			from = needTool(t, prog, "procps") // /bin/kill
		}
		copyFile(t, from, filepath.Join(root, prog), 0o755)
	}
	copyFile(t, unitFile, filepath.Join(root, "etc/systemd/system", unitFile), 0o644)
	out, err := exec.Command(analyze, "verify", "--root="+root, unitFile).CombinedOutput()
	if err != nil || len(bytes.TrimSpace(out)) > 0 {
		t.Fatalf("systemd-analyze verify %s: %v\n%s", unitFile, err, out)
	}
}

// exposure runs systemd-analyze (analyze) security on unit, with args
// before it, and returns the overall exposure level and the output.
func exposure(t *testing.T, analyze, unit string, args ...string) (float64, []byte) {
	t.Helper()
	out, err := exec.Command(analyze, append(append([]string{"security", "--no-pager"}, args...), unit)...).CombinedOutput()
	if err != nil {
		t.Fatalf("systemd-analyze security: %v\n%s", err, out)
	}
	m := regexp.MustCompile(`Overall exposure level for ` + regexp.QuoteMeta(unit) + `: ([0-9.]+)`).FindSubmatch(out)
	if m == nil {
		t.Fatalf("no exposure level in systemd-analyze security's output:\n%s", out)
	}
	score, _ := strconv.ParseFloat(string(m[1]), 64)
	return score, out
}

// TestUnitExposure holds the unit to the exposure score it reached.
func TestUnitExposure(t *testing.T) {
	score, out := exposure(t, needTool(t, "systemd-analyze", "systemd"), unitFile, "--offline=yes")
	if score > maxExposure {
		t.Errorf("exposure %.1f, more than the %.1f the unit reached: a setting was loosened (README: \"Why each setting\")\n%s", score, maxExposure, out)
	}
}

// serviceConfig is config.yaml set up for the service as the README
// says: its event log and store lines uncommented, and log_level info,
// so that the agent logs "icptrack is tracing".
func serviceConfig(t *testing.T) []byte {
	t.Helper()
	return serviceConfigFrom(t, "config.yaml")
}

// serviceConfigFrom is serviceConfig of the file at path.
func serviceConfigFrom(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	block := false
	for _, line := range strings.Split(string(b), "\n") {
		switch {
		case strings.HasPrefix(line, "#events:"), strings.HasPrefix(line, "#store:"):
			line, block = line[1:], strings.HasPrefix(line, "#store:")
		case block && strings.HasPrefix(line, "#  "):
			line = line[1:]
		default:
			block = false
		}
		out = append(out, line)
	}
	conf := strings.Join(out, "\n") + "\nlog_level: info\n"
	if !strings.Contains(conf, "\nevents: ") || !strings.Contains(conf, "\nstore:\n  dir: ") {
		t.Fatalf("%s has no #events: and #store: lines to uncomment:\n%s", path, b)
	}
	return []byte(conf)
}

// TestConfigGoesWhereTheUnitKeepsIt: the default configuration writes the
// store into the StateDirectory, the event log into the LogsDirectory, and
// is the file ExecStart reads.
func TestConfigGoesWhereTheUnitKeepsIt(t *testing.T) {
	u := loadUnit(t, unitFile)
	f, err := config.Parse("config.yaml, set up for the service", serviceConfig(t))
	if err != nil {
		t.Fatal(err)
	}
	state := "/var/lib/" + u.service(t, "StateDirectory") + "/"
	logs := "/var/log/" + u.service(t, "LogsDirectory") + "/"
	if !strings.HasPrefix(f.Store.Dir, state) {
		t.Errorf("store.dir %q is outside the unit's StateDirectory %s", f.Store.Dir, state)
	}
	if !strings.HasPrefix(f.Events, logs) {
		t.Errorf("events %q is outside the unit's LogsDirectory %s", f.Events, logs)
	}
	if f.Has("store.key_file") {
		t.Errorf("store.key_file is set: the unit hands the keyring in as a credential")
	}
	if argv := strings.Fields(u.service(t, "ExecStart")); configArg(argv) != config.DefaultPath {
		t.Errorf("ExecStart %q does not read %s", argv, config.DefaultPath)
	}
}

// TestServiceRunsWithExactlyItsCapabilities runs the unit's command with
// its capabilities, checks that it traces a pipe into its event log and
// its store and holds no capability more, then runs it once without each
// capability and checks that it fails, or loses what that one is for.
func TestServiceRunsWithExactlyItsCapabilities(t *testing.T) {
	kerneltest.NeedsRoot(t, "running the service's command as its user")
	needTool(t, "setpriv", "util-linux")
	needTool(t, "unshare", "util-linux")
	u := loadUnit(t, unitFile)
	caps := u.capabilities(t, "AmbientCapabilities")
	if bounding := u.capabilities(t, "CapabilityBoundingSet"); capMask(t, bounding) != capMask(t, caps) {
		t.Fatalf("CapabilityBoundingSet %v is not AmbientCapabilities %v: the unit should bound it to what it grants", bounding, caps)
	}
	if u.service(t, "NoNewPrivileges") != "yes" {
		t.Errorf("NoNewPrivileges=%q, want yes", u.service(t, "NoNewPrivileges"))
	}

	r := runService(t, u, caps)
	if r.exitErr != nil || !r.traced {
		t.Fatalf("the service did not run: %v\n%s", r.exitErr, r.stderr)
	}
	want := capMask(t, caps)
	for _, line := range []string{"CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"} {
		if got := r.status[line]; got != maskString(want) {
			t.Errorf("%s %s, want exactly the unit's %v (%s)", line, got, caps, maskString(want))
		}
	}
	if r.status["NoNewPrivs"] != "1" {
		t.Errorf("NoNewPrivs %q, want 1", r.status["NoNewPrivs"])
	}
	if uid := strconv.Itoa(r.uid); r.status["Uid"] != strings.Repeat(uid+"\t", 3)+uid {
		t.Errorf("Uid %q, want %d throughout", r.status["Uid"], r.uid)
	}
	send, receive := r.pipeOps(t)
	if send == nil || receive == nil {
		t.Fatalf("the event log has no send by the writer (pid %d) and receive by cat (pid %d) of %d bytes:\n%s",
			r.writer, r.reader, len(message), r.stderr)
	}
	if receive["peer_pid"] != float64(r.writer) {
		t.Errorf("cat's receive has peer_pid %v, want the writer's %d", receive["peer_pid"], r.writer)
	}
	if send["exe"] != r.writerExe {
		t.Errorf("the writer's send has exe %v, want %s (read from /proc: CAP_SYS_PTRACE)", send["exe"], r.writerExe)
	}
	r.checkStore(t)
	r.checkOwnFiles(t)

	// Without each capability: the evidence that it is needed.
	for _, c := range caps {
		t.Run("without "+c, func(t *testing.T) {
			w := runService(t, u, without(caps, c))
			switch c {
			case "CAP_BPF", "CAP_PERFMON":
				// The kernel refuses tracing programs without
				// CAP_PERFMON and maps and programs without CAP_BPF;
				// icptrack says so before it tries.
				if w.traced || w.exitErr == nil {
					t.Fatalf("icptrack traced without %s:\n%s", c, w.stderr)
				}
				if !strings.Contains(w.stderr, "not permitted to load eBPF programs") || !strings.Contains(w.stderr, "CAP_BPF and CAP_PERFMON") {
					t.Errorf("without %s, the error does not say what to grant:\n%s", c, w.stderr)
				}
			case "CAP_SYS_PTRACE":
				// /proc/PID/exe of another user's process needs ptrace
				// read access: a process running before icptrack
				// started has no executable in its operations.
				if w.exitErr != nil || !w.traced {
					t.Fatalf("without %s: %v\n%s", c, w.exitErr, w.stderr)
				}
				send, _ := w.pipeOps(t)
				if send == nil {
					t.Fatalf("without %s, the writer's send is missing:\n%s", c, w.stderr)
				}
				if exe, ok := send["exe"]; ok {
					t.Errorf("without %s, the writer's send still has exe %v: the capability is not needed", c, exe)
				}
			default:
				t.Errorf("the unit grants %s, and this test has no evidence that it is needed: add a case", c)
			}
		})
	}
}

// message is what the traced pipe carries.
const message = "hello from the packaging test"

// serviceRun is one run of the unit's command.
type serviceRun struct {
	uid            int
	dir, state     string
	logs, creds    string
	traced         bool              // it said "icptrack is tracing"
	status         map[string]string // its /proc/PID/status while tracing
	stderr         string
	exitErr        error
	events         []map[string]any
	writer, reader int // the pipe's pids
	writerExe      string
}

// runService runs ExecStart with caps, as the unit's user, with the
// configuration's paths moved into a temporary directory of that user's;
// a root-owned shell that started before it writes message into a pipe
// once it traces, and cat reads it.
func runService(t *testing.T, u unit, caps []string) *serviceRun {
	t.Helper()
	r := &serviceRun{uid: serviceUID(t, u)}
	dir, err := os.MkdirTemp("", "icptrack-service")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	_ = os.Chmod(dir, 0o755)
	r.dir = dir
	// What systemd makes: StateDirectory, LogsDirectory (with their
	// modes) and the credentials directory, all the service user's.
	r.state, r.logs, r.creds = filepath.Join(dir, "state"), filepath.Join(dir, "logs"), filepath.Join(dir, "credentials")
	for d, mode := range map[string]string{r.state: u.service(t, "StateDirectoryMode"), r.logs: u.service(t, "LogsDirectoryMode"), r.creds: "0500"} {
		m, err := strconv.ParseUint(mode, 8, 32)
		if err != nil {
			t.Fatalf("directory mode %q: %v", mode, err)
		}
		if err := os.Mkdir(d, os.FileMode(m)); err != nil {
			t.Fatal(err)
		}
		if err := os.Chown(d, r.uid, r.uid); err != nil {
			t.Fatal(err)
		}
	}
	// LoadCredential: the keyring, made by root, handed in read-only.
	name, _, _ := strings.Cut(u.service(t, "LoadCredential"), ":")
	if name != store.CredentialName {
		t.Fatalf("LoadCredential names %q; icptrack reads %s", name, store.CredentialName)
	}
	keyring := filepath.Join(r.creds, name)
	if out, err := exec.Command(binary, "keys", "new", "--keyring", keyring).CombinedOutput(); err != nil {
		t.Fatalf("keys new: %v\n%s", err, out)
	}
	if err := os.Chown(keyring, r.uid, r.uid); err != nil {
		t.Fatal(err)
	}
	_ = os.Chmod(keyring, 0o400)

	// The default configuration set up for the service as the README
	// says, with its directories moved.
	conf := string(serviceConfig(t))
	for from, to := range map[string]string{"/var/lib/" + u.service(t, "StateDirectory"): r.state, "/var/log/" + u.service(t, "LogsDirectory"): r.logs} {
		if !strings.Contains(conf, from+"/") {
			t.Fatalf("config.yaml writes nothing under %s", from)
		}
		conf = strings.ReplaceAll(conf, from+"/", to+"/")
	}
	confPath := filepath.Join(dir, "config.yaml")
	if err := os.WriteFile(confPath, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}

	argv := strings.Fields(u.service(t, "ExecStart"))
	if argv[0] != "/usr/bin/icptrack" || configArg(argv) == "" {
		t.Fatalf("ExecStart %q: want /usr/bin/icptrack … --config FILE", argv)
	}
	argv[0] = binary
	for i := range argv {
		if argv[i] == "--config" {
			argv[i+1] = confPath
		}
	}

	// The writer: root's, running before the service starts.
	pr, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	writer := exec.Command("sh", "-c", `read go; printf %s "$0"; read stop`, message)
	writer.Stdout = pw
	wgo, err := writer.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := writer.Start(); err != nil {
		t.Fatal(err)
	}
	pw.Close()
	r.writer = writer.Process.Pid
	defer func() {
		wgo.Close()
		_ = writer.Wait()
	}()

	agent := exec.Command("unshare", serviceArgs(t, u, r.uid, caps, argv)...)
	agent.Env = []string{"PATH=/usr/bin:/bin", "CREDENTIALS_DIRECTORY=" + r.creds, "STATE_DIRECTORY=" + r.state, "LOGS_DIRECTORY=" + r.logs}
	stderr, err := agent.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := agent.Start(); err != nil {
		t.Fatal(err)
	}
	var errText bytes.Buffer
	tracing := make(chan bool, 1)
	copied := make(chan struct{})
	go func() {
		lines := bufio.NewScanner(stderr)
		said := false
		for lines.Scan() {
			errText.WriteString(lines.Text() + "\n")
			if !said && strings.Contains(lines.Text(), "icptrack is tracing") {
				said = true
				tracing <- true
			}
		}
		if !said {
			tracing <- false
		}
		close(copied)
	}()
	finish := func() {
		<-copied
		r.exitErr = agent.Wait()
		r.stderr = errText.String()
	}
	select {
	case r.traced = <-tracing:
	case <-time.After(60 * time.Second):
		_ = agent.Process.Kill()
		finish()
		t.Fatalf("the service did not start tracing in 60s:\n%s", r.stderr)
	}
	if !r.traced {
		pr.Close()
		finish()
		return r
	}
	r.status = procStatus(t, agent.Process.Pid)
	if exe, _ := os.Readlink(fmt.Sprintf("/proc/%d/exe", agent.Process.Pid)); exe != binary {
		t.Errorf("pid %d runs %s, not icptrack: the wrapper did not exec it", agent.Process.Pid, exe)
	}

	var got bytes.Buffer
	reader := exec.Command("cat")
	reader.Stdin, reader.Stdout = pr, &got
	if err := reader.Start(); err != nil {
		t.Fatal(err)
	}
	pr.Close()
	r.reader = reader.Process.Pid
	if _, err := wgo.Write([]byte("go\n")); err != nil {
		t.Fatal(err)
	}
	// The writer waits, alive, for its second line: icptrack reads its
	// /proc entry when its first operation arrives.
	r.writerExe, _ = os.Readlink(fmt.Sprintf("/proc/%d/exe", r.writer))
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline) && r.reader != 0; time.Sleep(50 * time.Millisecond) {
		if strings.Contains(got.String(), message) {
			break
		}
	}
	time.Sleep(time.Second) // a few drains
	_ = agent.Process.Signal(syscall.SIGTERM)
	done := make(chan struct{})
	go func() { finish(); close(done) }()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		_ = agent.Process.Kill()
		<-done
		t.Errorf("the service did not stop within 30s of SIGTERM")
	}
	wgo.Close()
	_ = writer.Wait()
	_ = reader.Wait()
	r.events = readEvents(t, r.eventLog(t))
	return r
}

// serviceArgs is unshare's command line for the unit's command: /proc as
// ProtectProc= and ProcSubset= make it, the unit's umask, then setpriv
// with its user, capabilities and no new privileges.
func serviceArgs(t *testing.T, u unit, uid int, caps []string, argv []string) []string {
	t.Helper()
	var procOpts []string
	switch v := u.service(t, "ProcSubset"); v {
	case "", "all":
	case "pid":
		procOpts = append(procOpts, "subset=pid")
	default:
		t.Fatalf("ProcSubset=%s: this test knows all and pid", v)
	}
	switch v := u.service(t, "ProtectProc"); v {
	case "", "default":
	case "invisible", "ptraceable", "noaccess":
		procOpts = append(procOpts, "hidepid="+v)
	default:
		t.Fatalf("ProtectProc=%s is not a ProtectProc value", v)
	}
	script := ""
	if len(procOpts) > 0 {
		script += "mount -t proc -o " + strings.Join(procOpts, ",") + " proc /proc && "
	}
	if m := u.service(t, "UMask"); m != "" {
		script += "umask " + m + " && "
	}
	script += `exec "$@"`
	id := strconv.Itoa(uid)
	c := setprivCaps(caps)
	args := []string{"--mount", "--propagation", "private", "sh", "-c", script, "sh",
		"setpriv", "--reuid", id, "--regid", id, "--clear-groups", "--inh-caps", c, "--ambient-caps", c, "--bounding-set", c}
	if u.service(t, "NoNewPrivileges") == "yes" {
		args = append(args, "--no-new-privs")
	}
	return append(append(args, "--"), argv...)
}

// serviceUID is the uid the unit runs as: with DynamicUser=yes, one of
// systemd's dynamic range (61184–65519) that no account holds, as systemd
// would pick; without, User='s.
func serviceUID(t *testing.T, u unit) int {
	t.Helper()
	name := u.service(t, "User")
	if u.service(t, "DynamicUser") != "yes" {
		acct, err := user.Lookup(name)
		if err != nil {
			t.Fatalf("User=%s: %v (create it, as the package's postinst would)", name, err)
		}
		uid, _ := strconv.Atoi(acct.Uid)
		return uid
	}
	for uid := 61184; uid <= 65519; uid++ {
		id := strconv.Itoa(uid)
		if _, err := user.LookupId(id); err == nil {
			continue
		}
		if _, err := user.LookupGroupId(id); err == nil {
			continue
		}
		return uid
	}
	t.Fatal("no free uid in systemd's dynamic range")
	return 0
}

func configArg(argv []string) string {
	for i, a := range argv {
		if a == "--config" && i+1 < len(argv) {
			return argv[i+1]
		}
	}
	return ""
}

func (r *serviceRun) eventLog(t *testing.T) string {
	t.Helper()
	return filepath.Join(r.logs, "events.jsonl")
}

// pipeOps finds the writer's send and cat's receive of message.
func (r *serviceRun) pipeOps(t *testing.T) (send, receive map[string]any) {
	t.Helper()
	for _, ev := range r.events {
		if ev["mechanism"] != "pipe" || ev["bytes"] != float64(len(message)) {
			continue
		}
		switch {
		case ev["op"] == "send" && ev["pid"] == float64(r.writer):
			send = ev
		case ev["op"] == "receive" && ev["pid"] == float64(r.reader):
			receive = ev
		}
	}
	return send, receive
}

// checkStore verifies the store with the credential's keyring, and reads
// the writer's send back from it.
func (r *serviceRun) checkStore(t *testing.T) {
	t.Helper()
	dir := filepath.Join(r.state, "store")
	keyring := filepath.Join(r.creds, store.CredentialName)
	if sends, out := storeSends(t, dir, keyring, r.writer); sends == 0 {
		t.Errorf("the store has no send of %d bytes by the writer (pid %d):\n%s", len(message), r.writer, out)
	}
}

// storeSends checks the store in dir with icptrack verify, and counts
// the sends of the test's message by pid that icptrack query finds in
// it; out is what query printed.
func storeSends(t *testing.T, dir, keyring string, pid int) (sends int, out []byte) {
	t.Helper()
	out, err := exec.Command(binary, "verify", dir, "--keyring", keyring).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "PASS") {
		t.Errorf("icptrack verify %s: %v\n%s", dir, err, out)
	}
	out, err = exec.Command(binary, "query", dir, "--keyring", keyring, "--filter", fmt.Sprintf("pid == %d", pid)).Output()
	if err != nil {
		t.Fatalf("icptrack query %s: %v", dir, err)
	}
	for _, ev := range parseEvents(t, out) {
		if ev["op"] == "send" && ev["bytes"] == float64(len(message)) {
			sends++
		}
	}
	return sends, out
}

// checkOwnFiles: what the service writes is its user's, and with the
// unit's UMask, nobody else's to read.
func (r *serviceRun) checkOwnFiles(t *testing.T) {
	t.Helper()
	for _, p := range []string{r.eventLog(t), filepath.Join(r.state, "store", "000000000001.seg")} {
		info, err := os.Stat(p)
		if err != nil {
			t.Error(err)
			continue
		}
		st := info.Sys().(*syscall.Stat_t)
		if int(st.Uid) != r.uid || info.Mode().Perm()&0o077 != 0 {
			t.Errorf("%s is uid %d mode %04o, want the service's uid %d and no access for others", p, st.Uid, info.Mode().Perm(), r.uid)
		}
	}
}

// procStatus reads a process's status lines, by name.
func procStatus(t *testing.T, pid int) map[string]string {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, line := range strings.Split(string(b), "\n") {
		if k, v, ok := strings.Cut(line, ":"); ok {
			out[k] = strings.TrimSpace(v)
		}
	}
	return out
}

func readEvents(t *testing.T, path string) []map[string]any {
	t.Helper()
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	return parseEvents(t, b)
}

func parseEvents(t *testing.T, b []byte) []map[string]any {
	t.Helper()
	var evs []map[string]any
	for _, line := range bytes.Split(b, []byte("\n")) {
		if len(bytes.TrimSpace(line)) == 0 {
			continue
		}
		var ev map[string]any
		if err := json.Unmarshal(line, &ev); err != nil {
			t.Fatalf("event log line %q: %v", line, err)
		}
		evs = append(evs, ev)
	}
	return evs
}

func copyFile(t *testing.T, from, to string, mode os.FileMode) {
	t.Helper()
	b, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Dir(to), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, b, mode); err != nil {
		t.Fatal(err)
	}
}
