package probes

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io/fs"
	"os"
	"runtime"
	"testing"
)

// ObjectID names the object bpf2go embedded for this architecture, the
// .o file beside the package.
func TestObjectIDIsTheEmbeddedObjectsHash(t *testing.T) {
	file := map[string]string{"amd64": "ipc_x86_bpfel.o", "arm64": "ipc_arm64_bpfel.o"}[runtime.GOARCH]
	if file == "" {
		t.Skipf("no BPF object for %s", runtime.GOARCH)
	}
	b, err := os.ReadFile(file)
	if errors.Is(err, fs.ErrNotExist) {
		// The test binary runs away from its sources: in the kernel
		// matrix's VMs (make test-kernels), whose initramfs holds only
		// the binary. On the host, where the sources are, it runs.
		t.Skipf("%s is not here: the test binary runs away from the sources", file)
	}
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(b)
	if want := hex.EncodeToString(sum[:])[:12]; ObjectID() != want {
		t.Errorf("ObjectID() = %s, want %s, the SHA-256 of %s", ObjectID(), want, file)
	}
}
