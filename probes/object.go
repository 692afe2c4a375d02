package probes

import (
	"crypto/sha256"
	"encoding/hex"
)

// ObjectID identifies the BPF object built into this binary for its
// architecture: the first 12 hex digits of the SHA-256 of the object's
// bytes (bpf2go's ipc_*_bpfel.o). clang writes no ELF build-id note into
// BPF objects, so this stands in for one: two binaries with the same
// ObjectID load the same programs.
func ObjectID() string {
	sum := sha256.Sum256(_IpcBytes)
	return hex.EncodeToString(sum[:])[:12]
}
