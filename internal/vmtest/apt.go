package vmtest

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
)

// Image is a kernel, fetched and extracted.
type Image struct {
	Package string // linux-image-6.1.0-57-cloud-amd64
	Version string // 6.1.192-3
	Vmlinuz string // path of the extracted kernel
}

// FetchKernel returns the newest kernel of k's series that apt offers,
// from cacheDir when it was fetched before, else downloaded with
// apt-get download and extracted with dpkg-deb. When apt cannot be asked,
// the newest kernel already in cacheDir is used, and say says so.
func FetchKernel(ctx context.Context, k Kernel, cacheDir string, say func(format string, args ...any)) (Image, error) {
	img, err := newestPackage(ctx, k)
	if err != nil {
		cached, ok := newestCached(k, cacheDir)
		if !ok {
			return Image{}, err
		}
		say("%v; using %s %s, fetched before", err, cached.Package, cached.Version)
		return cached, nil
	}
	dir := filepath.Join(cacheDir, img.Package+"_"+img.Version)
	img.Vmlinuz = filepath.Join(dir, "vmlinuz")
	if _, err := os.Stat(img.Vmlinuz); err == nil {
		return img, nil
	}
	say("downloading %s %s with apt-get", img.Package, img.Version)
	if err := download(ctx, k, img, dir); err != nil {
		return Image{}, err
	}
	return img, nil
}

// newestPackage finds the package of k's series with the highest ABI
// number in apt's lists, and its version.
func newestPackage(ctx context.Context, k Kernel) (Image, error) {
	out, err := output(ctx, "", "apt-cache", "search", "--names-only", k.Package.String())
	if err != nil {
		return Image{}, fmt.Errorf("look up %s kernels: %w", k.Name, err)
	}
	best, bestN := "", -1
	for _, line := range strings.Split(string(out), "\n") {
		name, _, _ := strings.Cut(line, " ")
		if m := k.Package.FindStringSubmatch(name); m != nil {
			if n, _ := strconv.Atoi(m[1]); n > bestN {
				best, bestN = name, n
			}
		}
	}
	if best == "" {
		hint := "apt-get update"
		if k.Arch != hostDebArch() {
			hint = fmt.Sprintf("dpkg --add-architecture %s && apt-get update", k.Arch)
		}
		return Image{}, fmt.Errorf("no package matching %s in apt's lists: run %s", k.Package, hint)
	}
	out, err = output(ctx, "", "apt-cache", "show", "--no-all-versions", best+":"+k.Arch)
	if err != nil {
		return Image{}, fmt.Errorf("look up the version of %s: %w", best, err)
	}
	for _, line := range strings.Split(string(out), "\n") {
		if v, ok := strings.CutPrefix(line, "Version: "); ok {
			return Image{Package: best, Version: strings.TrimSpace(v)}, nil
		}
	}
	return Image{}, fmt.Errorf("apt-cache show %s:%s gave no version", best, k.Arch)
}

// download fetches the package into dir/vmlinuz. The kernel is extracted
// into a temporary directory renamed into place, so that an interrupted
// download is never taken for a fetched kernel.
func download(ctx context.Context, k Kernel, img Image, dir string) error {
	if err := os.MkdirAll(filepath.Dir(dir), 0o755); err != nil {
		return fmt.Errorf("kernel cache: %w", err)
	}
	tmp, err := os.MkdirTemp(filepath.Dir(dir), ".fetch-")
	if err != nil {
		return fmt.Errorf("kernel cache: %w", err)
	}
	defer os.RemoveAll(tmp)
	if _, err := output(ctx, tmp, "apt-get", "download", img.Package+":"+k.Arch+"="+img.Version); err != nil {
		return fmt.Errorf("download %s: %w", img.Package, err)
	}
	debs, _ := filepath.Glob(filepath.Join(tmp, "*.deb"))
	if len(debs) != 1 {
		return fmt.Errorf("apt-get download %s left %d .deb files, want 1", img.Package, len(debs))
	}
	if err := extractVmlinuz(ctx, debs[0], filepath.Join(tmp, "vmlinuz")); err != nil {
		return err
	}
	if err := os.Remove(debs[0]); err != nil {
		return err
	}
	if err := os.Rename(tmp, dir); err != nil {
		if _, serr := os.Stat(filepath.Join(dir, "vmlinuz")); serr == nil {
			return nil // fetched at the same time by another run
		}
		return fmt.Errorf("kernel cache: %w", err)
	}
	return os.Chmod(dir, 0o755)
}

// extractVmlinuz copies ./boot/vmlinuz-* out of a kernel package, reading
// its data archive from dpkg-deb rather than unpacking the modules too.
func extractVmlinuz(ctx context.Context, deb, dst string) error {
	cmd := exec.CommandContext(ctx, "dpkg-deb", "--fsys-tarfile", deb)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	data, err := cmd.StdoutPipe()
	if err != nil {
		return err
	}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("dpkg-deb: %w (apt-get install dpkg)", err)
	}
	found, copyErr := copyVmlinuz(data, dst)
	io.Copy(io.Discard, data)
	if err := cmd.Wait(); err != nil {
		return fmt.Errorf("dpkg-deb --fsys-tarfile %s: %w: %s", deb, err, strings.TrimSpace(stderr.String()))
	}
	if copyErr != nil {
		return fmt.Errorf("extract the kernel from %s: %w", deb, copyErr)
	}
	if !found {
		return fmt.Errorf("%s holds no boot/vmlinuz-*", deb)
	}
	return nil
}

func copyVmlinuz(r io.Reader, dst string) (bool, error) {
	tr := tar.NewReader(r)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return false, nil
		}
		if err != nil {
			return false, err
		}
		if !strings.HasPrefix(h.Name, "./boot/vmlinuz-") || h.Typeflag != tar.TypeReg {
			continue
		}
		f, err := os.Create(dst)
		if err != nil {
			return false, err
		}
		if _, err := io.Copy(f, tr); err != nil {
			f.Close()
			return false, err
		}
		return true, f.Close()
	}
}

// newestCached is the cached kernel of k's series with the highest ABI
// number.
func newestCached(k Kernel, cacheDir string) (Image, bool) {
	dirs, _ := filepath.Glob(filepath.Join(cacheDir, "*_*"))
	var best Image
	bestN := -1
	for _, d := range dirs {
		name, version, _ := strings.Cut(filepath.Base(d), "_")
		m := k.Package.FindStringSubmatch(name)
		if m == nil {
			continue
		}
		if _, err := os.Stat(filepath.Join(d, "vmlinuz")); err != nil {
			continue
		}
		if n, _ := strconv.Atoi(m[1]); n > bestN {
			best, bestN = Image{Package: name, Version: version, Vmlinuz: filepath.Join(d, "vmlinuz")}, n
		}
	}
	return best, bestN >= 0
}

// hostDebArch is dpkg's native architecture (amd64 or arm64 here).
func hostDebArch() string {
	out, err := exec.Command("dpkg", "--print-architecture").Output()
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(out))
}

// output runs a command in dir and returns its standard output; a failure carries
// what the command said.
func output(ctx context.Context, dir, name string, args ...string) ([]byte, error) {
	if _, err := exec.LookPath(name); err != nil {
		return nil, fmt.Errorf("%s not found: this needs Debian's apt (or a cached kernel)", name)
	}
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = dir
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w: %s", name, strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return out, nil
}
