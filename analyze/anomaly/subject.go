package anomaly

import (
	"net/netip"
	"strings"

	"github.com/icptrack/icptrack/flow"
)

// Subject is what a finding is about. Which fields are set depends on the
// finding's kind (see Kind).
//
// Subjects are named by what stays the same when the same programs run
// again: the mechanism, the endpoint with its run-specific parts masked
// (see Endpoint), and the processes' command names. Inodes, pids and
// channel ids differ on every run, so a subject keyed on them would make
// every channel of a baseline taken from another capture look new.
type Subject struct {
	Mechanism string `json:"mechanism,omitempty"`
	// Endpoint is the operations' endpoint with every run of letters and
	// digits that contains a digit replaced by "*" (pids, inodes, mkdtemp
	// suffixes: /tmp/app*/server.sock, /orders-*, pipe:[*]); for TCP and
	// UDP, the ephemeral ports (32768 and above) only; for SysV objects,
	// the key without the id.
	Endpoint string `json:"endpoint,omitempty"`
	// Comm is the process: the end of a channel, or the sender of a pair
	// or signal.
	Comm string `json:"comm,omitempty"`
	// PeerComm is the receiver of a pair or signal.
	PeerComm string `json:"peer_comm,omitempty"`
	// Comms are the processes at a new channel's ends.
	Comms []string `json:"comms,omitempty"`
	// Op is send or receive, for a latency.
	Op string `json:"op,omitempty"`
	// Error is the errno of an error burst.
	Error string `json:"error,omitempty"`
	// Signal is a signal storm's signal.
	Signal string `json:"signal,omitempty"`
}

// String names the subject for a person.
func (s Subject) String() string {
	var b strings.Builder
	switch {
	case s.Signal != "":
		b.WriteString(s.Signal + " " + s.Comm + " → " + s.PeerComm)
		return b.String()
	case s.Mechanism == "" && s.PeerComm != "":
		return s.Comm + " → " + s.PeerComm
	case len(s.Comms) > 0:
		return s.Mechanism + " " + s.Endpoint + " between " + strings.Join(s.Comms, ", ")
	case s.Comm == "":
		return s.Mechanism + " " + s.Endpoint
	}
	b.WriteString(s.Comm + " on " + s.Mechanism + " " + s.Endpoint)
	if s.Op != "" {
		b.WriteString(", " + s.Op + "s")
	}
	if s.Error != "" {
		b.WriteString(", " + s.Error)
	}
	return b.String()
}

// ephemeralPorts is where Linux picks a connecting socket's port by
// default (net.ipv4.ip_local_port_range is 32768–60999): such a port
// names one connection, not a service.
const ephemeralPorts = 32768

// stableEndpoint masks the parts of an operation's endpoint that change
// from run to run (see Subject.Endpoint).
func stableEndpoint(mech flow.Mechanism, endpoint string) string {
	switch mech {
	case flow.Signal:
		return endpoint
	case flow.TCP, flow.UDP:
		if e, ok := stableInet(endpoint); ok {
			return e
		}
	case flow.SysVMQ, flow.SysVShm:
		// "key 0x1f2e msqid 7": the key is what programs agree on; the id
		// is the kernel's.
		if key, _, ok := strings.Cut(endpoint, " msqid "); ok && strings.HasPrefix(key, "key ") {
			return key
		}
		if key, _, ok := strings.Cut(endpoint, " shmid "); ok && strings.HasPrefix(key, "key ") {
			return key
		}
	}
	return maskDigits(endpoint)
}

// stableInet masks the ephemeral ports of "addr:port->addr:port".
func stableInet(endpoint string) (string, bool) {
	ends := strings.Split(endpoint, "->")
	for i, e := range ends {
		ap, err := netip.ParseAddrPort(e)
		if err != nil {
			return "", false
		}
		if ap.Port() >= ephemeralPorts {
			if ap.Addr().Is6() {
				ends[i] = "[" + ap.Addr().String() + "]:*"
			} else {
				ends[i] = ap.Addr().String() + ":*"
			}
		}
	}
	return strings.Join(ends, "->"), true
}

// maskDigits replaces each run of letters and digits that contains a
// digit with "*".
func maskDigits(s string) string {
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
		c := s[i]
		switch {
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
