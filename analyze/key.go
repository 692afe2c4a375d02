package analyze

import (
	"net/netip"
	"regexp"
	"slices"
	"strconv"
	"strings"
)

// Key names a channel so that the same channel in another run of the same
// programs has the same name: its mechanism, its endpoint with what
// changes between runs masked (MaskEndpoint), and the names, not the
// pids, of the processes at its ends, sorted. Channels of one capture
// with the same key (connections to one socket path by the same
// programs) are counted together when captures are compared.
func Key(mechanism, endpoint string, processes []Process) string {
	var comms []string
	for _, p := range processes {
		comms = append(comms, p.name())
	}
	slices.Sort(comms)
	return mechanism + " " + MaskEndpoint(mechanism, endpoint) + " " + strings.Join(slices.Compact(comms), ",")
}

var digits = regexp.MustCompile(`[0-9]+`)

// ephemeralPorts is where Linux picks the ports of connecting sockets
// (net.ipv4.ip_local_port_range starts at 32768): they change every run.
const ephemeralPorts = 32768

// MaskEndpoint hides the parts of an endpoint that change from run to
// run. In a TCP or UDP endpoint (a:p->b:p) a port of the ephemeral range
// becomes * and the two addresses are put in order, so that both ends
// of a connection give the same text; in any other endpoint every run of
// digits becomes #: inode numbers (pipe:[#], socket:[#]), and pids and
// random suffixes in paths and queue names (/tmp/app#/s.sock).
func MaskEndpoint(mechanism, endpoint string) string {
	if mechanism == "tcp" || mechanism == "udp" {
		if m, ok := maskAddresses(endpoint); ok {
			return m
		}
	}
	return digits.ReplaceAllString(endpoint, "#")
}

func maskAddresses(endpoint string) (string, bool) {
	parts := strings.Split(endpoint, "->")
	for i, p := range parts {
		ap, err := netip.ParseAddrPort(p)
		if err != nil {
			return "", false
		}
		port := "*"
		if ap.Port() < ephemeralPorts {
			port = strconv.Itoa(int(ap.Port()))
		}
		host := ap.Addr().String()
		if ap.Addr().Is6() {
			host = "[" + host + "]"
		}
		parts[i] = host + ":" + port
	}
	slices.Sort(parts)
	return strings.Join(parts, "->"), true
}
