package main

import (
	"fmt"
	"os"
	"os/exec"
	"strings"
)

// freshStore makes the store mode's keyring, once, and an empty store
// sealed against rewriting, before each run: each run measures a store
// from its first segment, with encryption and seals on.
func (b *bench) freshStore() error {
	if err := os.RemoveAll(b.storeDir()); err != nil {
		return err
	}
	args := []string{"keys", "new", "--store", b.storeDir()}
	if _, err := os.Stat(b.keyringPath()); os.IsNotExist(err) {
		args = append(args, "--keyring", b.keyringPath())
	}
	if out, err := exec.Command(b.icptrack, args...).CombinedOutput(); err != nil {
		return fmt.Errorf("icptrack %s: %v: %s", strings.Join(args, " "), err, out)
	}
	return nil
}

// verifyStore checks the run's store with the keyring: every chain link
// and GCM tag. A store that does not verify fails the run.
func (b *bench) verifyStore() error {
	out, err := exec.Command(b.icptrack, "verify", b.storeDir(), "--keyring", b.keyringPath()).CombinedOutput()
	if err != nil {
		return fmt.Errorf("icptrack verify of the run's store: %v: %s", err, out)
	}
	return nil
}
