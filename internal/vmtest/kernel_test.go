package vmtest

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestParseKernels(t *testing.T) {
	ks, err := ParseKernels(DefaultKernels)
	if err != nil || len(ks) != 2 || ks[0].Arch != "amd64" || ks[1].Arch != "arm64" {
		t.Fatalf("%s: %+v, %v", DefaultKernels, ks, err)
	}
	if _, err := ParseKernels("amd64-6.1,riscv64-6.1"); err == nil || !strings.Contains(err.Error(), "known are amd64-6.1, arm64-6.1") {
		t.Errorf("an unknown kernel: %v, want an error naming the known ones", err)
	}
	if _, err := ParseKernels(" , "); err == nil {
		t.Error("an empty list was accepted")
	}
}

func TestKernelPackagesMatchOnlyTheirArchitecture(t *testing.T) {
	k, _ := kernelNamed("arm64-6.1")
	for name, want := range map[string]bool{
		"linux-image-6.1.0-57-cloud-arm64":          true,
		"linux-image-6.1.0-57-cloud-amd64":          false,
		"linux-image-6.1.0-57-cloud-arm64-dbg":      false,
		"linux-image-6.1.0-57-cloud-arm64-unsigned": false,
		"linux-image-cloud-arm64":                   false,
	} {
		if got := k.Package.MatchString(name); got != want {
			t.Errorf("%s: matched %v, want %v", name, got, want)
		}
	}
}

func TestNewestCachedKernelComparesABINumbersAsNumbers(t *testing.T) {
	dir := t.TempDir()
	for _, d := range []string{
		"linux-image-6.1.0-9-cloud-amd64_6.1.27-1",
		"linux-image-6.1.0-57-cloud-amd64_6.1.192-3",
		"linux-image-6.1.0-60-cloud-arm64_6.1.200-1", // another architecture
		"linux-image-6.1.0-99-cloud-amd64_6.1.300-1", // no vmlinuz: interrupted
	} {
		os.MkdirAll(filepath.Join(dir, d), 0o755)
		if !strings.Contains(d, "-99-") {
			os.WriteFile(filepath.Join(dir, d, "vmlinuz"), nil, 0o644)
		}
	}
	k, _ := kernelNamed("amd64-6.1")
	img, ok := newestCached(k, dir)
	if !ok || img.Package != "linux-image-6.1.0-57-cloud-amd64" || img.Version != "6.1.192-3" {
		t.Fatalf("newest cached: %+v %v, want 6.1.0-57 6.1.192-3", img, ok)
	}
}
