package main

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"runtime"
	"strings"
	"syscall"
	"testing"
)

func versionJSON(t *testing.T, r result) versionReport {
	t.Helper()
	if r.code != 0 {
		t.Fatalf("version exited %d: %s", r.code, r.stderr)
	}
	var v versionReport
	if err := json.Unmarshal([]byte(r.stdout), &v); err != nil {
		t.Fatalf("version --json is not one JSON object: %v\n%s", err, r.stdout)
	}
	return v
}

// goVersionM is what go version -m says of a binary: its Go version, the
// main module's version, and its build settings.
func goVersionM(t *testing.T, bin string) (goVersion, modVersion string, settings map[string]string) {
	t.Helper()
	out, err := exec.Command("go", "version", "-m", bin).Output()
	if err != nil {
		t.Fatalf("go version -m: %v", err)
	}
	settings = map[string]string{}
	for i, line := range strings.Split(string(out), "\n") {
		f := strings.Split(strings.TrimSpace(line), "\t")
		switch {
		case i == 0:
			goVersion = strings.TrimSpace(line[strings.LastIndex(line, " ")+1:])
		case f[0] == "mod" && len(f) >= 3:
			modVersion = f[2]
		case f[0] == "build" && len(f) == 2:
			k, v, _ := strings.Cut(f[1], "=")
			settings[k] = strings.Trim(v, `"`)
		}
	}
	return goVersion, modVersion, settings
}

// bpfObjectID is the SHA-256 of the committed object for this
// architecture, read from the file, to its first 12 hex digits.
func bpfObjectID(t *testing.T) string {
	t.Helper()
	name := map[string]string{"amd64": "x86", "arm64": "arm64"}[runtime.GOARCH]
	b, err := os.ReadFile(filepath.Join("..", "..", "probes", "ipc_"+name+"_bpfel.o"))
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])[:12]
}

// A binary stamped as make package stamps it says its version and commit
// as go version -m records them; one built plainly says devel, or what
// the go command recorded. Both name the Go that built them and the BPF
// object they carry, in text and in JSON.
func TestVersionSaysWhatTheBinaryIs(t *testing.T) {
	const pkg = "github.com/icptrack/icptrack/exporter"
	stamped := filepath.Join(t.TempDir(), "icptrack")
	rev := strings.Repeat("5e", 20)
	ldflags := "-X " + pkg + ".version=1.2.3+4.g5e5e5e5 -X " + pkg + ".vcsRevision=" + rev + " -X " + pkg + ".vcsModified=true"
	if out, err := exec.Command("go", "build", "-ldflags", ldflags, "-o", stamped, ".").CombinedOutput(); err != nil {
		t.Fatalf("build a stamped icptrack: %v\n%s", err, out)
	}

	for _, bin := range []string{stamped, binary} {
		goVer, modVer, settings := goVersionM(t, bin)
		wantVersion, wantCommit, wantModified := "devel", settings["vcs.revision"], settings["vcs.modified"] == "true"
		if modVer != "" && modVer != "(devel)" {
			wantVersion = modVer
		}
		if ld := settings["-ldflags"]; strings.Contains(ld, pkg+".version=") {
			wantVersion = strings.Fields(strings.SplitAfter(ld, pkg+".version=")[1])[0]
			if wantCommit == "" {
				wantCommit = strings.Fields(strings.SplitAfter(ld, pkg+".vcsRevision=")[1])[0]
				wantModified = strings.Contains(ld, pkg+".vcsModified=true")
			}
		}
		if bin == stamped && (wantVersion != "1.2.3+4.g5e5e5e5" || settings["vcs.revision"] == "" && (wantCommit != rev || !wantModified)) {
			t.Fatalf("go version -m does not show the stamp: %v", settings)
		}

		v := versionJSON(t, runCmd(t, exec.Command(bin, "version", "--json")))
		want := versionReport{Version: wantVersion, Commit: wantCommit, Modified: wantModified, Go: goVer,
			Platform: settings["GOOS"] + "/" + settings["GOARCH"], BPFObject: bpfObjectID(t)}
		got := v
		got.Kernel = kernelSupport{}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%s version --json:\n got %+v\nwant %+v (go version -m)", filepath.Base(filepath.Dir(bin)), got, want)
		}
		if v.Kernel.Release == "" || v.Kernel.Summary == "" {
			t.Errorf("no kernel in %+v", v.Kernel)
		}

		r := runCmd(t, exec.Command(bin, "version"))
		if r.code != 0 {
			t.Fatalf("version exited %d: %s", r.code, r.stderr)
		}
		commit := want.Commit
		if commit == "" {
			commit = "unknown"
		} else if want.Modified {
			commit += " (modified)"
		}
		for _, line := range []string{"icptrack " + want.Version + "\n", "commit      " + commit, "go          " + want.Go + " " + want.Platform + "\n",
			"bpf object  " + want.BPFObject + "\n", "kernel      " + strings.TrimPrefix(v.Kernel.Summary, "kernel ") + "\n"} {
			if !strings.Contains(r.stdout, line) {
				t.Errorf("version does not say %q:\n%s", line, r.stdout)
			}
		}
	}
}

// version's kernel line is icptrack check's verdict: all mechanisms here,
// and the same ones off when the verifier refuses some programs.
func TestVersionKernelLineAgreesWithCheck(t *testing.T) {
	needsBPF(t)
	for _, env := range []string{"", "ICPTRACK_TEST_REJECT=" + socketPrograms} {
		cmd := exec.Command(binary, "check", "--json")
		cmd.Env = append(cmd.Environ(), env)
		rep := checkJSON(t, runCmd(t, cmd))
		cmd = exec.Command(binary, "version", "--json")
		cmd.Env = append(cmd.Environ(), env)
		v := versionJSON(t, runCmd(t, cmd))

		var off []string
		for _, m := range rep.Mechanisms {
			if m.Status != "ok" {
				off = append(off, m.Mechanism)
			}
		}
		k := v.Kernel
		if k.Release != rep.Kernel || !k.Checked || k.Mechanisms != len(rep.Mechanisms) ||
			k.Available != len(rep.Mechanisms)-len(off) || strings.Join(k.Off, ",") != strings.Join(off, ",") {
			t.Errorf("%s: version says %+v, check says %+v", env, k, rep)
		}
		want := "kernel " + rep.Kernel + " (" + rep.Arch + "): all 13 mechanisms"
		if env != "" {
			want = "kernel " + rep.Kernel + " (" + rep.Arch + "): 8 of 13 mechanisms; off: unix_stream, unix_dgram, unix_seqpacket, tcp, udp (icptrack check says why)"
		}
		if k.Summary != want {
			t.Errorf("%s: summary %q, want %q", env, k.Summary, want)
		}
	}
}

// Without privileges version still works, and its kernel line says why
// it could not check: check's own reason.
func TestVersionWithoutPrivilegesSaysItCouldNotCheck(t *testing.T) {
	unprivileged := func(args ...string) *exec.Cmd {
		cmd := exec.Command(binary, args...)
		if os.Geteuid() == 0 {
			cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
			cmd.Dir = "/"
		}
		return cmd
	}
	rep := checkJSON(t, runCmd(t, unprivileged("check", "--json")))
	v := versionJSON(t, runCmd(t, unprivileged("version", "--json")))
	if rep.Error == "" || v.Kernel.Checked || v.Kernel.Error != rep.Error || v.Kernel.Release != rep.Kernel {
		t.Errorf("version says %+v, check says %+v", v.Kernel, rep)
	}
	r := runCmd(t, unprivileged("version"))
	for _, want := range []string{"kernel      " + rep.Kernel + " (" + rep.Arch + "): could not check: ", "CAP_BPF", "root"} {
		if r.code != 0 || !strings.Contains(r.stdout, want) {
			t.Errorf("version exited %d and does not say %q:\n%s%s", r.code, want, r.stdout, r.stderr)
		}
	}
}
