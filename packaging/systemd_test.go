package packaging

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/icptrack/icptrack/internal/kerneltest"
	"github.com/icptrack/icptrack/internal/vmtest"
)

// The unit under real systemd. The other tests here read the unit and do
// what systemd would; TestUnitUnderSystemd boots Debian bookworm with
// systemd as PID 1 under QEMU (internal/vmtest's RootFS, cached in
// ~/.cache/icptrack/rootfs), and there this package's own test binary,
// as TestGuestUnitUnderSystemd, installs make package's .deb with dpkg,
// sets the configuration up as the README says, and drives the service
// with systemctl. Each of its steps prints a result line on the serial
// console, which TestUnitUnderSystemd reads: every step must report ok.
// make test-systemd runs it (make test does, after make package).

// systemdGuestEnv is set in the VM: the test binary is the guest.
const systemdGuestEnv = "ICPTRACK_SYSTEMD_GUEST"

// systemdMarker starts the guest's result lines: "SYSTEMD-TEST: ok
// NAME [DETAIL]" or "SYSTEMD-TEST: fail NAME".
const systemdMarker = "SYSTEMD-TEST: "

// systemdSteps are the guest's steps, in order, by name.
var systemdSteps = []string{"install", "start", "credentials", "reload", "stop", "event-log", "store", "security", "purge"}

// systemdTimeout bounds the VM: TCG boots it in one to two minutes, and
// the steps take one or two more.
const systemdTimeout = 12 * time.Minute

func TestUnitUnderSystemd(t *testing.T) {
	kerneltest.NeedsRoot(t, "building the VM's root file system (mmdebstrap)")
	needTool(t, "mmdebstrap", "mmdebstrap")
	needTool(t, "mkfs.ext4", "e2fsprogs")
	qemu, err := vmtest.QEMU("amd64")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("%v, and CI must run this test", err)
		}
		t.Skip(err)
	}
	deb, err := filepath.Abs(debFile(t, "icptrack", "amd64"))
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%s, %s", qemu, deb)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Minute)
	defer cancel()

	ks, err := vmtest.ParseKernels("amd64-6.1")
	if err != nil {
		t.Fatal(err)
	}
	cache, err := os.UserCacheDir()
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	// adduser: the package depends on it. procps: the unit's
	// ExecReload is its /bin/kill.
	root, err := vmtest.BuildRootFS(ctx, ks[0], []string{"adduser", "procps"}, filepath.Join(cache, "icptrack", "rootfs"), t.Logf)
	if err != nil {
		t.Fatalf("the VM's root file system: %v", err)
	}
	t.Logf("root file system with %s %s: %s (%s)", root.Package, root.Version, root.Image, time.Since(start).Round(time.Second))

	dir := t.TempDir()
	guest := filepath.Join(dir, "packaging.test")
	build := exec.Command("go", "test", "-c", "-o", guest, ".")
	build.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH=amd64")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go test -c: %v\n%s", err, out)
	}
	jobDisk := filepath.Join(dir, "job.ext4")
	command := fmt.Sprintf("%s=1 ./packaging.test -test.v -test.run '^TestGuestUnitUnderSystemd$'", systemdGuestEnv)
	if err := vmtest.WriteJobDisk(ctx, jobDisk, []string{guest, deb}, command); err != nil {
		t.Fatal(err)
	}

	var console lockedLines
	res := vmtest.Run(ctx, root.VM(jobDisk, 1, 2048), systemdTimeout, &console)
	t.Logf("the VM ran %s (%s to the job)", res.Duration.Round(time.Second), res.Boot.Round(time.Second))
	results := systemdResults(console.String())
	failed := res.Err != nil || res.ExitCode != 0
	for _, step := range systemdSteps {
		switch r, ok := results[step]; {
		case !ok:
			t.Errorf("step %s: no result line", step)
			failed = true
		case !strings.HasPrefix(r, "ok"):
			t.Errorf("step %s: %s", step, r)
			failed = true
		default:
			t.Logf("step %s: %s", step, r)
		}
	}
	if res.Err != nil {
		t.Errorf("the VM: %v", res.Err)
	} else if res.ExitCode != 0 {
		t.Errorf("the guest test exited %d", res.ExitCode)
	}
	if failed {
		t.Logf("the VM's console:\n%s", console.String())
	}
}

// systemdResults reads the guest's result lines off the console: "ok
// DETAIL" or "fail DETAIL", by step.
func systemdResults(console string) map[string]string {
	out := map[string]string{}
	for _, line := range strings.Split(console, "\n") {
		i := strings.Index(line, systemdMarker)
		if i < 0 {
			continue
		}
		f := strings.SplitN(strings.TrimSpace(line[i+len(systemdMarker):]), " ", 3)
		if len(f) < 2 || f[0] != "ok" && f[0] != "fail" {
			continue
		}
		out[f[1]] = strings.Join(append(f[:1:1], f[2:]...), " ")
	}
	return out
}

// lockedLines collects what vmtest.Run writes.
type lockedLines struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *lockedLines) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *lockedLines) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

// systemdGuest is what the guest's steps share.
type systemdGuest struct {
	deb      string
	u        unit
	uid, gid int // the icptrack user's
	mainPID  int
	writerIn io.WriteCloser // a line makes the writer write message
	writer   int
	reader   int
	received *lockedLines // what cat read
	writes   int          // how many messages were written
}

const (
	guestUnit   = "icptrack.service"
	guestConfig = "/etc/icptrack/config.yaml"
	guestKeys   = "/etc/icptrack/keyring"
	guestEvents = "/var/log/icptrack/events.jsonl"
	guestStore  = "/var/lib/icptrack/store"
	// guestWriter is dash under a name of its own, so that its
	// operations are told apart by comm and exe.
	guestWriter = "/usr/local/bin/sd-pipe-writer"
)

// TestGuestUnitUnderSystemd is TestUnitUnderSystemd's half inside the VM;
// anywhere else it skips.
func TestGuestUnitUnderSystemd(t *testing.T) {
	if os.Getenv(systemdGuestEnv) == "" {
		t.Skip("runs inside TestUnitUnderSystemd's VM")
	}
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	debs, _ := filepath.Glob(filepath.Join(filepath.Dir(exe), "icptrack_*_amd64.deb"))
	if len(debs) != 1 {
		t.Fatalf("the job disk holds %d icptrack packages, want 1", len(debs))
	}
	g := &systemdGuest{deb: debs[0], received: &lockedLines{}}
	defer g.printJournal()
	steps := map[string]func(t *testing.T){
		"install":     g.install,
		"start":       g.start,
		"credentials": g.credentials,
		"reload":      g.reload,
		"stop":        g.stop,
		"event-log":   g.eventLog,
		"store":       g.store,
		"security":    g.security,
		"purge":       g.purge,
	}
	for _, name := range systemdSteps {
		var detail string
		ok := t.Run(name, func(t *testing.T) {
			steps[name](t)
			detail = stepDetail[t.Name()]
		})
		if ok {
			fmt.Printf("%sok %s %s\n", systemdMarker, name, detail)
			continue
		}
		fmt.Printf("%sfail %s (the test's output above says why)\n", systemdMarker, name)
		if name == "install" || name == "start" {
			return // nothing after makes sense
		}
	}
}

// stepDetail is what a step reports besides ok, by test name.
var stepDetail = map[string]string{}

func guestRun(t *testing.T, name string, args ...string) string {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return strings.TrimSpace(string(out))
}

func systemctlShow(t *testing.T, prop string) string {
	t.Helper()
	return guestRun(t, "systemctl", "show", "--property", prop, "--value", guestUnit)
}

// journal is the unit's messages.
func journal(t *testing.T) string {
	t.Helper()
	return guestRun(t, "journalctl", "--unit", guestUnit, "--output", "cat", "--no-pager")
}

// waitJournal waits for the unit's journal to say something.
func waitJournal(t *testing.T, what string, within time.Duration) {
	t.Helper()
	for deadline := time.Now().Add(within); ; time.Sleep(time.Second) {
		j := journal(t)
		if strings.Contains(j, what) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the journal did not say %q within %s:\n%s\nsystemctl status: %s", what, within, j, statusOf(guestUnit))
		}
	}
}

func statusOf(unit string) string {
	out, _ := exec.Command("systemctl", "status", "--no-pager", "--full", unit).CombinedOutput()
	return string(out)
}

func (g *systemdGuest) printJournal() {
	out, _ := exec.Command("journalctl", "--unit", guestUnit, "--output", "short-monotonic", "--no-pager").CombinedOutput()
	fmt.Printf("%sjournal of %s:\n%s\n", systemdMarker, guestUnit, out)
}

// install: dpkg -i under systemd, and what the postinst makes.
func (g *systemdGuest) install(t *testing.T) {
	debDpkg(t, "-i", g.deb)
	acct, err := user.Lookup("icptrack")
	if err != nil {
		t.Fatalf("the postinst made no icptrack user: %v", err)
	}
	g.uid, _ = strconv.Atoi(acct.Uid)
	g.gid, _ = strconv.Atoi(acct.Gid)
	st, err := os.Stat(guestKeys)
	if err != nil {
		t.Fatalf("the postinst made no keyring: %v", err)
	}
	if sys := st.Sys().(*syscall.Stat_t); sys.Uid != 0 || st.Mode().Perm() != 0o600 {
		t.Errorf("%s is uid %d mode %04o, want root's, 0600", guestKeys, sys.Uid, st.Mode().Perm())
	}
	// The postinst told systemd of the unit: it is known, not started.
	if got := systemctlShow(t, "LoadState"); got != "loaded" {
		t.Errorf("LoadState %q after dpkg -i, want loaded", got)
	}
	if got := systemctlShow(t, "ActiveState"); got != "inactive" {
		t.Errorf("ActiveState %q after dpkg -i, want inactive: the package must not start the service", got)
	}
	g.u = loadUnit(t, "/usr/lib/systemd/system/"+guestUnit)
	if err := os.WriteFile(guestConfig, serviceConfigFrom(t, guestConfig), 0o644); err != nil {
		t.Fatal(err)
	}
	stepDetail[t.Name()] = fmt.Sprintf("icptrack uid %d", g.uid)
}

// start: a writer (root's, running before the service) on a pipe, then
// systemctl start, until the agent says it traces, then cat to read
// the pipe. (A read that is waiting when tracing starts is not seen:
// its system call began before.)
func (g *systemdGuest) start(t *testing.T) {
	copyFile(t, "/bin/dash", guestWriter, 0o755)
	pr, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	writer := exec.Command(guestWriter, "-c", `while read go; do printf %s "$0"; done`, message)
	writer.Stdout = pw
	if g.writerIn, err = writer.StdinPipe(); err != nil {
		t.Fatal(err)
	}
	if err := writer.Start(); err != nil {
		t.Fatal(err)
	}
	pw.Close()
	g.writer = writer.Process.Pid

	start := time.Now()
	guestRun(t, "systemctl", "start", guestUnit)
	// Under TCG the verifier takes a while.
	waitJournal(t, "icptrack is tracing", 4*time.Minute)
	if got := guestRun(t, "systemctl", "is-active", guestUnit); got != "active" {
		t.Fatalf("systemctl is-active: %s", got)
	}
	g.mainPID, _ = strconv.Atoi(systemctlShow(t, "MainPID"))
	if g.mainPID == 0 {
		t.Fatalf("no MainPID:\n%s", statusOf(guestUnit))
	}
	stepDetail[t.Name()] = fmt.Sprintf("tracing after %s", time.Since(start).Round(time.Second))
	reader := exec.Command("cat")
	reader.Stdin, reader.Stdout = pr, g.received
	if err := reader.Start(); err != nil {
		t.Fatal(err)
	}
	pr.Close()
	g.reader = reader.Process.Pid
	g.write(t)
}

// write makes the writer send message once more, and waits for cat.
func (g *systemdGuest) write(t *testing.T) {
	t.Helper()
	if _, err := io.WriteString(g.writerIn, "go\n"); err != nil {
		t.Fatal(err)
	}
	g.writes++
	want := strings.Repeat(message, g.writes)
	for deadline := time.Now().Add(10 * time.Second); g.received.String() != want; time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("cat read %q, want %q", g.received.String(), want)
		}
	}
	time.Sleep(2 * time.Second) // a few drains of the ring buffer
}

// credentials: what the kernel says the service runs with.
func (g *systemdGuest) credentials(t *testing.T) {
	status := procStatus(t, g.mainPID)
	caps := g.u.capabilities(t, "AmbientCapabilities")
	want := maskString(capMask(t, caps))
	for _, line := range []string{"CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"} {
		if status[line] != want {
			t.Errorf("%s %s, want exactly the unit's %v (%s)", line, status[line], caps, want)
		}
	}
	// DynamicUser= takes the package's user when it exists.
	uid, gid := strconv.Itoa(g.uid), strconv.Itoa(g.gid)
	if status["Uid"] != strings.Repeat(uid+"\t", 3)+uid || status["Gid"] != strings.Repeat(gid+"\t", 3)+gid {
		t.Errorf("Uid %q Gid %q, want the icptrack user's %d and group's %d throughout", status["Uid"], status["Gid"], g.uid, g.gid)
	}
	if status["NoNewPrivs"] != "1" {
		t.Errorf("NoNewPrivs %q, want 1", status["NoNewPrivs"])
	}
	if status["Seccomp"] != "2" {
		t.Errorf("Seccomp %q, want 2 (SystemCallFilter=)", status["Seccomp"])
	}
	if exe, _ := os.Readlink(fmt.Sprintf("/proc/%d/exe", g.mainPID)); exe != "/usr/bin/icptrack" {
		t.Errorf("MainPID %d runs %q", g.mainPID, exe)
	}
	stepDetail[t.Name()] = fmt.Sprintf("uid %s CapEff %s", uid, status["CapEff"])
}

// reload: systemctl reload re-reads the configuration in the same
// process, which goes on tracing.
func (g *systemdGuest) reload(t *testing.T) {
	guestRun(t, "systemctl", "reload", guestUnit)
	waitJournal(t, "reloaded the configuration", time.Minute)
	if pid, _ := strconv.Atoi(systemctlShow(t, "MainPID")); pid != g.mainPID {
		t.Errorf("MainPID %d after the reload, was %d: reload restarted the service", pid, g.mainPID)
	}
	if got := guestRun(t, "systemctl", "is-active", guestUnit); got != "active" {
		t.Fatalf("systemctl is-active after the reload: %s", got)
	}
	g.write(t)
}

// stop: SIGTERM, and a clean exit. systemd unloads a unit that stopped
// cleanly, and with it the main process's exit status, so the journal
// says how it ended; a failed unit stays loaded, failed.
func (g *systemdGuest) stop(t *testing.T) {
	start := time.Now()
	guestRun(t, "systemctl", "stop", guestUnit)
	took := time.Since(start)
	g.writerIn.Close()
	for prop, want := range map[string]string{"ActiveState": "inactive", "Result": "success"} {
		if got := systemctlShow(t, prop); got != want {
			t.Errorf("%s %q after systemctl stop, want %q", prop, got, want)
		}
	}
	// The agent's last words: the store's last block was written.
	waitJournal(t, "operations written", 10*time.Second)
	if j := journal(t); !strings.Contains(j, guestUnit+": Deactivated successfully") || strings.Contains(j, "Main process exited") {
		t.Errorf("the journal does not say the service ended cleanly:\n%s", j)
	}
	stepDetail[t.Name()] = fmt.Sprintf("in %s", took.Round(100*time.Millisecond))
}

// eventLog: the writer's sends and cat's receives, before and after the
// reload, in the LogsDirectory, the service's and no one else's.
func (g *systemdGuest) eventLog(t *testing.T) {
	sends, receives := 0, 0
	for _, ev := range readEvents(t, guestEvents) {
		if ev["mechanism"] != "pipe" || ev["bytes"] != float64(len(message)) {
			continue
		}
		switch {
		case ev["op"] == "send" && ev["pid"] == float64(g.writer):
			sends++
			// exe of a root process that ran before the service:
			// CAP_SYS_PTRACE through ProtectProc=invisible.
			if ev["comm"] != filepath.Base(guestWriter) || ev["exe"] != guestWriter {
				t.Errorf("the writer's send has comm %v exe %v, want %s", ev["comm"], ev["exe"], guestWriter)
			}
		case ev["op"] == "receive" && ev["pid"] == float64(g.reader):
			receives++
			if ev["peer_pid"] != float64(g.writer) {
				t.Errorf("cat's receive has peer_pid %v, want the writer's %d", ev["peer_pid"], g.writer)
			}
		}
	}
	if sends != g.writes || receives != g.writes {
		t.Errorf("the event log has %d sends by the writer (pid %d) and %d receives by cat (pid %d), want %d of each", sends, g.writer, receives, g.reader, g.writes)
	}
	real, err := filepath.EvalSymlinks(guestEvents)
	if err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(real)
	if err != nil {
		t.Fatal(err)
	}
	if sys := st.Sys().(*syscall.Stat_t); int(sys.Uid) != g.uid || st.Mode().Perm()&0o077 != 0 {
		t.Errorf("%s is uid %d mode %04o, want the service's uid %d and no access for others", real, sys.Uid, st.Mode().Perm(), g.uid)
	}
	stepDetail[t.Name()] = fmt.Sprintf("%d sends, %d receives in %s", sends, receives, real)
}

// store: icptrack verify passes with the package's keyring, and query
// finds the writer's sends.
func (g *systemdGuest) store(t *testing.T) {
	sends, out := storeSends(t, guestStore, guestKeys, g.writer)
	if sends != g.writes {
		t.Errorf("the store has %d sends of %d bytes by the writer (pid %d), want %d:\n%s", sends, len(message), g.writer, g.writes, out)
	}
	stepDetail[t.Name()] = fmt.Sprintf("verify PASS, %d sends queried", sends)
}

// security: systemd-analyze security of the unit as loaded, held to
// the score TestUnitExposure holds the file to.
func (g *systemdGuest) security(t *testing.T) {
	score, out := exposure(t, "systemd-analyze", guestUnit)
	if score > maxExposure {
		t.Errorf("exposure %.1f under systemd, more than the unit's %.1f\n%s", score, maxExposure, out)
	}
	stepDetail[t.Name()] = fmt.Sprintf("exposure %.1f", score)
}

// purge: with the service running again, dpkg -r stops it (prerm), and
// dpkg -P takes the event log with it, wherever systemd keeps it.
func (g *systemdGuest) purge(t *testing.T) {
	guestRun(t, "systemctl", "start", guestUnit)
	real, err := filepath.EvalSymlinks(filepath.Dir(guestEvents))
	if err != nil {
		t.Fatal(err)
	}
	debDpkg(t, "-r", "icptrack")
	if got := systemctlShow(t, "ActiveState"); got != "inactive" && got != "failed" {
		t.Errorf("ActiveState %q after dpkg -r, want the service stopped", got)
	}
	if got := systemctlShow(t, "LoadState"); got != "not-found" {
		t.Errorf("LoadState %q after dpkg -r, want not-found (daemon-reload)", got)
	}
	debDpkg(t, "-P", "icptrack")
	for _, p := range []string{filepath.Dir(guestEvents), real} {
		if debExists(p) {
			t.Errorf("%s is left after dpkg -P", p)
		}
	}
	if !debExists(guestStore) {
		t.Errorf("%s is gone after dpkg -P: the store must be kept", guestStore)
	}
	stepDetail[t.Name()] = "the event log was in " + real
}
