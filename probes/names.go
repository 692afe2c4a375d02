package probes

import (
	"bufio"
	"io"
	"os"
	"path"
	"slices"
	"strconv"
	"strings"
	"sync"

	lru "github.com/hashicorp/golang-lru/v2"
)

// names remembers what the kernel's name records said: unix socket paths
// by inode, and FIFO paths by device and inode. The kernel sends each name
// once, when it first sees the object, so they are kept until evicted by
// newer ones.
type names struct {
	sockets *lru.Cache[uint64, string]
	fifos   *lru.Cache[fifoKey, string]
	mounts  *mountTable
}

type fifoKey struct {
	dev uint32
	ino uint64
}

const namesKept = 1 << 16

func newNames(mounts *mountTable) *names {
	s, _ := lru.New[uint64, string](namesKept)
	f, _ := lru.New[fifoKey, string](namesKept)
	return &names{sockets: s, fifos: f, mounts: mounts}
}

func (n *names) addUnix(ino uint64, p string) { n.sockets.Add(ino, p) }

func (n *names) unix(ino uint64) string {
	if ino == 0 {
		return ""
	}
	p, _ := n.sockets.Get(ino)
	return p
}

// addFIFO takes a FIFO's path components, leaf first, relative to the root
// of its filesystem, and places them under the filesystem's mount point.
func (n *names) addFIFO(dev uint32, ino uint64, parts []string) {
	slices.Reverse(parts)
	rel := "/" + strings.Join(parts, "/")
	if mp := n.mounts.mountPoint(dev); mp != "" {
		rel = path.Join(mp, rel)
	}
	n.fifos.Add(fifoKey{dev, ino}, rel)
}

// remember keeps the name a call gave an object (a queue, a shared-memory
// file), for its later operations.
func (n *names) remember(dev uint32, ino uint64, name string) {
	if ino != 0 && name != "" {
		n.fifos.Add(fifoKey{dev, ino}, name)
	}
}

func (n *names) fifo(dev uint32, ino uint64) string {
	p, _ := n.fifos.Get(fifoKey{dev, ino})
	return p
}

// mountTable maps a filesystem's kernel device number to where its root
// is mounted, from /proc/self/mountinfo.
type mountTable struct {
	mu     sync.Mutex
	file   string
	points map[uint32]string
}

func newMountTable(file string) *mountTable {
	return &mountTable{file: file}
}

func (m *mountTable) mountPoint(dev uint32) string {
	m.mu.Lock()
	defer m.mu.Unlock()
	if p, ok := m.points[dev]; ok {
		return p
	}
	// A filesystem mounted after the last read: read again, once per miss.
	if f, err := os.Open(m.file); err == nil {
		m.points = parseMountInfo(f)
		f.Close()
	}
	return m.points[dev]
}

// parseMountInfo reads mountinfo lines ("36 35 98:0 /mnt1 /mnt2 ...": id,
// parent, major:minor, root within the filesystem, mount point) and keeps,
// per device, the first mount of the filesystem's root.
func parseMountInfo(r io.Reader) map[uint32]string {
	points := make(map[uint32]string)
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 5 || f[3] != "/" {
			continue
		}
		major, minor, ok := strings.Cut(f[2], ":")
		if !ok {
			continue
		}
		ma, err1 := strconv.ParseUint(major, 10, 32)
		mi, err2 := strconv.ParseUint(minor, 10, 32)
		if err1 != nil || err2 != nil {
			continue
		}
		dev := uint32(ma<<20 | mi) // the kernel's internal dev_t
		if _, seen := points[dev]; !seen {
			points[dev] = unescapeMount(f[4])
		}
	}
	return points
}

// unescapeMount undoes mountinfo's octal escapes (\040 for a space).
func unescapeMount(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			if v, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(v))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}
