// Package vmtest runs a test binary inside other Linux kernels under QEMU:
// Debian's kernels from apt, a Go init, and the binary in a cpio
// initramfs, with the verdict read back from the serial console. It is
// what make test-kernels runs (cmd/kernelmatrix).
package vmtest

import (
	"fmt"
	"regexp"
	"strings"
)

// Kernel is one entry of the matrix: a series of Debian kernel packages
// for one architecture, of which the newest apt offers is run.
type Kernel struct {
	Name string // as -kernels names it: amd64-6.1
	Arch string // GOARCH, and Debian's architecture
	// Package matches the apt packages of the series; its one group is
	// the ABI number that grows with each release.
	Package *regexp.Regexp
}

// DefaultKernels is what -kernels runs unless told otherwise.
const DefaultKernels = "amd64-6.1,arm64-6.1"

// Debian bookworm's kernels. The cloud flavour is the small one (no
// firmware, few drivers) and has what the VMs need built in: the serial
// consoles, devtmpfs, BPF and BTF.
var kernels = []Kernel{
	{Name: "amd64-6.1", Arch: "amd64", Package: regexp.MustCompile(`^linux-image-6\.1\.0-([0-9]+)-cloud-amd64$`)},
	{Name: "arm64-6.1", Arch: "arm64", Package: regexp.MustCompile(`^linux-image-6\.1\.0-([0-9]+)-cloud-arm64$`)},
}

// ParseKernels reads a comma-separated list of kernel names.
func ParseKernels(list string) ([]Kernel, error) {
	var out []Kernel
	for _, name := range strings.Split(list, ",") {
		name = strings.TrimSpace(name)
		if name == "" {
			continue
		}
		k, ok := kernelNamed(name)
		if !ok {
			return nil, fmt.Errorf("unknown kernel %q: known are %s", name, knownKernels())
		}
		out = append(out, k)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no kernels named: choose from %s", knownKernels())
	}
	return out, nil
}

func kernelNamed(name string) (Kernel, bool) {
	for _, k := range kernels {
		if k.Name == name {
			return k, true
		}
	}
	return Kernel{}, false
}

func knownKernels() string {
	names := make([]string, len(kernels))
	for i, k := range kernels {
		names[i] = k.Name
	}
	return strings.Join(names, ", ")
}
