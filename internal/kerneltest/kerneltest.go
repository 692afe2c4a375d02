// Package kerneltest holds what tests that load BPF share.
package kerneltest

import (
	"os"
	"testing"
)

// NeedsRoot skips a test that loads BPF when not run as root, except under
// CI=true, where it fails it: CI runs as root, and a kernel test that
// skipped there would hide a broken product. what says what needs root.
func NeedsRoot(t testing.TB, what string) {
	t.Helper()
	if os.Geteuid() == 0 {
		return
	}
	if os.Getenv("CI") == "true" {
		t.Fatalf("%s needs root (BPF), and kernel tests must run in CI: run them as root", what)
	}
	t.Skipf("%s needs root (BPF)", what)
}
