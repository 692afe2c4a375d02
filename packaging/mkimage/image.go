package main

import (
	"archive/tar"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// imageSpec is one image: which program, where it goes, how it starts.
type imageSpec struct {
	name, description string
	dir, pkg          string // go build pkg, run in dir (a module of its own for the Collector)
	missing           string // what to do when dir has no go.mod
	path              string // the binary's path in the image
	entrypoint, cmd   []string
	// files are more files for the image: image path -> path in the
	// repository (or, for the CA certificates, on the host).
	files map[string]string
}

// The images. Both run as root: icptrack loads BPF programs, which takes
// CAP_BPF and CAP_PERFMON, and capabilities a runtime grants apply to
// uid 0 (a non-root user would need file capabilities, which an image
// layer can carry but Kubernetes' drop: [ALL] would strip). The gateway
// Collector, which loads nothing, is run as a non-root user by its
// manifest.
var images = []imageSpec{
	{
		name:        "icptrack",
		description: "icptrack traces inter-process communication (pipes, FIFOs, unix sockets, loopback TCP and UDP, message queues, shared memory, signals) with eBPF",
		dir:         ".", pkg: "./cmd/icptrack",
		missing:    "run mkimage from the repository's top directory",
		path:       "/usr/bin/icptrack",
		entrypoint: []string{"/usr/bin/icptrack"},
		// trace reads /etc/icptrack/config.yaml when it exists (mount
		// one there), and prints the event log otherwise.
		cmd: []string{"trace"},
	},
	{
		name:        "otelcol-icptrack",
		description: "OpenTelemetry Collector with the icptrack receiver (inter-process communication traced with eBPF)",
		dir:         "otelcol-icptrack", pkg: ".",
		missing:    "run make otelcol first (it generates the Collector's sources with ocb)",
		path:       "/otelcol-icptrack",
		entrypoint: []string{"/otelcol-icptrack"},
		cmd:        []string{"--config", "/etc/otelcol-icptrack/config.yaml"},
		// The first look of examples/collector: trace the host, print.
		files: map[string]string{"/etc/otelcol-icptrack/config.yaml": "examples/collector/debug.yaml"},
	},
}

// builtImage is an image's multi-platform index.
type builtImage struct {
	spec  imageSpec
	index v1.ImageIndex
}

// annotations are the OCI annotations, on the index and each manifest, and
// the labels of each image's configuration.
func (s imageSpec) annotations(f facts) map[string]string {
	return map[string]string{
		"org.opencontainers.image.title":       s.name,
		"org.opencontainers.image.description": s.description,
		"org.opencontainers.image.source":      source,
		"org.opencontainers.image.url":         source,
		"org.opencontainers.image.version":     f.version,
		"org.opencontainers.image.revision":    f.revision,
		"org.opencontainers.image.created":     f.created.Format(time.RFC3339),
		"org.opencontainers.image.licenses":    f.licenses,
	}
}

// index makes the image for each platform and their index.
func (s imageSpec) index(f facts, plats []platform, binaries map[platform]string) (v1.ImageIndex, error) {
	ann := s.annotations(f)
	idx := mutate.IndexMediaType(empty.Index, types.OCIImageIndex)
	for _, p := range plats {
		img, err := s.image(f, p, binaries[p], ann)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", p, err)
		}
		cf, err := img.ConfigFile()
		if err != nil {
			return nil, err
		}
		idx = mutate.AppendManifests(idx, mutate.IndexAddendum{
			Add:        img,
			Descriptor: v1.Descriptor{Platform: cf.Platform()},
		})
	}
	return mutate.Annotations(idx, ann).(v1.ImageIndex), nil
}

func (s imageSpec) image(f facts, p platform, binary string, ann map[string]string) (v1.Image, error) {
	layerTar := binary + ".layer.tar"
	if err := s.layer(layerTar, f.created, binary); err != nil {
		return nil, err
	}
	layer, err := tarball.LayerFromFile(layerTar, tarball.WithMediaType(types.OCILayer))
	if err != nil {
		return nil, err
	}
	base := mutate.ConfigMediaType(mutate.MediaType(empty.Image, types.OCIManifestSchema1), types.OCIConfigJSON)
	created := v1.Time{Time: f.created}
	img, err := mutate.Append(base, mutate.Addendum{
		Layer: layer,
		History: v1.History{
			Created:   created,
			CreatedBy: "packaging/mkimage: " + s.path + " (CGO_ENABLED=0 go build -trimpath " + s.pkg + ")",
		},
	})
	if err != nil {
		return nil, err
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, err
	}
	cf = cf.DeepCopy()
	cf.Created = created
	cf.OS, cf.Architecture = p.os, p.arch
	if p.arch == "arm64" {
		cf.Variant = "v8"
	}
	cf.Config = v1.Config{
		Entrypoint: s.entrypoint,
		Cmd:        s.cmd,
		Env:        []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"},
		User:       "0:0",
		WorkingDir: "/",
		Labels:     ann,
	}
	if img, err = mutate.ConfigFile(img, cf); err != nil {
		return nil, err
	}
	return mutate.Annotations(img, ann).(v1.Image), nil
}

// layer is the image's one layer: the binary, its directories, the extra
// files (the CA certificates among them), and a /tmp. Every entry is
// root's and has the commit's time, so that the layer's digest depends on
// the files' contents alone.
func (s imageSpec) layer(out string, mtime time.Time, binary string) error {
	type entry struct {
		mode int64
		from string // a file to copy, or "" for a directory
	}
	entries := map[string]entry{"tmp/": {mode: 0o1777}}
	addDirs := func(p string) {
		for d := filepath.Dir(p); d != "." && d != "/"; d = filepath.Dir(d) {
			entries[d[1:]+"/"] = entry{mode: 0o755}
		}
	}
	entries[s.path[1:]] = entry{mode: 0o755, from: binary}
	addDirs(s.path)
	for to, from := range s.files {
		entries[to[1:]] = entry{mode: 0o644, from: from}
		addDirs(to)
	}
	names := make([]string, 0, len(entries))
	for n := range entries {
		names = append(names, n)
	}
	sort.Strings(names)

	f, err := os.Create(out)
	if err != nil {
		return err
	}
	tw := tar.NewWriter(f)
	for _, n := range names {
		if err = writeEntry(tw, n, entries[n].mode, mtime, entries[n].from); err != nil {
			break
		}
	}
	if err == nil {
		err = tw.Close()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// writeEntry writes a directory, or the file from, as name.
func writeEntry(tw *tar.Writer, name string, mode int64, mtime time.Time, from string) error {
	h := &tar.Header{Name: name, Mode: mode, ModTime: mtime, Typeflag: tar.TypeDir, Format: tar.FormatPAX}
	if from == "" {
		return tw.WriteHeader(h)
	}
	f, err := os.Open(from)
	if err != nil {
		return err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return err
	}
	h.Typeflag, h.Size = tar.TypeReg, st.Size()
	if err := tw.WriteHeader(h); err != nil {
		return err
	}
	_, err = io.Copy(tw, f)
	return err
}

// writeLayout writes the images' indexes to an OCI layout, each named by
// its image's name (oci:<dir>:icptrack), replacing what was there.
func writeLayout(dir string, built []builtImage) error {
	tmp := dir + ".tmp"
	if err := os.RemoveAll(tmp); err != nil {
		return err
	}
	p, err := layout.Write(tmp, empty.Index)
	if err != nil {
		return fmt.Errorf("write OCI layout %s: %w", tmp, err)
	}
	for _, b := range built {
		if err := p.AppendIndex(b.index, layout.WithAnnotations(map[string]string{
			"org.opencontainers.image.ref.name": b.spec.name,
		})); err != nil {
			return fmt.Errorf("write %s to OCI layout %s: %w", b.spec.name, tmp, err)
		}
	}
	if err := os.RemoveAll(dir); err != nil {
		return err
	}
	return os.Rename(tmp, dir)
}

// writeArchive writes one image as an OCI archive (a tar of an OCI
// layout) that names it refs: containerd (kind load image-archive, k3s
// ctr images import) takes the names from io.containerd.image.name,
// skopeo and podman from org.opencontainers.image.ref.name.
func writeArchive(path string, b builtImage, refs []string, mtime time.Time) error {
	tmp, err := os.MkdirTemp("", "mkimage-archive-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	p, err := layout.Write(tmp, empty.Index)
	if err != nil {
		return err
	}
	for _, ref := range refs {
		if err := p.AppendIndex(b.index, layout.WithAnnotations(map[string]string{
			"org.opencontainers.image.ref.name": ref,
			"io.containerd.image.name":          ref,
		})); err != nil {
			return fmt.Errorf("write %s to %s: %w", ref, path, err)
		}
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	f, err := os.CreateTemp(filepath.Dir(path), filepath.Base(path)+".*")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name())
	tw := tar.NewWriter(f)
	err = filepath.WalkDir(tmp, func(name string, d fs.DirEntry, err error) error {
		if err != nil || name == tmp {
			return err
		}
		rel, err := filepath.Rel(tmp, name)
		if err != nil {
			return err
		}
		if d.IsDir() {
			return writeEntry(tw, filepath.ToSlash(rel)+"/", 0o755, mtime, "")
		}
		return writeEntry(tw, filepath.ToSlash(rel), 0o644, mtime, name)
	})
	if err == nil {
		err = tw.Close()
	}
	if err == nil {
		err = f.Chmod(0o644) // CreateTemp's 0600 would keep the archive from a k3s or kind user
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return os.Rename(f.Name(), path)
}
