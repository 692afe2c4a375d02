package vmtest

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
)

// A RootFS is a whole Debian system on a disk, booted with systemd as
// PID 1, for what an initramfs cannot show: a unit under real systemd, a
// package installed by dpkg. Its kernel is a matrix kernel (the newest of
// its series, as FetchKernel picks), installed in the image by apt with
// initramfs-tools, whose initrd finds the disk by its label (the cloud
// kernel has virtio_blk as a module).
//
// The image runs what a job disk (WriteJobDisk) holds: a oneshot unit
// mounts it once the system is up, runs its job script with the output
// on the serial console, and powers the VM off.
type RootFS struct {
	Kernel  Kernel
	Package string // the kernel package in the image: linux-image-6.1.0-57-cloud-amd64
	Version string // its version
	Image   string // the ext4 image, labelled rootLabel
	Vmlinuz string // the image's kernel and initrd, copied out of it
	Initrd  string
}

const (
	rootLabel = "vmtest-root"
	jobLabel  = "vmtest-job"
	// jobScript is the job disk's script, run by /bin/sh from the disk.
	jobScript = "job"
	suite     = "bookworm"
)

// mirrors are apt's sources inside the image: what the kernel matrix's
// kernels come from.
var mirrors = []string{
	"deb http://deb.debian.org/debian bookworm main",
	"deb http://deb.debian.org/debian bookworm-updates main",
	"deb http://deb.debian.org/debian-security bookworm-security main",
}

// VM is a VM that boots r and runs the job on jobDisk.
func (r RootFS) VM(jobDisk string, cpus, memoryMiB int) VM {
	return VM{
		Kernel: r.Kernel, Vmlinuz: r.Vmlinuz, Initramfs: r.Initrd,
		CPUs: cpus, MemoryMiB: memoryMiB,
		Disks: []string{r.Image, jobDisk},
		// fsck.mode=skip: the image is fresh at every boot (QEMU keeps
		// what the VM writes elsewhere). The serial getty would share
		// the console with the job: masked.
		Boot: "root=LABEL=" + rootLabel + " rw fsck.mode=skip systemd.mask=serial-getty@" + qemuArches[r.Kernel.Arch].console + ".service",
	}
}

// BuildRootFS returns a Debian bookworm image for k's architecture with
// systemd, k's newest kernel and the packages include names: from
// cacheDir when it was built before, else built with mmdebstrap (which
// needs root, and downloads from deb.debian.org) and mkfs.ext4 -d (no
// loop mount). A new kernel in apt's lists, or other packages, make
// another image. When apt cannot be asked, the newest image already
// built with these packages is used, and say says so.
func BuildRootFS(ctx context.Context, k Kernel, include []string, cacheDir string, say func(format string, args ...any)) (RootFS, error) {
	r := RootFS{Kernel: k}
	if k.Arch != hostDebArch() {
		return r, fmt.Errorf("a root file system for %s: only the host's architecture (%s) is built", k.Arch, hostDebArch())
	}
	include = append([]string{"systemd-sysv", "udev", "initramfs-tools"}, include...)
	sort.Strings(include)
	files := rootFiles(k)
	key := rootKey(k, include, files)
	img, err := newestPackage(ctx, k)
	if err != nil {
		cached, ok := newestRoot(k, cacheDir, key)
		if !ok {
			return r, err
		}
		say("%v; using the image with %s %s, built before", err, cached.Package, cached.Version)
		return cached, nil
	}
	r.Package, r.Version = img.Package, img.Version
	r.setPaths(filepath.Join(cacheDir, r.Package+"_"+r.Version+"_"+key))
	if _, err := os.Stat(r.Image); err == nil {
		return r, nil
	}
	say("building a Debian %s image with %s %s (mmdebstrap; a few minutes)", suite, r.Package, r.Version)
	if err := r.build(ctx, append(include, r.Package), files); err != nil {
		return r, err
	}
	return r, nil
}

func (r *RootFS) setPaths(dir string) {
	r.Image = filepath.Join(dir, "rootfs.ext4")
	r.Vmlinuz = filepath.Join(dir, "vmlinuz")
	r.Initrd = filepath.Join(dir, "initrd.img")
}

// build makes the image in a temporary directory renamed into place, so
// that an interrupted build is never taken for an image.
func (r RootFS) build(ctx context.Context, include []string, files map[string]string) error {
	for _, tool := range []string{"mmdebstrap", "mkfs.ext4"} {
		if _, err := exec.LookPath(tool); err != nil {
			return fmt.Errorf("%s not found: apt-get install mmdebstrap e2fsprogs", tool)
		}
	}
	if os.Geteuid() != 0 {
		// In unshare mode the files would belong to subordinate ids,
		// and mkfs.ext4 -d would copy those into the image.
		return fmt.Errorf("building a root file system needs root (mmdebstrap --mode=root)")
	}
	dir := filepath.Dir(r.Image)
	if err := os.MkdirAll(filepath.Dir(dir), 0o755); err != nil {
		return fmt.Errorf("image cache: %w", err)
	}
	tmp, err := os.MkdirTemp(filepath.Dir(dir), ".build-")
	if err != nil {
		return fmt.Errorf("image cache: %w", err)
	}
	defer os.RemoveAll(tmp)
	root := filepath.Join(tmp, "root")
	args := append([]string{"--mode=root", "--variant=minbase", "--include=" + strings.Join(include, ","), suite, root}, mirrors...)
	if _, err := output(ctx, "", "mmdebstrap", args...); err != nil {
		return err
	}
	for name, text := range files {
		p := filepath.Join(root, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
			return err
		}
	}
	// Started with the system, as systemctl enable would.
	wants := filepath.Join(root, "etc/systemd/system/multi-user.target.wants")
	if err := os.MkdirAll(wants, 0o755); err != nil {
		return err
	}
	if err := os.Symlink("../vmtest-job.service", filepath.Join(wants, "vmtest-job.service")); err != nil {
		return err
	}
	release := strings.TrimPrefix(r.Package, "linux-image-")
	tmpR := r
	tmpR.setPaths(tmp)
	for from, to := range map[string]string{"boot/vmlinuz-" + release: tmpR.Vmlinuz, "boot/initrd.img-" + release: tmpR.Initrd} {
		if err := copyOut(filepath.Join(root, from), to); err != nil {
			return fmt.Errorf("the image's kernel: %w", err)
		}
	}
	// Room for what the VM installs and writes (QEMU keeps the writes
	// out of the image, in a sparse temporary file).
	used, err := dirSize(root)
	if err != nil {
		return err
	}
	size := (used*3/2>>20 + 1024) << 20
	if err := mkfs(ctx, root, tmpR.Image, rootLabel, size); err != nil {
		return err
	}
	if err := os.RemoveAll(root); err != nil {
		return err
	}
	if err := os.Rename(tmp, dir); err != nil {
		if _, serr := os.Stat(r.Image); serr == nil {
			return nil // built at the same time by another run
		}
		return fmt.Errorf("image cache: %w", err)
	}
	return os.Chmod(dir, 0o755)
}

// rootFiles are the files BuildRootFS writes into the image, by path.
func rootFiles(k Kernel) map[string]string {
	console := qemuArches[k.Arch].console
	return map[string]string{
		"etc/hostname": "vmtest\n",
		// Without a machine id every boot of the image would be its
		// first, and systemd would apply the unit presets and run
		// the first-boot units each time.
		"etc/machine-id": "5d3b9c1e0f0a4b8e9a7c6d5e4f3a2b1c\n",
		"etc/systemd/system/vmtest-job.service": `[Unit]
Description=vmtest: the job on the disk labelled ` + jobLabel + `
After=multi-user.target
SuccessAction=poweroff-force
FailureAction=poweroff-force

[Service]
Type=oneshot
TimeoutStartSec=infinity
ExecStart=/bin/sh -c 'mount -o ro LABEL=` + jobLabel + ` /mnt && exec /bin/sh /mnt/` + jobScript + `'
StandardInput=null
StandardOutput=tty
StandardError=inherit
TTYPath=/dev/` + console + `
TTYReset=no
TTYVHangup=no
`,
	}
}

// rootKey names what went into an image: the packages and the files.
func rootKey(k Kernel, include []string, files map[string]string) string {
	h := sha256.New()
	fmt.Fprintf(h, "%s %s %q %q\n", suite, k.Arch, include, mirrors)
	names := make([]string, 0, len(files))
	for name := range files {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		fmt.Fprintf(h, "%s %q\n", name, files[name])
	}
	return hex.EncodeToString(h.Sum(nil))[:12]
}

// newestRoot is the cached image of k's series, with key, with the
// highest ABI number.
func newestRoot(k Kernel, cacheDir, key string) (RootFS, bool) {
	dirs, _ := filepath.Glob(filepath.Join(cacheDir, "*_*_"+key))
	best, bestN := RootFS{Kernel: k}, -1
	for _, d := range dirs {
		f := strings.Split(filepath.Base(d), "_")
		m := k.Package.FindStringSubmatch(f[0])
		if m == nil || len(f) != 3 {
			continue
		}
		r := RootFS{Kernel: k, Package: f[0], Version: f[1]}
		r.setPaths(d)
		if _, err := os.Stat(r.Image); err != nil {
			continue
		}
		if n, _ := strconv.Atoi(m[1]); n > bestN {
			best, bestN = r, n
		}
	}
	return best, bestN >= 0
}

// WriteJobDisk writes an ext4 image to path for a RootFS's VM to run:
// files, by their base names, and a script that runs command there (with
// /bin/sh, in the disk's directory) between the kernel line and the exit
// line that Run reads.
func WriteJobDisk(ctx context.Context, path string, files []string, command string) error {
	dir, err := os.MkdirTemp("", "vmtest-job")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	for _, f := range files {
		if err := copyOut(f, filepath.Join(dir, filepath.Base(f))); err != nil {
			return fmt.Errorf("job disk: %w", err)
		}
	}
	// The command in a subshell: its exit must not skip the exit line.
	script := fmt.Sprintf("echo \"%s$(uname -r) $(uname -m)\"\ncd \"$(dirname \"$0\")\"\n(\n%s\n)\necho \"%s$?\"\n", kernelMarker, command, exitMarker)
	if err := os.WriteFile(filepath.Join(dir, jobScript), []byte(script), 0o755); err != nil {
		return err
	}
	used, err := dirSize(dir)
	if err != nil {
		return err
	}
	os.Remove(path)
	return mkfs(ctx, dir, path, jobLabel, (used*5/4>>20+32)<<20)
}

// mkfs makes an ext4 file system image at img of size bytes holding the
// files of dir, with no mount.
func mkfs(ctx context.Context, dir, img, label string, size int64) error {
	_, err := output(ctx, "", "mkfs.ext4", "-q", "-F", "-L", label, "-d", dir, img, strconv.FormatInt(size>>10, 10)+"k")
	return err
}

// copyOut copies a regular file, keeping its mode.
func copyOut(from, to string) error {
	in, err := os.Open(from)
	if err != nil {
		return err
	}
	defer in.Close()
	st, err := in.Stat()
	if err != nil {
		return err
	}
	out, err := os.OpenFile(to, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, st.Mode().Perm())
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

// dirSize is the size of the regular files under dir.
func dirSize(dir string) (int64, error) {
	var n int64
	err := filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.Type().IsRegular() {
			info, err := d.Info()
			if err != nil {
				return err
			}
			n += info.Size()
		}
		return nil
	})
	return n, err
}
