package flow

import (
	"net/netip"
	"strconv"
)

// addr is an IP address and port as map keys want it: fixed size, no
// pointers, so it hashes fast (netip.AddrPort holds a pointer).
type addr struct {
	ip   [16]byte
	port uint16
}

func addrOf(ap netip.AddrPort) addr {
	if !ap.IsValid() {
		return addr{}
	}
	return addr{ip: ap.Addr().As16(), port: ap.Port()}
}

// Channel ids are shared by both ends and stable for the channel's life.
// Endpoints are what a person recognises: a path, pipe:[inode], an address
// pair from this end's point of view.

func pipeChannel(ino uint64) string { return "pipe:" + strconv.FormatUint(ino, 10) }

func pipeEndpoint(ino uint64) string { return "pipe:[" + strconv.FormatUint(ino, 10) + "]" }

// devString renders a kernel dev_t (major<<20 | minor) as major:minor.
func devString(dev uint32) string {
	return strconv.FormatUint(uint64(dev>>20), 10) + ":" + strconv.FormatUint(uint64(dev&0xfffff), 10)
}

func fifoChannel(dev uint32, ino uint64) string {
	return "fifo:" + devString(dev) + ":" + strconv.FormatUint(ino, 10)
}

func fifoEndpoint(path string, dev uint32, ino uint64) string {
	if path != "" {
		return path
	}
	return "fifo:[" + devString(dev) + ":" + strconv.FormatUint(ino, 10) + "]"
}

// unixChannel names a connected pair of unix sockets by both, smaller
// first, so that both ends compute the same id; or a datagram socket that
// anyone may send to by itself.
func unixChannel(a, b uint64) string {
	if b == 0 {
		return "unix:" + hex64(a)
	}
	if b < a {
		a, b = b, a
	}
	return "unix:" + hex64(a) + "-" + hex64(b)
}

func hex64(v uint64) string {
	const digits = "0123456789abcdef"
	var b [16]byte
	for i := 15; i >= 0; i-- {
		b[i] = digits[v&0xf]
		v >>= 4
	}
	return string(b[:])
}

// unixEndpoint is the socket's path (a leading NUL marks an abstract name,
// shown as @name) or, for unnamed sockets, socket:[inode] as in /proc.
func unixEndpoint(path string, ino uint64) string {
	if path != "" {
		if path[0] == 0 {
			return "@" + path[1:]
		}
		return path
	}
	return "socket:[" + strconv.FormatUint(ino, 10) + "]"
}

// inetChannel names a TCP or UDP conversation by its two addresses, in a
// fixed order, and the network namespace.
func inetChannel(m Mechanism, netns uint32, a, b netip.AddrPort) string {
	s := m.String() + ":" + strconv.FormatUint(uint64(netns), 10) + ":"
	if !b.IsValid() {
		return s + a.String()
	}
	if b.Compare(a) < 0 {
		a, b = b, a
	}
	return s + a.String() + "-" + b.String()
}

func inetEndpoint(local, remote netip.AddrPort) string {
	if !remote.IsValid() {
		return local.String()
	}
	return local.String() + "->" + remote.String()
}
