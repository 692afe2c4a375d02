// Command mkdeb builds icptrack's Debian packages (make package): for
// each architecture, icptrack and otelcol-icptrack built static with the
// version stamped, the man pages and shell completions generated from
// icptrack's commands, then packed by nfpm as packaging/nfpm/*.yaml say.
// It is a module of its own so that nfpm's dependencies stay out of
// icptrack's go.mod and binary. Run it from the top of the checkout.
package main

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/goreleaser/nfpm/v2"
	_ "github.com/goreleaser/nfpm/v2/deb"
)

const stampPkg = "github.com/icptrack/icptrack/exporter"

func main() {
	out := flag.String("out", "dist", "write the packages here (and what they hold under OUT/build)")
	archs := flag.String("arch", "amd64,arm64", "comma-separated GOARCHs to package")
	version := flag.String("version", "", "the packages' version (default: from git describe; see README \"Install\")")
	maintainer := flag.String("maintainer", "icptrack maintainers <icptrack@users.noreply.github.com>", "the packages' Maintainer")
	flag.Parse()
	if err := run(*out, strings.Split(*archs, ","), *version, *maintainer); err != nil {
		fmt.Fprintf(os.Stderr, "mkdeb: %v\n", err)
		os.Exit(1)
	}
}

func run(out string, archs []string, version, maintainer string) error {
	if _, err := os.Stat("packaging/nfpm/icptrack.yaml"); err != nil {
		return errors.New("packaging/nfpm/icptrack.yaml is missing: run mkdeb from the top of the icptrack checkout (make package)")
	}
	if _, err := os.Stat("otelcol-icptrack/go.mod"); err != nil {
		return errors.New("otelcol-icptrack/ is missing: run make otelcol first (make package does)")
	}
	src, err := describe()
	if err != nil {
		return err
	}
	if version == "" {
		version = src.version
	}
	// The packages' files, the man pages' date and nfpm's file times are
	// the commit's: the same commit packs to the same bytes.
	os.Setenv("SOURCE_DATE_EPOCH", src.epoch)
	ldflags := fmt.Sprintf("-s -w -X %s.version=%s -X %s.vcsRevision=%s -X %s.vcsModified=%t",
		stampPkg, version, stampPkg, src.revision, stampPkg, src.modified)

	// OUT holds the last make package's packages only: a test takes them.
	old, err := filepath.Glob(filepath.Join(out, "*.deb"))
	if err != nil {
		return err
	}
	for _, p := range old {
		if err := os.Remove(p); err != nil {
			return err
		}
	}
	docs := filepath.Join(out, "build", "docs")
	if err := os.RemoveAll(docs); err != nil {
		return err
	}
	// The gendocs tag adds the command that writes them (cmd/icptrack/gendocs.go).
	if err := gobuild(".", nil, "run", "-tags", "gendocs", "-ldflags", ldflags, "./cmd/icptrack", "gendocs", docs); err != nil {
		return fmt.Errorf("man pages and completions: %w", err)
	}
	for _, arch := range archs {
		build, err := filepath.Abs(filepath.Join(out, "build", arch))
		if err != nil {
			return err
		}
		// Static, and with the flags ocb uses, so that amd64's
		// otelcol-icptrack comes from make otelcol's build cache.
		env := []string{"CGO_ENABLED=0", "GOOS=linux", "GOARCH=" + arch}
		if err := gobuild(".", env, "build", "-trimpath", "-ldflags", ldflags, "-o", filepath.Join(build, "icptrack"), "./cmd/icptrack"); err != nil {
			return fmt.Errorf("icptrack for %s: %w", arch, err)
		}
		if err := gobuild("otelcol-icptrack", env, "build", "-trimpath", "-ldflags", "-s -w", "-o", filepath.Join(build, "otelcol-icptrack"), "."); err != nil {
			return fmt.Errorf("otelcol-icptrack for %s: %w", arch, err)
		}
		vars := map[string]string{"ARCH": arch, "VERSION": version, "MAINTAINER": maintainer, "BUILD": build, "DOCS": docs}
		for _, name := range []string{"icptrack", "otelcol-icptrack"} {
			path, err := pack(filepath.Join("packaging", "nfpm", name+".yaml"), vars, out)
			if err != nil {
				return fmt.Errorf("%s for %s: %w", name, arch, err)
			}
			fmt.Println(path)
		}
	}
	return nil
}

// pack makes the package config describes, with vars for its ${…}, in
// dir, under Debian's conventional file name, and returns its path.
func pack(config string, vars map[string]string, dir string) (string, error) {
	cfg, err := nfpm.ParseFileWithEnvMapping(config, func(k string) string { return vars[k] })
	if err != nil {
		return "", err
	}
	info, err := cfg.Get("deb")
	if err != nil {
		return "", err
	}
	info = nfpm.WithDefaults(info)
	if err := nfpm.PrepareForPackager(info, "deb"); err != nil {
		return "", err
	}
	deb, err := nfpm.Get("deb")
	if err != nil {
		return "", err
	}
	path := filepath.Join(dir, deb.ConventionalFileName(info))
	f, err := os.Create(path)
	if err != nil {
		return "", err
	}
	if err := deb.Package(info, f); err != nil {
		f.Close()
		os.Remove(path)
		return "", err
	}
	return path, f.Close()
}

// gobuild runs the go command in dir with env added.
func gobuild(dir string, env []string, args ...string) error {
	goCmd := os.Getenv("GO")
	if goCmd == "" {
		goCmd = "go"
	}
	cmd := exec.Command(goCmd, args...)
	cmd.Dir, cmd.Stdout, cmd.Stderr = dir, os.Stderr, os.Stderr
	cmd.Env = append(os.Environ(), env...)
	return cmd.Run()
}
