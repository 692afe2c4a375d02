package vmtest

import (
	"bufio"
	"compress/gzip"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// WriteInitramfs writes a gzip'd newc cpio to path holding the init (as
// /init), the test binary (as /NAME at the root, which job.Binary must
// name) and the job. Nothing else: both binaries are static, and init
// mounts the rest.
func WriteInitramfs(path, initPath, testPath string, job Job) error {
	if want := "/" + filepath.Base(testPath); job.Binary != want {
		return fmt.Errorf("initramfs: the job runs %s, but the test binary goes in as %s", job.Binary, want)
	}
	jobJSON, err := json.Marshal(job)
	if err != nil {
		return err
	}
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("initramfs: %w", err)
	}
	bw := bufio.NewWriterSize(f, 1<<20)
	// The kernel unpacks it under TCG, where each CPU cycle costs many:
	// BestSpeed gives up little size and is faster both ways.
	zw, _ := gzip.NewWriterLevel(bw, gzip.BestSpeed)
	cw := NewCPIOWriter(zw)
	err = firstErr(
		cw.Dir("dev", 0o755),
		// The kernel opens it for init's standard streams before
		// anything is mounted.
		cw.CharDev("dev/console", 0o600, 5, 1),
		addFile(cw, "init", initPath),
		addFile(cw, job.Binary, testPath),
		cw.File(JobPath, 0o644, int64(len(jobJSON)), strings.NewReader(string(jobJSON))),
		cw.Close(),
		zw.Close(),
		bw.Flush(),
	)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(path)
		return fmt.Errorf("initramfs %s: %w", path, err)
	}
	return nil
}

func addFile(cw *CPIOWriter, name, src string) error {
	f, err := os.Open(src)
	if err != nil {
		return err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return err
	}
	return cw.File(name, 0o755, st.Size(), f)
}

func firstErr(errs ...error) error {
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}
