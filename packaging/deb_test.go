package packaging

import (
	"bytes"
	"compress/gzip"
	"debug/elf"
	"encoding/json"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/icptrack/icptrack/internal/config"
)

// These tests take the packages make package left in dist/ (make test
// builds them first) and install icptrack's on this machine with dpkg:
// they need root and dpkg, and under CI=true fail without them.

const debDist = "../dist"

// debNeeds skips (fails under CI=true) a test that cannot run here.
func debNeeds(t *testing.T, root bool, tools ...string) {
	t.Helper()
	why := ""
	if root && os.Geteuid() != 0 {
		why = "needs root (dpkg -i)"
	}
	for _, tool := range tools {
		if _, err := exec.LookPath(tool); err != nil {
			why = "needs " + tool + " (apt-get install dpkg)"
		}
	}
	if why == "" {
		return
	}
	if os.Getenv("CI") == "true" {
		t.Fatalf("this test %s, and must run in CI", why)
	}
	t.Skipf("this test %s", why)
}

// debFile is the one package make package made for name and arch.
func debFile(t *testing.T, name, arch string) string {
	t.Helper()
	debs, _ := filepath.Glob(filepath.Join(debDist, name+"_*_"+arch+".deb"))
	if len(debs) != 1 {
		msg := "dist/ has %d %s packages for %s, want one: run make package"
		if os.Getenv("CI") == "true" {
			t.Fatalf(msg, len(debs), name, arch)
		}
		t.Skipf(msg, len(debs), name, arch)
	}
	return debs[0]
}

func debRun(t *testing.T, name string, args ...string) string {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

// debDpkg runs dpkg, waiting while another dpkg or apt holds its lock.
func debDpkg(t *testing.T, args ...string) string {
	t.Helper()
	for deadline := time.Now().Add(3 * time.Minute); ; time.Sleep(2 * time.Second) {
		out, err := exec.Command("dpkg", args...).CombinedOutput()
		if err == nil {
			return string(out)
		}
		if !strings.Contains(string(out), "lock") || time.Now().After(deadline) {
			t.Fatalf("dpkg %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
}

func debField(t *testing.T, deb, field string) string {
	t.Helper()
	return strings.TrimSpace(debRun(t, "dpkg-deb", "--field", deb, field))
}

// debExtract unpacks a package's files into a new directory.
func debExtract(t *testing.T, deb string) string {
	t.Helper()
	dir := t.TempDir()
	debRun(t, "dpkg-deb", "-x", deb, dir)
	return dir
}

// debELF checks that path is a static executable for machine.
func debELF(t *testing.T, path string, machine elf.Machine) {
	t.Helper()
	f, err := elf.Open(path)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	defer f.Close()
	if f.Machine != machine || f.Class != elf.ELFCLASS64 || f.Type != elf.ET_EXEC {
		t.Errorf("%s is %v %v %v, want a 64-bit %v executable", path, f.Class, f.Machine, f.Type, machine)
	}
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			t.Errorf("%s has a dynamic loader: it is not static", path)
		}
	}
}

func debExists(path string) bool {
	_, err := os.Lstat(path)
	return err == nil
}

// The config as packed sets nothing, and each setting it shows commented
// out is valid: uncommented, internal/config loads them all, with the
// service's event log and store where the package makes their directories.
func TestDebConfigLoads(t *testing.T) {
	f, err := config.Load("config.yaml")
	if err != nil {
		t.Fatalf("packaging/config.yaml: %v", err)
	}
	if len(f.Keys) != 0 {
		t.Errorf("packaging/config.yaml sets %v: every icptrack run on the host would take them", f.Keys)
	}
	b, err := os.ReadFile("config.yaml")
	if err != nil {
		t.Fatal(err)
	}
	// "#key: value" and "#  nested: value" are settings; "# text" is prose.
	on := regexp.MustCompile(`(?m)^#([^ \n]|  )`).ReplaceAll(b, []byte("$1"))
	f, err = config.Parse("config.yaml, uncommented", on)
	if err != nil {
		t.Fatalf("%v\n%s", err, on)
	}
	if f.Events != "/var/log/icptrack/events.jsonl" || f.Store.Dir != "/var/lib/icptrack/store" || f.API.Address == "" {
		t.Errorf("uncommented: events %q, store.dir %q, api.address %q", f.Events, f.Store.Dir, f.API.Address)
	}
	if len(f.Keys) < 19 {
		t.Errorf("uncommented, the config sets only %d keys: %v", len(f.Keys), f.Keys)
	}
}

// Both architectures' packages hold static binaries for their machine,
// and say so in their control files.
func TestDebArchitectures(t *testing.T) {
	debNeeds(t, false, "dpkg-deb")
	for _, c := range []struct {
		arch    string
		machine elf.Machine
	}{{"amd64", elf.EM_X86_64}, {"arm64", elf.EM_AARCH64}} {
		for _, name := range []string{"icptrack", "otelcol-icptrack"} {
			deb := debFile(t, name, c.arch)
			if got := debField(t, deb, "Architecture"); got != c.arch {
				t.Errorf("%s: Architecture %s, want %s", deb, got, c.arch)
			}
			if got := debField(t, deb, "Package"); got != name {
				t.Errorf("%s: Package %s", deb, got)
			}
			debELF(t, filepath.Join(debExtract(t, deb), "usr", "bin", name), c.machine)
		}
	}
	// The Collector runs, and has the icptrack receiver.
	bin := filepath.Join(debExtract(t, debFile(t, "otelcol-icptrack", "amd64")), "usr", "bin", "otelcol-icptrack")
	if out := debRun(t, bin, "components"); !strings.Contains(out, "name: icptrack") {
		t.Errorf("otelcol-icptrack components does not list the icptrack receiver:\n%s", out)
	}
}

// The amd64 package, from its control file to its purge, on this machine.
func TestDebInstallRemovePurge(t *testing.T) {
	debNeeds(t, true, "dpkg", "dpkg-deb", "getent", "deluser")
	deb := debFile(t, "icptrack", "amd64")
	version := debField(t, deb, "Version")
	if !strings.HasSuffix(filepath.Base(deb), "_"+version+"_amd64.deb") {
		t.Errorf("%s is not named for its version %s", deb, version)
	}

	// The control file and the files.
	info := debRun(t, "dpkg-deb", "--info", deb)
	for _, want := range []string{"Package: icptrack", "Maintainer: ", "Homepage: https://github.com/icptrack/icptrack",
		"Depends: adduser", "Description: trace how processes talk to each other", " postinst ", " prerm ", " postrm "} {
		if !strings.Contains(info, want) {
			t.Errorf("dpkg-deb --info does not say %q:\n%s", want, info)
		}
	}
	if got := strings.TrimSpace(debRun(t, "dpkg-deb", "--info", deb, "conffiles")); got != "/etc/icptrack/config.yaml" {
		t.Errorf("conffiles %q, want /etc/icptrack/config.yaml", got)
	}
	files := []string{"/usr/bin/icptrack", "/usr/lib/systemd/system/icptrack.service", "/etc/icptrack/config.yaml",
		"/usr/share/bash-completion/completions/icptrack", "/usr/share/zsh/vendor-completions/_icptrack",
		"/usr/share/fish/vendor_completions.d/icptrack.fish", "/usr/share/man/man1/icptrack.1.gz",
		"/usr/share/man/man1/icptrack-trace.1.gz", "/usr/share/man/man1/icptrack-version.1.gz"}
	contents := debRun(t, "dpkg-deb", "--contents", deb)
	for _, f := range files {
		if !strings.Contains(contents, " ."+f+"\n") {
			t.Errorf("the package has no %s:\n%s", f, contents)
		}
	}
	if !regexp.MustCompile(`(?m)^-rwxr-xr-x root/root .* \./usr/bin/icptrack$`).MatchString(contents) {
		t.Errorf("/usr/bin/icptrack is not root's 0755:\n%s", contents)
	}

	// This machine must not have icptrack already: the test would lose it.
	if exec.Command("dpkg", "-s", "icptrack").Run() == nil || debExists("/etc/icptrack") {
		t.Fatal("icptrack is installed here, or /etc/icptrack exists: dpkg -P icptrack and remove /etc/icptrack first")
	}
	hadUser := exec.Command("getent", "passwd", "icptrack").Run() == nil
	hadLib, hadLog := debExists("/var/lib/icptrack"), debExists("/var/log/icptrack")
	t.Cleanup(func() {
		exec.Command("dpkg", "-P", "icptrack").Run()
		os.RemoveAll("/etc/icptrack")
		if !hadLib {
			os.RemoveAll("/var/lib/icptrack")
		}
		if !hadLog {
			os.RemoveAll("/var/log/icptrack")
		}
		if !hadUser {
			exec.Command("deluser", "--system", "--quiet", "icptrack").Run()
			exec.Command("delgroup", "--system", "--quiet", "icptrack").Run()
		}
	})

	debDpkg(t, "-i", deb)
	for _, f := range files {
		if !debExists(f) {
			t.Errorf("dpkg -i installed no %s", f)
		}
	}
	// The keyring the unit's LoadCredential needs, made by the postinst.
	if st, err := os.Stat("/etc/icptrack/keyring"); err != nil || st.Mode().Perm() != 0o600 {
		t.Errorf("dpkg -i made no keyring for the service, or not 0600: %v", err)
	} else if r := debRun(t, "/usr/bin/icptrack", "keys", "list", "--keyring", "/etc/icptrack/keyring"); !strings.Contains(r, "current") {
		t.Errorf("icptrack keys list on the package's keyring: %s", r)
	}
	shipped, _ := os.ReadFile("config.yaml")
	if installed, _ := os.ReadFile("/etc/icptrack/config.yaml"); !bytes.Equal(installed, shipped) {
		t.Error("/etc/icptrack/config.yaml is not packaging/config.yaml")
	}
	debELF(t, "/usr/bin/icptrack", elf.EM_X86_64)

	// The binary: its version is the package's, and it traces here.
	out, err := exec.Command("/usr/bin/icptrack", "version", "--json").Output()
	var v struct {
		Version, Commit string
		Kernel          struct{ Checked bool }
	}
	if err != nil || json.Unmarshal(out, &v) != nil {
		t.Fatalf("/usr/bin/icptrack version --json: %v\n%s", err, out)
	}
	if v.Version != version || len(v.Commit) != 40 || !v.Kernel.Checked {
		t.Errorf("/usr/bin/icptrack version: %+v, want version %s, a commit, and the kernel checked", v, version)
	}
	if out, err := exec.Command("/usr/bin/icptrack", "check").CombinedOutput(); err != nil {
		t.Errorf("/usr/bin/icptrack check: %v\n%s", err, out)
	}
	// go version -m: static, and without the packager's or the docs'
	// modules (with -trimpath it does not record -ldflags: the version
	// above is the stamp).
	m := debRun(t, "go", "version", "-m", "/usr/bin/icptrack")
	for _, want := range []string{"CGO_ENABLED=0", "-trimpath=true", "GOARCH=amd64"} {
		if !strings.Contains(m, want) {
			t.Errorf("go version -m /usr/bin/icptrack does not say %s", want)
		}
	}
	for _, not := range []string{"goreleaser/nfpm", "go-md2man", "cobra/doc"} {
		if strings.Contains(m, not) {
			t.Errorf("/usr/bin/icptrack has %s in it", not)
		}
	}

	// The man page, and completions that bash takes.
	page := debGunzip(t, "/usr/share/man/man1/icptrack-version.1.gz")
	if !strings.Contains(page, `.TH "ICPTRACK" "1"`) || !strings.Contains(page, "icptrack "+version) || !strings.Contains(page, "icptrack version") {
		t.Errorf("icptrack-version(1) is not icptrack version's page:\n%s", page)
	}
	if out := debRun(t, "bash", "-c", ". /usr/share/bash-completion/completions/icptrack && complete -p icptrack"); !strings.Contains(out, "__start_icptrack icptrack") {
		t.Errorf("bash completion: %s", out)
	}
	for f, want := range map[string]string{"/usr/share/zsh/vendor-completions/_icptrack": "#compdef icptrack",
		"/usr/share/fish/vendor_completions.d/icptrack.fish": "complete -c icptrack"} {
		if b, _ := os.ReadFile(f); !strings.Contains(string(b), want) {
			t.Errorf("%s does not say %q", f, want)
		}
	}

	// The postinst: a system user, and the directories it writes.
	pw := strings.Split(strings.TrimSpace(debRun(t, "getent", "passwd", "icptrack")), ":")
	if len(pw) != 7 || pw[5] != "/var/lib/icptrack" || !strings.HasSuffix(pw[6], "nologin") {
		t.Errorf("user icptrack: %v, want a system user at /var/lib/icptrack with no login", pw)
	}
	for _, d := range []string{"/var/lib/icptrack", "/var/log/icptrack"} {
		if out := strings.TrimSpace(debRun(t, "stat", "-c", "%U:%G %a", d)); out != "icptrack:icptrack 750" {
			t.Errorf("%s is %s, want icptrack:icptrack 750", d, out)
		}
	}

	// What is kept on remove: a store, the edited config.
	store := "/var/lib/icptrack/store/segment-stand-in"
	if err := os.MkdirAll(filepath.Dir(store), 0o750); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(store, []byte("operations"), 0o640); err != nil {
		t.Fatal(err)
	}
	edited := bytes.Replace(shipped, []byte("\n#log_level: warn\n"), []byte("\nlog_level: warn\n"), 1)
	if bytes.Equal(edited, shipped) {
		t.Fatal("packaging/config.yaml has no #log_level: warn line to edit")
	}
	if err := os.WriteFile("/etc/icptrack/config.yaml", edited, 0o644); err != nil {
		t.Fatal(err)
	}
	debDpkg(t, "-r", "icptrack")
	for _, f := range files {
		if f != "/etc/icptrack/config.yaml" && debExists(f) {
			t.Errorf("dpkg -r left %s", f)
		}
	}
	if b, _ := os.ReadFile("/etc/icptrack/config.yaml"); !bytes.Equal(b, edited) {
		t.Error("dpkg -r did not keep the edited /etc/icptrack/config.yaml")
	}
	if !debExists(store) || !debExists("/var/log/icptrack") {
		t.Error("dpkg -r removed the store or the log directory")
	}
	if st := debRun(t, "dpkg-query", "-W", "-f", "${Status}", "icptrack"); st != "deinstall ok config-files" {
		t.Errorf("after dpkg -r, icptrack is %q", st)
	}

	// Installed again, it keeps the edit: a conffile is the admin's.
	debDpkg(t, "-i", deb)
	if b, _ := os.ReadFile("/etc/icptrack/config.yaml"); !bytes.Equal(b, edited) {
		t.Error("dpkg -i over the kept config replaced the edit")
	}

	// Purge: the config and the log go; the store, a keyring beside the
	// config and the user stay (postrm says why).
	keyring := "/etc/icptrack/keyring"
	if err := os.WriteFile(keyring, []byte("stand-in"), 0o600); err != nil {
		t.Fatal(err)
	}
	debDpkg(t, "-P", "icptrack")
	if debExists("/etc/icptrack/config.yaml") || debExists("/var/log/icptrack") {
		t.Error("dpkg -P left the config or the log directory")
	}
	if !debExists(store) || !debExists(keyring) {
		t.Error("dpkg -P removed the store or its keyring")
	}
	if exec.Command("getent", "passwd", "icptrack").Run() != nil {
		t.Error("dpkg -P removed the icptrack user, who still owns the store")
	}
	if exec.Command("dpkg", "-s", "icptrack").Run() == nil {
		t.Error("icptrack is still known to dpkg after dpkg -P")
	}
}

func debGunzip(t *testing.T, path string) string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	b, err := io.ReadAll(zr)
	if err != nil && !errors.Is(err, io.EOF) {
		t.Fatal(err)
	}
	return string(b)
}
