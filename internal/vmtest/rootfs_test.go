package vmtest

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// needE2fsprogs skips without mkfs.ext4 and debugfs, or under CI=true
// fails: CI installs them.
func needE2fsprogs(t *testing.T) {
	t.Helper()
	for _, tool := range []string{"mkfs.ext4", "debugfs"} {
		if _, err := exec.LookPath(tool); err != nil {
			if os.Getenv("CI") == "true" {
				t.Fatalf("%s is missing, and CI must run this test: apt-get install e2fsprogs", tool)
			}
			t.Skipf("%s is missing: apt-get install e2fsprogs", tool)
		}
	}
}

// The job disk holds the files and a script whose output Console reads:
// the kernel line, the command's output, its exit status.
func TestJobDiskRunsItsCommandBetweenTheMarkers(t *testing.T) {
	needE2fsprogs(t)
	dir := t.TempDir()
	payload := filepath.Join(dir, "payload.txt")
	if err := os.WriteFile(payload, []byte("carried in\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	img := filepath.Join(dir, "job.ext4")
	if err := WriteJobDisk(context.Background(), img, []string{payload}, "cat payload.txt; exit 3"); err != nil {
		t.Fatal(err)
	}
	label, err := exec.Command("e2label", img).Output()
	if err != nil || strings.TrimSpace(string(label)) != jobLabel {
		t.Errorf("label %q (%v), want %s: the image's unit mounts it by label", label, err, jobLabel)
	}
	// Out of the image with debugfs, as the VM would find them.
	out := filepath.Join(dir, "out")
	if err := os.Mkdir(out, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{jobScript, "payload.txt"} {
		if b, err := exec.Command("debugfs", "-R", "dump -p /"+name+" "+filepath.Join(out, name), img).CombinedOutput(); err != nil {
			t.Fatalf("debugfs dump %s: %v\n%s", name, err, b)
		}
	}
	b, err := exec.Command("sh", filepath.Join(out, jobScript)).Output()
	if err != nil || !strings.Contains(string(b), "carried in") {
		t.Fatalf("the job script: %v\n%s", err, b)
	}
	var c Console
	for _, line := range strings.Split(string(b), "\n") {
		c.Line(line)
	}
	if c.Release == "" || !c.Exited || c.ExitCode != 3 {
		t.Errorf("the console saw release %q, exited %v with %d; want the kernel line and exit 3:\n%s", c.Release, c.Exited, c.ExitCode, b)
	}
}

// A RootFS's VM boots the image's kernel from its disk, and QEMU writes
// to neither disk.
func TestRootFSVMBootsTheDisk(t *testing.T) {
	k, _ := kernelNamed("amd64-6.1")
	if _, err := QEMU(k.Arch); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("%v, and CI must run this test", err)
		}
		t.Skip(err)
	}
	r := RootFS{Kernel: k}
	r.setPaths("/cache/img")
	cmd, err := r.VM("/tmp/job.ext4", 1, 2048).command()
	if err != nil {
		t.Fatal(err)
	}
	line := strings.Join(cmd.Args, " ")
	for _, want := range []string{
		"-drive file=/cache/img/rootfs.ext4,format=raw,if=virtio,snapshot=on -drive file=/tmp/job.ext4,format=raw,if=virtio,snapshot=on",
		"-kernel /cache/img/vmlinuz -initrd /cache/img/initrd.img",
		"console=ttyS0 root=LABEL=" + rootLabel + " rw ",
	} {
		if !strings.Contains(line, want) {
			t.Errorf("QEMU's command line has no %q:\n%s", want, line)
		}
	}
	if strings.Contains(line, "rdinit") {
		t.Errorf("a disk's VM starts the initramfs's /init:\n%s", line)
	}
}
