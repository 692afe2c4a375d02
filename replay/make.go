package replay

import (
	"bufio"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/icptrack/icptrack/flow"
)

// made is a channel the replayer recreated: a descriptor per role for
// those it hands to stand-ins, or the name or key of a queue or segment.
type made struct {
	mech  flow.Mechanism
	files map[Role]*os.File
	name  string
	key   int
	// maxMsg and depth size a queue; maxMsg is a segment's size.
	maxMsg, depth int64
	// existed: the replayer made the queue or segment before the start.
	existed bool
}

func (m *made) close() {
	for _, f := range m.files {
		f.Close()
	}
	m.files = nil
}

// makeChannel recreates channel i of the plan in dir: a fresh channel of
// the same mechanism, both ends connected.
func makeChannel(dir string, i int, c *Channel) (*made, error) {
	m := &made{mech: c.Mech, files: map[Role]*os.File{}}
	file := func(fd int, name string) *os.File { return os.NewFile(uintptr(fd), name) }
	switch c.Mech {
	case flow.Pipe:
		var p [2]int
		if err := unix.Pipe2(p[:], unix.O_CLOEXEC); err != nil {
			return nil, err
		}
		m.files[Read], m.files[Write] = file(p[0], "pipe"), file(p[1], "pipe")
	case flow.FIFO:
		path := filepath.Join(dir, fmt.Sprintf("fifo-%d", i))
		if err := unix.Mkfifo(path, 0o600); err != nil {
			return nil, err
		}
		// Read end first, without waiting for a writer.
		r, err := unix.Open(path, unix.O_RDONLY|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
		if err != nil {
			return nil, err
		}
		w, err := unix.Open(path, unix.O_WRONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			unix.Close(r)
			return nil, err
		}
		m.files[Read], m.files[Write] = file(r, path), file(w, path)
	case flow.UnixStream, flow.UnixSeqpacket:
		typ := unix.SOCK_STREAM
		if c.Mech == flow.UnixSeqpacket {
			typ = unix.SOCK_SEQPACKET
		}
		path := filepath.Join(dir, fmt.Sprintf("sock-%d", i))
		a, b, err := connectPair(unix.AF_UNIX, typ, &unix.SockaddrUnix{Name: path})
		if err != nil {
			return nil, err
		}
		m.files[EndA], m.files[EndB] = file(a, path), file(b, path)
	case flow.TCP:
		a, b, err := connectPair(unix.AF_INET, unix.SOCK_STREAM, &unix.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}})
		if err != nil {
			return nil, err
		}
		m.files[EndA], m.files[EndB] = file(a, "tcp"), file(b, "tcp")
	case flow.UDP:
		a, b, err := udpPair()
		if err != nil {
			return nil, err
		}
		m.files[EndA], m.files[EndB] = file(a, "udp"), file(b, "udp")
	case flow.UnixDgram:
		path := filepath.Join(dir, fmt.Sprintf("dgram-%d", i))
		r, err := unix.Socket(unix.AF_UNIX, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			return nil, err
		}
		if err := unix.Bind(r, &unix.SockaddrUnix{Name: path}); err != nil {
			unix.Close(r)
			return nil, err
		}
		w, err := unix.Socket(unix.AF_UNIX, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
		if err == nil {
			err = unix.Connect(w, &unix.SockaddrUnix{Name: path})
		}
		if err != nil {
			unix.Close(r)
			return nil, err
		}
		m.files[Read], m.files[Write] = file(r, path), file(w, path)
	case flow.POSIXMQ:
		m.name = fmt.Sprintf("/icptrack-replay-%d-%d", os.Getpid(), i)
		m.maxMsg, m.depth = max(c.MaxMessage, 1), queueDepth(c.Depth)
		if c.Existed {
			fd, err := mqOpen(m.name, unix.O_RDWR|unix.O_CREAT|unix.O_EXCL, m.depth, m.maxMsg)
			if err != nil {
				return nil, fmt.Errorf("create POSIX queue %s: %w", m.name, err)
			}
			unix.Close(fd)
			m.existed = true
		}
	case flow.SysVMQ:
		key, err := freeKey("msg")
		if err != nil {
			return nil, err
		}
		m.key, m.maxMsg = key, max(c.MaxMessage, 1)
		if c.Existed {
			if _, err := msgGet(key, unix.IPC_CREAT|unix.IPC_EXCL|0o600); err != nil {
				return nil, fmt.Errorf("create SysV queue with key %#x: %w", key, err)
			}
			m.existed = true
		}
	case flow.SysVShm, flow.POSIXShm, flow.Memfd:
		if err := m.segment(c, i); err != nil {
			return nil, err
		}
	default:
		return nil, fmt.Errorf("%s channels are not recreated", c.Mech)
	}
	return m, nil
}

// connectPair listens on addr (port 0: any), connects to it and accepts:
// two connected sockets, the accepted one first.
func connectPair(family, typ int, addr unix.Sockaddr) (int, int, error) {
	ln, err := unix.Socket(family, typ|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return -1, -1, err
	}
	defer unix.Close(ln)
	if err := unix.Bind(ln, addr); err != nil {
		return -1, -1, err
	}
	if err := unix.Listen(ln, 1); err != nil {
		return -1, -1, err
	}
	to, err := unix.Getsockname(ln)
	if err != nil {
		return -1, -1, err
	}
	c, err := unix.Socket(family, typ|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return -1, -1, err
	}
	if err := unix.Connect(c, to); err != nil {
		unix.Close(c)
		return -1, -1, err
	}
	a, _, err := unix.Accept4(ln, unix.SOCK_CLOEXEC)
	if err != nil {
		unix.Close(c)
		return -1, -1, err
	}
	return a, c, nil
}

// udpPair is two loopback UDP sockets connected to each other.
func udpPair() (int, int, error) {
	var fds [2]int
	var addrs [2]unix.Sockaddr
	for i := range fds {
		fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
		if err == nil {
			err = unix.Bind(fd, &unix.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}})
		}
		if err == nil {
			addrs[i], err = unix.Getsockname(fd)
		}
		if err != nil {
			for _, f := range fds[:i] {
				unix.Close(f)
			}
			if fd > 0 {
				unix.Close(fd)
			}
			return -1, -1, err
		}
		fds[i] = fd
	}
	for i := range fds {
		if err := unix.Connect(fds[i], addrs[1-i]); err != nil {
			unix.Close(fds[0])
			unix.Close(fds[1])
			return -1, -1, err
		}
	}
	return fds[0], fds[1], nil
}

// queueDepth is how many messages a recreated POSIX queue holds: as many
// as the capture's held, at least the usual 10, at most what this
// system lets a process ask for.
func queueDepth(need int) int64 {
	limit := int64(10)
	if b, err := os.ReadFile("/proc/sys/fs/mqueue/msg_max"); err == nil {
		if n, err := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64); err == nil {
			limit = n
		}
	}
	if os.Geteuid() == 0 {
		limit = max(limit, 65536) // HARD_MSGMAX, for CAP_SYS_RESOURCE
	}
	return min(max(int64(need), 10), limit)
}

// sysvObjects reads /proc/sysvipc/KIND (msg or shm): the keys of the
// objects there are, and their ids. Reading it, unlike asking msgget or
// shmget, leaves no trace.
func sysvObjects(kind string) map[int]int {
	ids := map[int]int{}
	f, err := os.Open("/proc/sysvipc/" + kind)
	if err != nil {
		return ids
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 2 {
			continue
		}
		k, err1 := strconv.Atoi(fields[0])
		id, err2 := strconv.Atoi(fields[1])
		if err1 == nil && err2 == nil {
			ids[k] = id
		}
	}
	return ids
}

// freeKey is a SysV IPC key no object of kind (msg or shm) has.
func freeKey(kind string) (int, error) {
	used := sysvObjects(kind)
	for range 100 {
		k := 0x49430000 | rand.IntN(0xffff)
		if _, taken := used[k]; !taken {
			return k, nil
		}
	}
	return 0, errors.New("no free SysV IPC key")
}

// shmDir is where POSIX shared memory lives: shm_open opens files there.
const shmDir = "/dev/shm"

// segment names a shared-memory segment, and makes it when the capture
// never saw it made.
func (m *made) segment(c *Channel, i int) error {
	m.maxMsg = max(c.MaxMessage, 1)
	switch c.Mech {
	case flow.SysVShm:
		key, err := freeKey("shm")
		if err != nil {
			return err
		}
		m.key = key
		if c.Existed {
			if _, err := unix.SysvShmGet(key, int(m.maxMsg), unix.IPC_CREAT|unix.IPC_EXCL|0o600); err != nil {
				return fmt.Errorf("create SysV segment with key %#x: %w", key, err)
			}
		}
	case flow.POSIXShm:
		m.name = fmt.Sprintf("/icptrack-replay-%d-%d", os.Getpid(), i)
		if c.Existed {
			fd, err := createSegment(shmDir+m.name, m.maxMsg)
			if err != nil {
				return fmt.Errorf("create POSIX segment %s: %w", m.name, err)
			}
			unix.Close(fd)
		}
	case flow.Memfd:
		if c.Existed {
			// Not in /dev/shm: its users are handed the descriptor, as
			// the capture's got it from their parent.
			fd, err := unix.MemfdCreate("icptrack-replay", unix.MFD_CLOEXEC)
			if err == nil {
				err = unix.Ftruncate(fd, m.maxMsg)
			}
			if err != nil {
				return fmt.Errorf("create memfd: %w", err)
			}
			m.files[Segment] = os.NewFile(uintptr(fd), "memfd")
		}
	}
	m.existed = c.Existed
	return nil
}

// createSegment creates a POSIX shared-memory object of size bytes, as
// shm_open(O_CREAT|O_EXCL) and ftruncate do.
func createSegment(path string, size int64) (int, error) {
	fd, err := unix.Open(path, unix.O_RDWR|unix.O_CREAT|unix.O_EXCL|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return -1, err
	}
	if err := unix.Ftruncate(fd, size); err != nil {
		unix.Close(fd)
		return -1, err
	}
	return fd, nil
}
