package vmtest

import (
	"compress/gzip"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"testing"
)

func TestInitramfsHoldsInitTheBinaryAndTheJob(t *testing.T) {
	dir := t.TempDir()
	initPath, testPath := filepath.Join(dir, "init"), filepath.Join(dir, "probes.test")
	os.WriteFile(initPath, []byte("init"), 0o755)
	os.WriteFile(testPath, []byte("tests"), 0o755)
	job := Job{Binary: "/probes.test", Args: []string{"-test.v", "-test.run=TestA|TestB"}}
	path := filepath.Join(dir, "initramfs.gz")
	if err := WriteInitramfs(path, initPath, testPath, job); err != nil {
		t.Fatal(err)
	}

	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		t.Fatalf("not gzip: %v", err)
	}
	b, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]cpioEntry{}
	for _, e := range readNewc(t, b) {
		got[e.name] = e
	}
	if e := got["init"]; e.mode != 0o100755 || string(e.data) != "init" {
		t.Errorf("init: mode %o data %q", e.mode, e.data)
	}
	if e := got["probes.test"]; e.mode != 0o100755 || string(e.data) != "tests" {
		t.Errorf("probes.test: mode %o data %q", e.mode, e.data)
	}
	if e := got["dev/console"]; e.mode != 0o020600 || e.rmaj != 5 || e.rmin != 1 {
		t.Errorf("dev/console: mode %o rdev %d:%d", e.mode, e.rmaj, e.rmin)
	}
	var back Job
	if err := json.Unmarshal(got[JobPath[1:]].data, &back); err != nil || back.Binary != job.Binary || len(back.Args) != 2 || back.Args[1] != job.Args[1] {
		t.Errorf("job: %+v %v, want %+v", back, err, job)
	}
}

func TestInitramfsRefusesAJobForAnotherBinary(t *testing.T) {
	dir := t.TempDir()
	err := WriteInitramfs(filepath.Join(dir, "i.gz"), "/dev/null", filepath.Join(dir, "probes.test"), Job{Binary: "/flow.test"})
	if err == nil {
		t.Fatal("a job naming a binary the initramfs does not hold was accepted")
	}
}
