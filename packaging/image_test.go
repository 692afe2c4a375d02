package packaging

import (
	"archive/tar"
	"bytes"
	"crypto/x509"
	"debug/elf"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"

	"github.com/icptrack/icptrack/internal/kerneltest"
)

// imageLayout is the OCI layout make image writes, relative to this
// package.
const imageLayout = "../dist/oci"

// imageWant is what each image must be.
var imageWant = []struct {
	name, binary string
	entrypoint   []string
	cmd          []string
}{
	{"icptrack", "/usr/bin/icptrack", []string{"/usr/bin/icptrack"}, []string{"trace"}},
	{"otelcol-icptrack", "/otelcol-icptrack", []string{"/otelcol-icptrack"}, []string{"--config", "/etc/otelcol-icptrack/config.yaml"}},
}

// imageMachines are the ELF machines of the platforms.
var imageMachines = map[string]elf.Machine{"amd64": elf.EM_X86_64, "arm64": elf.EM_AARCH64}

// imageNeedTool finds a program the test runs: under CI=true its absence
// fails the test, elsewhere it skips it.
func imageNeedTool(t *testing.T, name, pkg string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err == nil {
		return p
	}
	if os.Getenv("CI") == "true" {
		t.Fatalf("%s is missing: apt-get install %s", name, pkg)
	}
	t.Skipf("%s is missing: apt-get install %s", name, pkg)
	return ""
}

// imageNeedLayout checks that make image has written dist/oci for the
// commit checked out, and returns that commit.
func imageNeedLayout(t *testing.T) string {
	t.Helper()
	if _, err := os.Stat(filepath.Join(imageLayout, "index.json")); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s is missing: run make image", imageLayout)
		}
		t.Skipf("%s is missing: run make image", imageLayout)
	}
	return imageGit(t, "rev-parse", "HEAD")
}

func imageGit(t *testing.T, args ...string) string {
	t.Helper()
	out, err := exec.Command("git", args...).Output()
	if err != nil {
		t.Fatalf("git %s: %v", strings.Join(args, " "), err)
	}
	return strings.TrimSpace(string(out))
}

// imageSkopeo runs skopeo and returns its standard output.
func imageSkopeo(t *testing.T, args ...string) []byte {
	t.Helper()
	var stderr bytes.Buffer
	cmd := exec.Command(imageNeedTool(t, "skopeo", "skopeo"), args...)
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("skopeo %s: %v\n%s", strings.Join(args, " "), err, stderr.Bytes())
	}
	return out
}

func TestImageIndexesNameBothPlatformsAndTheCommit(t *testing.T) {
	head := imageNeedLayout(t)
	commitTime, err := time.Parse(time.RFC3339, imageGit(t, "log", "-1", "--format=%cI"))
	if err != nil {
		t.Fatal(err)
	}
	for _, w := range imageWant {
		var idx v1.IndexManifest
		raw := imageSkopeo(t, "inspect", "--raw", "oci:"+imageLayout+":"+w.name)
		if err := json.Unmarshal(raw, &idx); err != nil {
			t.Fatalf("%s: the index is not JSON: %v", w.name, err)
		}
		if idx.MediaType != "application/vnd.oci.image.index.v1+json" {
			t.Errorf("%s: media type %q, want an OCI image index", w.name, idx.MediaType)
		}
		var plats []string
		for _, m := range idx.Manifests {
			if m.Platform == nil {
				t.Errorf("%s: manifest %s has no platform", w.name, m.Digest)
				continue
			}
			plats = append(plats, m.Platform.OS+"/"+m.Platform.Architecture)
		}
		if strings.Join(plats, " ") != "linux/amd64 linux/arm64" {
			t.Errorf("%s: platforms %v, want linux/amd64 and linux/arm64", w.name, plats)
		}
		a := idx.Annotations
		if a["org.opencontainers.image.revision"] != head {
			t.Fatalf("%s: built from commit %s, HEAD is %s: run make image", w.name, a["org.opencontainers.image.revision"], head)
		}
		created, err := time.Parse(time.RFC3339, a["org.opencontainers.image.created"])
		if err != nil || !created.Equal(commitTime) {
			t.Errorf("%s: created %q, want the commit's time %s (not the build's)", w.name, a["org.opencontainers.image.created"], commitTime)
		}
		if a["org.opencontainers.image.title"] != w.name || a["org.opencontainers.image.source"] != "https://github.com/icptrack/icptrack" ||
			a["org.opencontainers.image.version"] == "" || a["org.opencontainers.image.description"] == "" || a["org.opencontainers.image.licenses"] == "" {
			t.Errorf("%s: annotations %v lack the title, source, version, description or licenses", w.name, a)
		}
	}
}

func TestImageConfigStartsTheBinaryAsRoot(t *testing.T) {
	imageNeedLayout(t)
	for _, w := range imageWant {
		for arch := range imageMachines {
			ref := "oci:" + imageLayout + ":" + w.name
			// What skopeo picks for a platform, as a runtime there would.
			var info struct {
				Architecture, Os string
				Labels           map[string]string
			}
			if err := json.Unmarshal(imageSkopeo(t, "inspect", "--override-os", "linux", "--override-arch", arch, ref), &info); err != nil {
				t.Fatal(err)
			}
			if info.Architecture != arch || info.Os != "linux" {
				t.Errorf("%s for %s: skopeo picked %s/%s", w.name, arch, info.Os, info.Architecture)
			}
			if info.Labels["org.opencontainers.image.title"] != w.name || info.Labels["org.opencontainers.image.revision"] == "" {
				t.Errorf("%s for %s: labels %v lack the title and revision", w.name, arch, info.Labels)
			}
			var cf v1.ConfigFile
			if err := json.Unmarshal(imageSkopeo(t, "inspect", "--config", "--override-os", "linux", "--override-arch", arch, ref), &cf); err != nil {
				t.Fatal(err)
			}
			c := cf.Config
			if strings.Join(c.Entrypoint, " ") != strings.Join(w.entrypoint, " ") || strings.Join(c.Cmd, " ") != strings.Join(w.cmd, " ") {
				t.Errorf("%s for %s: entrypoint %q cmd %q, want %q %q", w.name, arch, c.Entrypoint, c.Cmd, w.entrypoint, w.cmd)
			}
			if c.User != "0:0" {
				t.Errorf("%s for %s: user %q, want 0:0 (BPF needs capabilities, which apply to root)", w.name, arch, c.User)
			}
		}
	}
}

// imageFiles reads an image's one layer: each entry's header, and the
// content of those named in want.
func imageFiles(t *testing.T, img v1.Image, want ...string) (map[string]*tar.Header, map[string][]byte) {
	t.Helper()
	layers, err := img.Layers()
	if err != nil {
		t.Fatal(err)
	}
	if len(layers) != 1 {
		t.Fatalf("%d layers, want one on an empty base", len(layers))
	}
	rc, err := layers[0].Uncompressed()
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	headers := map[string]*tar.Header{}
	content := map[string][]byte{}
	tr := tar.NewReader(rc)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return headers, content
		}
		if err != nil {
			t.Fatal(err)
		}
		headers["/"+strings.TrimSuffix(h.Name, "/")] = h
		if slices.Contains(want, "/"+h.Name) {
			if content["/"+h.Name], err = io.ReadAll(tr); err != nil {
				t.Fatal(err)
			}
		}
	}
}

// imageCABundle is where the images keep their CA certificates.
const imageCABundle = "/etc/ssl/certs/ca-certificates.crt"

func TestImageLayerHoldsAStaticBinaryForItsPlatform(t *testing.T) {
	imageNeedLayout(t)
	hostBundle, err := os.ReadFile(imageCABundle)
	if err != nil {
		t.Fatalf("the host's CA certificates, which make image put in the images: %v", err)
	}
	var roots int
	for rest := hostBundle; ; {
		var blk *pem.Block
		if blk, rest = pem.Decode(rest); blk == nil {
			break
		}
		if _, err := x509.ParseCertificate(blk.Bytes); err != nil {
			t.Fatalf("%s: a certificate Go cannot parse: %v", imageCABundle, err)
		}
		roots++
	}
	if roots < 50 {
		t.Fatalf("%s holds %d certificates: not a system's CA bundle", imageCABundle, roots)
	}
	lp, err := layout.FromPath(imageLayout)
	if err != nil {
		t.Fatal(err)
	}
	top, err := lp.ImageIndex()
	if err != nil {
		t.Fatal(err)
	}
	topManifest, err := top.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	for _, w := range imageWant {
		var idx v1.ImageIndex
		for _, d := range topManifest.Manifests {
			if d.Annotations["org.opencontainers.image.ref.name"] == w.name {
				if idx, err = top.ImageIndex(d.Digest); err != nil {
					t.Fatal(err)
				}
			}
		}
		if idx == nil {
			t.Fatalf("%s: no index named %s in %s", imageLayout, w.name, imageLayout)
		}
		im, err := idx.IndexManifest()
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range im.Manifests {
			img, err := idx.Image(d.Digest)
			if err != nil {
				t.Fatal(err)
			}
			cf, err := img.ConfigFile()
			if err != nil {
				t.Fatal(err)
			}
			what := w.name + " for " + d.Platform.Architecture
			headers, files := imageFiles(t, img, w.binary, imageCABundle)
			bin := files[w.binary]
			h := headers[w.binary]
			if h == nil || bin == nil {
				t.Fatalf("%s: no %s in the layer (it has %v)", what, w.binary, headers)
			}
			if h.Mode != 0o755 || h.Uid != 0 || h.Gid != 0 {
				t.Errorf("%s: %s has mode %o, owner %d:%d; want 755 and root", what, w.binary, h.Mode, h.Uid, h.Gid)
			}
			for name, h := range headers {
				if !h.ModTime.Equal(cf.Created.Time) {
					t.Errorf("%s: %s has mtime %s, want the commit's %s (or the digest changes with every build)", what, name, h.ModTime, cf.Created.Time)
				}
			}
			// The CA certificates, where Go looks first: the host's
			// bundle, whole, and each one a certificate Go can parse.
			if h := headers[imageCABundle]; h == nil || h.Mode != 0o644 {
				t.Errorf("%s: no %s of mode 644 in the layer: OTLP over TLS could not verify a public server", what, imageCABundle)
			} else if !bytes.Equal(files[imageCABundle], hostBundle) {
				t.Errorf("%s: %s is not the host's bundle", what, imageCABundle)
			}
			f, err := elf.NewFile(bytes.NewReader(bin))
			if err != nil {
				t.Fatalf("%s: %s is not ELF: %v", what, w.binary, err)
			}
			if f.Machine != imageMachines[d.Platform.Architecture] {
				t.Errorf("%s: %s is for %s", what, w.binary, f.Machine)
			}
			for _, p := range f.Progs {
				if p.Type == elf.PT_INTERP {
					t.Errorf("%s: %s asks for a dynamic loader, which an empty base does not have: build it with CGO_ENABLED=0", what, w.binary)
				}
			}
			if libs, _ := f.ImportedLibraries(); len(libs) > 0 {
				t.Errorf("%s: %s needs %v", what, w.binary, libs)
			}
		}
	}
}

// imageBuild runs mkimage for the icptrack image into dir.
func imageBuild(t *testing.T, dir string) string {
	t.Helper()
	cmd := exec.Command("go", "run", "./packaging/mkimage", "-images", "icptrack", "-out", dir)
	cmd.Dir = ".."
	cmd.Env = append(os.Environ(), "TMPDIR="+t.TempDir())
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("mkimage: %v\n%s", err, out)
	}
	index, err := os.ReadFile(filepath.Join(dir, "index.json"))
	if err != nil {
		t.Fatal(err)
	}
	return string(index)
}

// Two builds of a commit, at different times, into different places,
// write the same bytes: every blob's digest, and so the index's.
func TestImageDigestsAreTheSameInTwoBuilds(t *testing.T) {
	if testing.Short() {
		t.Skip("builds icptrack for two platforms twice")
	}
	dir := t.TempDir()
	first := imageBuild(t, filepath.Join(dir, "a"))
	time.Sleep(1100 * time.Millisecond) // a timestamp from the clock would now differ
	second := imageBuild(t, filepath.Join(dir, "b"))
	if first != second {
		t.Fatalf("two builds wrote different indexes:\n%s\n%s", first, second)
	}
	blobs := func(d string) []string {
		m, _ := filepath.Glob(filepath.Join(d, "blobs", "sha256", "*"))
		for i := range m {
			m[i] = filepath.Base(m[i])
		}
		return m
	}
	a, b := blobs(filepath.Join(dir, "a")), blobs(filepath.Join(dir, "b"))
	if len(a) != 7 || strings.Join(a, " ") != strings.Join(b, " ") {
		// An index, and per platform a manifest, a config and a layer.
		t.Errorf("blobs differ or are not the 7 of one two-platform image:\n%v\n%v", a, b)
	}
}

// The archives for kind and k3s are the layout's indexes, named as
// containerd wants them.
func TestImageArchivesNameTheImagesForContainerd(t *testing.T) {
	imageNeedLayout(t)
	for _, w := range imageWant {
		archive := "../dist/" + w.name + ".oci.tar"
		if _, err := os.Stat(archive); err != nil {
			t.Fatalf("%s is missing: run make image", archive)
		}
		layoutIndex := imageSkopeo(t, "inspect", "--raw", "oci:"+imageLayout+":"+w.name)
		for _, tag := range []string{"latest", strings.ReplaceAll(imageVersion(t, w.name), "+", "_")} {
			ref := "ghcr.io/icptrack/" + w.name + ":" + tag
			if got := imageSkopeo(t, "inspect", "--raw", "oci-archive:"+archive+":"+ref); !bytes.Equal(got, layoutIndex) {
				t.Errorf("%s in %s is not the index in %s", ref, archive, imageLayout)
			}
		}
		f, err := os.Open(archive)
		if err != nil {
			t.Fatal(err)
		}
		tr := tar.NewReader(f)
		var names []string
		for {
			h, err := tr.Next()
			if err != nil {
				break
			}
			if h.Name == "index.json" {
				var idx v1.IndexManifest
				if err := json.NewDecoder(tr).Decode(&idx); err != nil {
					t.Fatal(err)
				}
				for _, d := range idx.Manifests {
					names = append(names, d.Annotations["io.containerd.image.name"])
				}
			}
		}
		f.Close()
		if len(names) != 2 || !strings.HasSuffix(names[1], ":latest") || !strings.HasPrefix(names[0], "ghcr.io/icptrack/"+w.name+":") {
			t.Errorf("%s: io.containerd.image.name %v, want the version's tag and latest", archive, names)
		}
		if w.name != "otelcol-icptrack" {
			continue
		}
		// The Kubernetes example runs what the archive loads.
		manifests, _ := filepath.Glob("../examples/collector/kubernetes/*.yaml")
		seen := 0
		for _, m := range manifests {
			b, err := os.ReadFile(m)
			if err != nil {
				t.Fatal(err)
			}
			for _, line := range strings.Split(string(b), "\n") {
				if ref, ok := strings.CutPrefix(strings.TrimSpace(line), "image: "); ok {
					seen++
					if ref != names[1] && ref != names[0] {
						t.Errorf("%s runs %s, which %s does not name (%v)", m, ref, archive, names)
					}
				}
			}
		}
		if seen < 2 {
			t.Errorf("found %d images in examples/collector/kubernetes, want the agent's and the gateway's", seen)
		}
	}
}

func imageVersion(t *testing.T, name string) string {
	t.Helper()
	var idx v1.IndexManifest
	if err := json.Unmarshal(imageSkopeo(t, "inspect", "--raw", "oci:"+imageLayout+":"+name), &idx); err != nil {
		t.Fatal(err)
	}
	return idx.Annotations["org.opencontainers.image.version"]
}

// imagePodman runs podman with storage of the test's own, so that it
// neither needs nor touches the machine's images. runc, not crun: crun
// refuses a machine with cgroups v1 and v2 both mounted ("cgroups in
// hybrid mode not supported"), as this one's are.
func imagePodman(t *testing.T, store string, args ...string) (string, error) {
	t.Helper()
	imageNeedTool(t, "runc", "runc")
	base := []string{"--root", filepath.Join(store, "root"), "--runroot", filepath.Join(store, "run"),
		"--storage-driver", "vfs", "--cgroup-manager", "cgroupfs", "--events-backend", "file", "--runtime", "runc"}
	out, err := exec.Command(imageNeedTool(t, "podman", "podman"), append(base, args...)...).Output()
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		err = fmt.Errorf("%w: %s", err, bytes.TrimSpace(ee.Stderr))
	}
	return string(out), err
}

// imageRun runs an image from the layout with podman: flags, then the
// image's arguments.
func imageRun(t *testing.T, store, name string, flags []string, args ...string) (string, error) {
	t.Helper()
	abs, err := filepath.Abs(imageLayout)
	if err != nil {
		t.Fatal(err)
	}
	// No network; limits no higher than a machine that cannot raise them
	// allows (podman's defaults, 1048576 files, are above them here).
	run := []string{"run", "--rm", "--network", "none", "--ulimit", "nofile=1024:1024", "--ulimit", "nproc=4096:4096"}
	run = append(append(append(run, flags...), "oci:"+abs+":"+name), args...)
	return imagePodman(t, store, run...)
}

func TestImagesRunInPodman(t *testing.T) {
	imageNeedLayout(t)
	kerneltest.NeedsRoot(t, "podman run")
	store := t.TempDir()
	t.Cleanup(func() { imagePodman(t, store, "system", "reset", "--force") })

	out, err := imageRun(t, store, "icptrack", nil, "--help")
	if err != nil || !strings.Contains(out, "icptrack traces inter-process communication") {
		t.Errorf("icptrack --help in the image: %v\n%s", err, out)
	}
	// The binary says the version the image's annotations say.
	out, err = imageRun(t, store, "icptrack", nil, "version", "--json")
	var v struct{ Version, Commit string }
	if jerr := json.Unmarshal([]byte(out), &v); err != nil || jerr != nil || v.Version != imageVersion(t, "icptrack") {
		t.Errorf("icptrack version --json in the image: %v %v: %q, want version %q", err, jerr, out, imageVersion(t, "icptrack"))
	}
	out, err = imageRun(t, store, "otelcol-icptrack", nil, "components")
	if err != nil || !strings.Contains(out, "name: icptrack") {
		t.Errorf("otelcol-icptrack components in the image did not list the icptrack receiver: %v\n%s", err, out)
	}
	// What the README and the DaemonSet ask for is enough to load and
	// attach icptrack's programs in a container: CAP_BPF and CAP_PERFMON
	// (with the rest dropped), the host's pids and BTF, and no seccomp
	// profile (the default one refuses bpf() without CAP_SYS_ADMIN).
	out, err = imageRun(t, store, "icptrack", []string{"--cap-drop", "ALL",
		"--cap-add", "BPF,PERFMON,SYS_PTRACE,DAC_READ_SEARCH", "--pid", "host",
		"--security-opt", "seccomp=unconfined", "-v", "/sys/kernel/btf:/sys/kernel/btf:ro"}, "check", "--json")
	var report struct {
		Capabilities []string
		Mechanisms   []struct{ Mechanism, Status, Reason string }
	}
	if jerr := json.Unmarshal([]byte(out), &report); jerr != nil {
		t.Fatalf("icptrack check --json in the image: %v, %v\n%s", err, jerr, out)
	}
	for _, m := range report.Mechanisms {
		if m.Mechanism == "pipe" && m.Status != "ok" {
			t.Errorf("icptrack check in the image with the DaemonSet's capabilities %v: pipe is %s: %s", report.Capabilities, m.Status, m.Reason)
		}
	}
	if len(report.Mechanisms) == 0 {
		t.Errorf("icptrack check in the image reported no mechanism:\n%s", out)
	}
}
