package analyze

import (
	"net/netip"
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

// ephemeralPorts is where Linux picks the ports of connecting sockets
// (net.ipv4.ip_local_port_range starts at 32768): they change every run.
const ephemeralPorts = 32768

// MaskEndpoint hides the parts of an endpoint that change from run to
// run, so that diff and the anomaly detector's baselines can match the
// same channel across captures:
//   - tcp, udp (a:p->b:p): a port of the ephemeral range becomes * and
//     the two ends are put in order, so that both ends of a connection
//     give the same text;
//   - sysv_mq, sysv_shm ("key 0x1f2e msqid 7"): the key, which programs
//     agree on, without the id the kernel gave;
//   - signal: as it is (SIGRTMIN+3);
//   - anything else: every run of letters and digits that holds a digit
//     becomes *: inode numbers (pipe:[*], socket:[*]), pids and random
//     suffixes in paths and queue names (/tmp/icptrack-*/server.sock,
//     /orders-*). A random suffix of letters alone (mkstemp's) is not
//     seen, and such names differ between runs.
func MaskEndpoint(mechanism, endpoint string) string {
	switch mechanism {
	case "signal":
		return endpoint
	case "tcp", "udp":
		if m, ok := maskAddresses(endpoint); ok {
			return m
		}
	case "sysv_mq", "sysv_shm":
		for _, id := range []string{" msqid ", " shmid "} {
			if key, _, ok := strings.Cut(endpoint, id); ok && strings.HasPrefix(key, "key ") {
				return key
			}
		}
	}
	return maskRuns(endpoint)
}

// maskRuns replaces each run of letters and digits that holds a digit
// with *.
func maskRuns(s string) string {
	var b strings.Builder
	run, digit := 0, false
	flush := func(end int) {
		if digit {
			b.WriteByte('*')
		} else {
			b.WriteString(s[end-run : end])
		}
		run, digit = 0, false
	}
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c >= '0' && c <= '9':
			run++
			digit = true
		case c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z':
			run++
		default:
			flush(i)
			b.WriteByte(c)
		}
	}
	flush(len(s))
	return b.String()
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
