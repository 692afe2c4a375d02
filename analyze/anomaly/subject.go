package anomaly

import (
	"strings"

	"github.com/icptrack/icptrack/analyze"
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
	// Endpoint is the operations' endpoint with what changes between runs
	// masked, as diff masks it (analyze.MaskEndpoint): pipe:[*],
	// /tmp/app*/server.sock, 127.0.0.1:*->127.0.0.1:5432, a SysV key
	// without its id.
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

// stableEndpoint masks the parts of an operation's endpoint that change
// from run to run, as diff does (analyze.MaskEndpoint).
func stableEndpoint(mech flow.Mechanism, endpoint string) string {
	return analyze.MaskEndpoint(mech.String(), endpoint)
}
