package probes

import (
	"bufio"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"time"
)

// A container runtime names the cgroup of each container after its id, a
// 64-digit hex string, in its own way:
//
//	Docker, cgroupfs driver:       /docker/<id>
//	Docker, systemd driver:        /system.slice/docker-<id>.scope
//	containerd (Kubernetes):       /kubepods/burstable/pod<uid>/<id>
//	                               /kubepods.slice/.../cri-containerd-<id>.scope
//	CRI-O:                         /kubepods.slice/.../crio-<id>.scope
//	Podman:                        /machine.slice/libpod-<id>.scope
//
// The runtimes' own helper processes (crio-conmon-, libpod-conmon-) are not
// containers.
var containerComponent = regexp.MustCompile(`^(?:docker-|cri-containerd-|crio-|libpod-)?([0-9a-f]{64})(?:\.scope)?$`)

// ContainerIDFromCgroup returns the container id in a cgroup path, or "".
func ContainerIDFromCgroup(path string) string {
	parts := strings.Split(path, "/")
	for i := len(parts) - 1; i >= 0; i-- {
		if strings.Contains(parts[i], "conmon") {
			continue
		}
		if m := containerComponent.FindStringSubmatch(parts[i]); m != nil {
			return m[1]
		}
	}
	return ""
}

// containerIDFromProc reads a process's cgroups (v1 and v2 lines) and
// returns the first container id any of them names.
func containerIDFromProc(pid uint32) (string, bool) {
	f, err := os.Open("/proc/" + itoa(pid) + "/cgroup")
	if err != nil {
		return "", false
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		// hierarchy-id:controllers:path
		line := sc.Text()
		if i := strings.LastIndexByte(line, ':'); i >= 0 {
			if id := ContainerIDFromCgroup(line[i+1:]); id != "" {
				return id, true
			}
		}
	}
	return "", true
}

// cgroupPaths maps cgroup v2 ids (the inode number of the cgroup's
// directory, which is what BPF reports) to paths, by walking the cgroup2
// mount; it walks again when it meets an id it does not know, at most once
// a second.
type cgroupPaths struct {
	mu       sync.Mutex
	root     string
	paths    map[uint64]string
	lastWalk time.Time
}

func newCgroupPaths() *cgroupPaths {
	return &cgroupPaths{root: Cgroup2Mount(), paths: make(map[uint64]string)}
}

func (c *cgroupPaths) path(id uint64) (string, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if p, ok := c.paths[id]; ok {
		return p, true
	}
	if c.root == "" || time.Since(c.lastWalk) < time.Second {
		return "", false
	}
	c.lastWalk = time.Now()
	_ = filepath.WalkDir(c.root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || !d.IsDir() {
			return nil
		}
		if info, err := d.Info(); err == nil {
			if st, ok := info.Sys().(*syscall.Stat_t); ok {
				c.paths[st.Ino] = "/" + strings.TrimPrefix(strings.TrimPrefix(p, c.root), "/")
			}
		}
		return nil
	})
	p, ok := c.paths[id]
	return p, ok
}

// Cgroup2Mount is where the unified (v2) hierarchy is mounted, or "".
func Cgroup2Mount() string {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return ""
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		for i, f := range fields {
			if f == "-" && i+1 < len(fields) && fields[i+1] == "cgroup2" {
				return unescapeMount(fields[4])
			}
		}
	}
	return ""
}
