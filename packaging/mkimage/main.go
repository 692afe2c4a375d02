// Command mkimage builds icptrack's container images without a container
// engine: static binaries for each platform, each image one layer on an
// empty base, and per image one multi-platform index, written to an OCI
// layout and to OCI archives. Two runs on the same commit write the same
// digests: every timestamp is the commit's (or SOURCE_DATE_EPOCH's).
//
// Run it from the repository's top directory, after make otelcol:
//
//	go run ./packaging/mkimage -out dist/oci -archives dist
package main

import (
	"crypto/x509"
	"encoding/pem"
	"errors"
	"flag"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// source is where the images say they come from.
const source = "https://github.com/icptrack/icptrack"

func main() {
	if err := run(); err != nil {
		fmt.Fprintf(os.Stderr, "mkimage: %v\n", err)
		os.Exit(1)
	}
}

func run() error {
	var (
		out       = flag.String("out", "dist/oci", "write the OCI layout (one index per image, named by org.opencontainers.image.ref.name) to this directory, replacing it")
		archives  = flag.String("archives", "", "also write <image>.oci.tar OCI archives, for kind and k3s, to this directory")
		repo      = flag.String("repo", "ghcr.io/icptrack", "the repository the archives name their images in")
		only      = flag.String("images", "", "comma-separated images to build (default: all of "+strings.Join(imageNames(), ", ")+")")
		platforms = flag.String("platforms", "linux/amd64,linux/arm64", "comma-separated platforms")
		version   = flag.String("version", "", "the version (default: git describe --tags --dirty, or 0.0.0+<commit>)")
		licenses  = flag.String("licenses", "NOASSERTION", "org.opencontainers.image.licenses, an SPDX expression")
		ldflags   = flag.String("ldflags", "-s -w", "go build -ldflags for every binary")
		goCmd     = flag.String("go", "go", "the go command")
		caBundle  = flag.String("ca-bundle", "/etc/ssl/certs/ca-certificates.crt", "the CA certificates the images trust, put at the same path in them (Debian's ca-certificates)")
	)
	flag.Parse()
	if flag.NArg() > 0 {
		return fmt.Errorf("unexpected argument %q: mkimage takes only flags (see -help)", flag.Arg(0))
	}
	if _, err := os.Stat("cmd/icptrack"); err != nil {
		return errors.New("cmd/icptrack not found: run mkimage from the repository's top directory")
	}
	specs, err := selectImages(*only)
	if err != nil {
		return err
	}
	plats, err := parsePlatforms(*platforms)
	if err != nil {
		return err
	}
	facts, err := commitFacts(*version)
	if err != nil {
		return err
	}
	facts.licenses = *licenses
	if err := checkCABundle(*caBundle); err != nil {
		return err
	}
	for i := range specs {
		specs[i].files = maps.Clone(specs[i].files)
		if specs[i].files == nil {
			specs[i].files = map[string]string{}
		}
		specs[i].files[caBundlePath] = *caBundle
	}

	work, err := os.MkdirTemp("", "mkimage-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)

	var built []builtImage
	for _, spec := range specs {
		binaries := map[platform]string{}
		for _, p := range plats {
			bin := filepath.Join(work, p.arch, spec.name)
			flags := *ldflags
			if spec.pkg == "./cmd/icptrack" {
				// icptrack version says what the image's annotations say.
				flags += fmt.Sprintf(" -X %[1]s.version=%[2]s -X %[1]s.vcsRevision=%[3]s -X %[1]s.vcsModified=%[4]t",
					"github.com/icptrack/icptrack/exporter", facts.version, facts.revision, strings.HasSuffix(facts.version, "-dirty"))
			}
			if err := buildBinary(*goCmd, flags, spec, p, bin); err != nil {
				return err
			}
			binaries[p] = bin
		}
		idx, err := spec.index(facts, plats, binaries)
		if err != nil {
			return fmt.Errorf("image %s: %w", spec.name, err)
		}
		built = append(built, builtImage{spec: spec, index: idx})
	}
	if err := writeLayout(*out, built); err != nil {
		return err
	}
	for _, b := range built {
		d, _ := b.index.Digest()
		fmt.Printf("%s %s@%s version %s -> oci:%s:%s\n", b.spec.name, *repo+"/"+b.spec.name, d, facts.version, *out, b.spec.name)
	}
	if *archives == "" {
		return nil
	}
	for _, b := range built {
		path := filepath.Join(*archives, b.spec.name+".oci.tar")
		refs := []string{*repo + "/" + b.spec.name + ":" + facts.tag(), *repo + "/" + b.spec.name + ":latest"}
		if err := writeArchive(path, b, refs, facts.created); err != nil {
			return err
		}
		fmt.Printf("%s -> %s (%s)\n", b.spec.name, path, strings.Join(refs, ", "))
	}
	return nil
}

// caBundlePath is where Go's crypto/x509 looks first for the system's CA
// certificates on Linux. An empty base has none, and without them OTLP,
// syslog or a database over TLS to a server with a public certificate
// fails to verify it.
const caBundlePath = "/etc/ssl/certs/ca-certificates.crt"

// checkCABundle checks that path is a PEM bundle of CA certificates.
func checkCABundle(path string) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("the images need CA certificates: %v (apt-get install ca-certificates, or give -ca-bundle)", err)
	}
	if countCertificates(b) == 0 {
		return fmt.Errorf("-ca-bundle %s holds no PEM certificate", path)
	}
	return nil
}

// countCertificates counts the certificates of a PEM bundle that parse.
func countCertificates(b []byte) int {
	n := 0
	for {
		var blk *pem.Block
		if blk, b = pem.Decode(b); blk == nil {
			return n
		}
		if _, err := x509.ParseCertificate(blk.Bytes); blk.Type == "CERTIFICATE" && err == nil {
			n++
		}
	}
}

// facts are what the images say about the commit they were built from.
type facts struct {
	version  string    // 0.1.0, 0.1.0-3-gabcdef0, 0.0.0+abcdef0
	revision string    // the full commit hash
	created  time.Time // the commit's time, or SOURCE_DATE_EPOCH
	licenses string
}

// tag is the version as an image tag, which may not hold a +.
func (f facts) tag() string { return strings.ReplaceAll(f.version, "+", "_") }

// commitFacts reads the version, revision and time from git. The time is
// the commit's, not the build's, so that a rebuild is byte for byte the
// same; SOURCE_DATE_EPOCH overrides it.
func commitFacts(version string) (facts, error) {
	git := func(args ...string) (string, error) {
		out, err := exec.Command("git", args...).Output()
		if err != nil {
			var ee *exec.ExitError
			if errors.As(err, &ee) {
				return "", fmt.Errorf("git %s: %s", strings.Join(args, " "), strings.TrimSpace(string(ee.Stderr)))
			}
			return "", fmt.Errorf("git %s: %w", strings.Join(args, " "), err)
		}
		return strings.TrimSpace(string(out)), nil
	}
	var f facts
	var err error
	if f.revision, err = git("rev-parse", "HEAD"); err != nil {
		return f, fmt.Errorf("%w (mkimage needs a git checkout: the images name their commit)", err)
	}
	f.version = strings.TrimPrefix(version, "v")
	if f.version == "" {
		if d, err := git("describe", "--tags", "--dirty"); err == nil {
			f.version = strings.TrimPrefix(d, "v")
		} else {
			// No tag yet: a version that sorts before every release and
			// names the commit (semver build metadata).
			short, err := git("describe", "--always", "--dirty")
			if err != nil {
				return f, err
			}
			f.version = "0.0.0+" + short
		}
	}
	epoch := os.Getenv("SOURCE_DATE_EPOCH")
	if epoch == "" {
		if epoch, err = git("log", "-1", "--format=%ct"); err != nil {
			return f, err
		}
	}
	sec, err := strconv.ParseInt(epoch, 10, 64)
	if err != nil {
		return f, fmt.Errorf("SOURCE_DATE_EPOCH=%q is not a number of seconds since 1970", epoch)
	}
	f.created = time.Unix(sec, 0).UTC()
	return f, nil
}

// buildBinary cross-builds one image's program, static (no cgo, so no
// libc to find on an empty base) and with no trace of this checkout's
// path, so that another checkout of the commit builds the same bytes.
func buildBinary(goCmd, ldflags string, spec imageSpec, p platform, out string) error {
	dir := spec.dir
	if _, err := os.Stat(filepath.Join(dir, "go.mod")); err != nil {
		return fmt.Errorf("%s/go.mod is missing: %s", dir, spec.missing)
	}
	abs, err := filepath.Abs(out)
	if err != nil {
		return err
	}
	cmd := exec.Command(goCmd, "build", "-trimpath", "-ldflags", ldflags, "-o", abs, spec.pkg)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS="+p.os, "GOARCH="+p.arch)
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	fmt.Fprintf(os.Stderr, "mkimage: building %s for %s\n", spec.name, p)
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("go build %s for %s in %s: %w", spec.pkg, p, dir, err)
	}
	return nil
}

func selectImages(list string) ([]imageSpec, error) {
	if list == "" {
		return images, nil
	}
	var out []imageSpec
next:
	for _, name := range strings.Split(list, ",") {
		for _, s := range images {
			if s.name == strings.TrimSpace(name) {
				out = append(out, s)
				continue next
			}
		}
		return nil, fmt.Errorf("-images: no image %q: use %s", name, strings.Join(imageNames(), ", "))
	}
	return out, nil
}

func imageNames() []string {
	var names []string
	for _, s := range images {
		names = append(names, s.name)
	}
	return names
}

// platform is where a binary runs.
type platform struct{ os, arch string }

func (p platform) String() string { return p.os + "/" + p.arch }

func parsePlatforms(list string) ([]platform, error) {
	var out []platform
	for _, s := range strings.Split(list, ",") {
		osName, arch, ok := strings.Cut(strings.TrimSpace(s), "/")
		if !ok || osName != "linux" || (arch != "amd64" && arch != "arm64") {
			return nil, fmt.Errorf("-platforms: %q is not linux/amd64 or linux/arm64, the platforms icptrack's BPF objects are built for", s)
		}
		out = append(out, platform{osName, arch})
	}
	return out, nil
}
