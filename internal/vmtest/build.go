package vmtest

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// Build says how to build what runs inside the VMs.
type Build struct {
	Go      string // the go command
	ModRoot string // the main module's directory
	Package string // the package whose tests run, such as ./probes
	OutDir  string // where binaries and initramfs images go, per architecture
}

// vminitPackage is the VMs' init.
const vminitPackage = "./internal/vmtest/vminit"

// Binaries builds the init and the test binary for arch, static
// (CGO_ENABLED=0): the initramfs has no C library.
func (b Build) Binaries(ctx context.Context, arch string) (initPath, testPath string, err error) {
	dir := filepath.Join(b.OutDir, arch)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", "", err
	}
	initPath = filepath.Join(dir, "init")
	testPath = filepath.Join(dir, filepath.Base(b.Package)+".test")
	if err := b.goCmd(ctx, arch, "build", "-o", initPath, vminitPackage); err != nil {
		return "", "", err
	}
	if err := b.goCmd(ctx, arch, "test", "-c", "-o", testPath, b.Package); err != nil {
		return "", "", err
	}
	return initPath, testPath, nil
}

func (b Build) goCmd(ctx context.Context, arch string, args ...string) error {
	cmd := exec.CommandContext(ctx, b.Go, args...)
	cmd.Dir = b.ModRoot
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH="+arch)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("GOARCH=%s %s %s: %w\n%s", arch, b.Go, strings.Join(args, " "), err, out.String())
	}
	return nil
}

// ModRoot finds the main module's directory with the go command.
func ModRoot(goCmd string) (string, error) {
	out, err := exec.Command(goCmd, "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("%s env GOMOD: %w", goCmd, err)
	}
	mod := strings.TrimSpace(string(out))
	if mod == "" || mod == os.DevNull {
		return "", fmt.Errorf("not inside the icptrack module: run this from its checkout")
	}
	return filepath.Dir(mod), nil
}
