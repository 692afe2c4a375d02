// Package flow turns the operations the kernel reports into matched IPC
// operations: it keeps a table of channels, finds which sends each receive
// delivered, and names the peer on the other end. It is pure Go and knows
// nothing about BPF.
package flow

import (
	"fmt"
	"math/bits"
	"sort"
	"strings"
)

// Mechanism is a kind of IPC channel.
type Mechanism uint8

// The mechanisms icptrack traces. Their names are the values of the event
// log's mechanism field.
const (
	Pipe Mechanism = iota + 1
	FIFO
	UnixStream
	UnixDgram
	UnixSeqpacket
	TCP
	UDP
	POSIXMQ
	SysVMQ
	SysVShm
	POSIXShm
	Memfd
	Signal
	mechanismEnd
)

// MechanismCount bounds the mechanisms' values: arrays indexed by
// Mechanism have this length.
const MechanismCount = int(mechanismEnd)

var mechanismNames = [...]string{
	Pipe:          "pipe",
	FIFO:          "fifo",
	UnixStream:    "unix_stream",
	UnixDgram:     "unix_dgram",
	UnixSeqpacket: "unix_seqpacket",
	TCP:           "tcp",
	UDP:           "udp",
	POSIXMQ:       "posix_mq",
	SysVMQ:        "sysv_mq",
	SysVShm:       "sysv_shm",
	POSIXShm:      "posix_shm",
	Memfd:         "memfd",
	Signal:        "signal",
}

// Groups that --mechanisms accepts besides the single names.
var mechanismGroups = map[string]MechanismSet{
	"all":  AllMechanisms(),
	"unix": SetOf(UnixStream, UnixDgram, UnixSeqpacket),
	"inet": SetOf(TCP, UDP),
	"mq":   SetOf(POSIXMQ, SysVMQ),
	"shm":  SetOf(SysVShm, POSIXShm, Memfd),
}

func (m Mechanism) String() string {
	if m > 0 && m < mechanismEnd {
		return mechanismNames[m]
	}
	return fmt.Sprintf("mechanism(%d)", uint8(m))
}

// Stream reports whether the mechanism carries a byte stream, matched by
// offsets, rather than messages, matched by sequence.
func (m Mechanism) Stream() bool {
	return m == Pipe || m == FIFO || m == UnixStream || m == TCP
}

// MechanismSet is a set of mechanisms.
type MechanismSet uint32

// SetOf returns the set holding ms.
func SetOf(ms ...Mechanism) MechanismSet {
	var s MechanismSet
	for _, m := range ms {
		s |= 1 << m
	}
	return s
}

// AllMechanisms is every mechanism icptrack can trace.
func AllMechanisms() MechanismSet {
	var s MechanismSet
	for m := Pipe; m < mechanismEnd; m++ {
		s |= 1 << m
	}
	return s
}

// Has reports whether m is in the set.
func (s MechanismSet) Has(m Mechanism) bool { return s&(1<<m) != 0 }

// Len is the number of mechanisms in the set.
func (s MechanismSet) Len() int { return bits.OnesCount32(uint32(s)) }

// List returns the set's mechanisms in order.
func (s MechanismSet) List() []Mechanism {
	var out []Mechanism
	for m := Pipe; m < mechanismEnd; m++ {
		if s.Has(m) {
			out = append(out, m)
		}
	}
	return out
}

func (s MechanismSet) String() string {
	names := make([]string, 0, s.Len())
	for _, m := range s.List() {
		names = append(names, m.String())
	}
	return strings.Join(names, ",")
}

// MechanismNames lists every accepted name: the mechanisms, then the groups.
func MechanismNames() []string {
	names := make([]string, 0, len(mechanismNames)+len(mechanismGroups))
	for m := Pipe; m < mechanismEnd; m++ {
		names = append(names, m.String())
	}
	groups := make([]string, 0, len(mechanismGroups))
	for g := range mechanismGroups {
		groups = append(groups, g)
	}
	sort.Strings(groups)
	return append(names, groups...)
}

// ParseMechanisms parses a comma-separated list of mechanism names and
// groups, such as "pipe,unix" or "all".
func ParseMechanisms(list string) (MechanismSet, error) {
	var s MechanismSet
	for _, name := range strings.Split(list, ",") {
		name = strings.TrimSpace(strings.ToLower(name))
		if name == "" {
			continue
		}
		if g, ok := mechanismGroups[name]; ok {
			s |= g
			continue
		}
		m, ok := mechanismByName(name)
		if !ok {
			return 0, fmt.Errorf("unknown mechanism %q: use one or more of %s, separated by commas",
				name, strings.Join(MechanismNames(), ", "))
		}
		s |= SetOf(m)
	}
	if s == 0 {
		return 0, fmt.Errorf("no mechanism given: use one or more of %s, separated by commas",
			strings.Join(MechanismNames(), ", "))
	}
	return s, nil
}

func mechanismByName(name string) (Mechanism, bool) {
	for m := Pipe; m < mechanismEnd; m++ {
		if mechanismNames[m] == name {
			return m, true
		}
	}
	return 0, false
}
