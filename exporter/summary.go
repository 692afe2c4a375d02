package exporter

import (
	"cmp"
	"fmt"
	"io"
	"slices"
	"strconv"
	"text/tabwriter"
	"time"

	"github.com/DataDog/sketches-go/ddsketch"
	"github.com/DataDog/sketches-go/ddsketch/mapping"
	"github.com/DataDog/sketches-go/ddsketch/store"

	"github.com/icptrack/icptrack/flow"
	"github.com/icptrack/icptrack/internal/human"
)

// maxSummaryRows bounds the summary's memory on a busy host; operations
// beyond it are counted in one "other" row per mechanism.
const maxSummaryRows = 10000

// Summary aggregates operations per mechanism and per process pair, for the
// table icptrack prints when it stops.
//
// A send is counted under its receiver. When the send happened before any
// receive on its channel named the receiver, it waits in an unresolved
// group of its channel, and is placed when the table is printed, using the
// pairs that linked receives revealed. Receives without a known sender
// (end of file, a sender icptrack did not see) are placed the same way.
type Summary struct {
	rows       map[summaryKey]*summaryRow
	unresolved map[unresolvedKey]*summaryRow
	pairs      map[channelKey]map[[2]uint32]struct{}
	lastPair   pairNote          // the pair noted last: most operations repeat it
	comms      map[uint32]string // the last name seen per process
	// The last operation's process, peer and row: most operations repeat
	// them.
	lastSelf, lastPeer uint32
	lastComm           string
	lastKey            summaryKey
	lastRow            *summaryRow
	first              time.Time
	last               time.Time
	total              summaryRow
}

// summaryKey is a mechanism and the processes at each end: the sender
// (from) and the receiver (to). An unknown end is 0; otherPID stands for
// the rows beyond maxSummaryRows, severalPIDs for a group that had more
// than one peer.
type summaryKey struct {
	mech     flow.Mechanism
	from, to uint32
}

const (
	otherPID    = ^uint32(0)
	severalPIDs = ^uint32(0) - 1
	kernelPID   = ^uint32(0) - 2 // signals the kernel raised
)

// pids keys an operation's two ends; the kernel gets a pid of its own.
func pids(op *flow.Operation) (self, peer uint32) {
	self, peer = op.PID, op.Peer.PID
	if self == 0 {
		self = kernelPID
	}
	if op.Peer == flow.Kernel {
		peer = kernelPID
	}
	return self, peer
}

type pairNote struct {
	ck       channelKey
	from, to uint32
}

type channelKey struct {
	mech    flow.Mechanism
	channel string
}

// unresolvedKey is one process's operations on a channel whose other end
// was not known when they were made.
type unresolvedKey struct {
	channelKey
	self uint32
	op   flow.OpType
}

type summaryRow struct {
	ops, sent, received, errors int64
	// timed counts the operations whose duration was measured (or, for a
	// call whose start was not seen, its wait): a row with none, such as
	// signals, has no durations to show.
	timed     int64
	durations *ddsketch.DDSketch
}

// NewSummary returns an empty summary.
func NewSummary() *Summary {
	return &Summary{
		rows:       make(map[summaryKey]*summaryRow),
		unresolved: make(map[unresolvedKey]*summaryRow),
		pairs:      make(map[channelKey]map[[2]uint32]struct{}),
		comms:      make(map[uint32]string),
	}
}

// Add counts one operation.
func (s *Summary) Add(op *flow.Operation) {
	self, peer := pids(op)
	// Consecutive operations are nearly always of the same few processes:
	// skip the map when nothing changed since the last one.
	if self != s.lastSelf || op.Comm != s.lastComm {
		if c, ok := s.comms[self]; !ok || c != op.Comm {
			s.comms[self] = op.Comm
		}
		s.lastSelf, s.lastComm = self, op.Comm
	}
	if peer != 0 && peer != s.lastPeer {
		c, ok := s.comms[peer]
		if !ok || c == "" {
			s.comms[peer], c = op.Peer.Comm, op.Peer.Comm
		}
		if c != "" {
			s.lastPeer = peer // named: nothing more to learn
		}
	}
	var r *summaryRow
	if peer == 0 && op.Channel != "" && len(s.unresolved) < maxSummaryRows {
		r = s.group(unresolvedKey{channelKey{op.Mechanism, op.Channel}, self, op.Op})
	} else {
		k := summaryKey{mech: op.Mechanism, from: self, to: peer}
		if op.Op == flow.Receive {
			k.from, k.to = peer, self
		}
		if peer != 0 && op.Channel != "" && len(s.unresolved) > 0 {
			s.notePair(channelKey{op.Mechanism, op.Channel}, k.from, k.to)
		}
		r = s.row(k)
	}
	r.add(op)
	s.total.add(op)
	if s.first.IsZero() || op.Time.Before(s.first) {
		s.first = op.Time
	}
	if end := op.Time.Add(op.Duration); end.After(s.last) {
		s.last = end
	}
}

// notePair remembers who sent to whom on a channel, for placing its
// unresolved groups; only needed while there are any.
func (s *Summary) notePair(ck channelKey, from, to uint32) {
	n := pairNote{ck, from, to}
	if n == s.lastPair {
		return
	}
	s.lastPair = n
	set := s.pairs[ck]
	if set == nil {
		if len(s.pairs) >= maxSummaryRows {
			return
		}
		set = make(map[[2]uint32]struct{})
		s.pairs[ck] = set
	}
	set[[2]uint32{from, to}] = struct{}{}
}

func (s *Summary) row(k summaryKey) *summaryRow {
	if s.lastRow != nil && k == s.lastKey {
		return s.lastRow
	}
	r := s.rows[k]
	if r != nil {
		s.lastKey, s.lastRow = k, r
		return r
	}
	if len(s.rows) >= maxSummaryRows {
		k = summaryKey{mech: k.mech, from: otherPID, to: otherPID}
		if r = s.rows[k]; r != nil {
			return r
		}
	}
	r = &summaryRow{durations: newSketch()}
	s.rows[k] = r
	return r
}

func (s *Summary) group(k unresolvedKey) *summaryRow {
	r := s.unresolved[k]
	if r == nil {
		r = &summaryRow{durations: newSketch()}
		s.unresolved[k] = r
	}
	return r
}

// resolve places the unresolved groups: under the one process their
// channel's linked receives paired them with, or under an unknown peer.
func (s *Summary) resolve() {
	for k, g := range s.unresolved {
		var other uint32
		n := 0
		for pair := range s.pairs[k.channelKey] {
			if k.op == flow.Send && pair[0] == k.self {
				other, n = pair[1], n+1
			}
			if k.op == flow.Receive && pair[1] == k.self {
				other, n = pair[0], n+1
			}
		}
		if n > 1 {
			other = severalPIDs
		}
		rk := summaryKey{mech: k.mech, from: k.self, to: other}
		if k.op == flow.Receive {
			rk.from, rk.to = other, k.self
		}
		s.row(rk).merge(g)
		delete(s.unresolved, k)
	}
}

func newSketch() *ddsketch.DDSketch {
	// 1% relative accuracy; errors only in the last digit shown. The
	// cubically interpolated mapping needs no logarithm per value, and a
	// dense store no page lookups: a sketch takes every operation.
	m, err := mapping.NewCubicallyInterpolatedMapping(0.01)
	if err != nil {
		panic(err) // only for an invalid accuracy
	}
	return ddsketch.NewDDSketch(m, store.NewDenseStore(), store.NewDenseStore())
}

func (r *summaryRow) add(op *flow.Operation) {
	n := op.Ops()
	r.ops += n
	switch op.Op {
	case flow.Send:
		r.sent += op.Bytes
	case flow.Receive:
		r.received += op.Bytes
	}
	// EAGAIN is how non-blocking I/O says "not yet"; programs handle it,
	// so it is not counted as an error here (the event log still has it).
	if op.Error != "" && op.Error != "EAGAIN" {
		r.errors += n
	}
	if !op.StartUnknown || op.Blocked {
		r.timed += n
	}
	if r.durations != nil {
		// DDSketch takes positive values; a 0 ns duration (start unknown)
		// counts as the smallest. A coalesced run adds its operations
		// at their mean time in the call.
		_ = r.durations.AddWithCount(max(float64(OpDuration(op)), 1), float64(n))
	}
}

func (r *summaryRow) merge(o *summaryRow) {
	r.ops += o.ops
	r.sent += o.sent
	r.received += o.received
	r.errors += o.errors
	r.timed += o.timed
	_ = r.durations.MergeWith(o.durations)
}

// Operations is the number of operations added.
func (s *Summary) Operations() int64 { return s.total.ops }

// Losses are what was lost on the way, for the summary's last line.
type Losses struct {
	Dropped uint64 // operations lost in the kernel's ring buffer
	Other   uint64 // records lost or unreadable for other reasons, and state the kernel could not give a task or socket
}

// Print writes the table. Rows are sorted by mechanism, then by operations.
func (s *Summary) Print(w io.Writer, losses Losses) error {
	s.resolve()
	span := s.last.Sub(s.first)
	if s.total.ops == 0 {
		span = 0
	}
	fmt.Fprintf(w, "\nicptrack: %d operations between %d processes over %s, %s sent, %s received\n",
		s.total.ops, len(s.comms), span.Round(time.Millisecond), bytesString(s.total.sent), bytesString(s.total.received))

	keys := make([]summaryKey, 0, len(s.rows))
	for k := range s.rows {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b summaryKey) int {
		if c := cmp.Compare(a.mech, b.mech); c != 0 {
			return c
		}
		if c := cmp.Compare(s.rows[b].ops, s.rows[a].ops); c != 0 {
			return c
		}
		return cmp.Or(cmp.Compare(a.from, b.from), cmp.Compare(a.to, b.to))
	})
	if len(keys) > 0 {
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "MECHANISM\tFROM\tTO\tOPS\tSENT\tRECEIVED\tP50\tP99\tERRORS\t")
		for _, k := range keys {
			r := s.rows[k]
			p50, p99 := noDuration, noDuration
			if r.timed > 0 {
				p50, p99 = quantile(r.durations, 0.5), quantile(r.durations, 0.99)
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%s\t%s\t%s\t%s\t%d\t\n",
				k.mech, s.processString(k.from), s.processString(k.to), r.ops,
				bytesString(r.sent), bytesString(r.received), p50, p99, r.errors)
		}
		if err := tw.Flush(); err != nil {
			return err
		}
	}
	if losses.Dropped == 0 && losses.Other == 0 {
		_, err := fmt.Fprintln(w, "icptrack: 0 events dropped")
		return err
	}
	_, err := fmt.Fprintf(w, "icptrack: WARNING: %d events dropped (ring buffer full), %d other records lost: "+
		"the numbers above are incomplete; raise --ring-buffer or trace fewer mechanisms\n", losses.Dropped, losses.Other)
	return err
}

func (s *Summary) processString(pid uint32) string {
	switch pid {
	case 0:
		return "?"
	case otherPID:
		return "(other)"
	case severalPIDs:
		return "(several)"
	case kernelPID:
		return "kernel"
	}
	return s.comms[pid] + "[" + strconv.FormatUint(uint64(pid), 10) + "]"
}

// noDuration stands in a duration column where the row's operations had
// none that was measured: a made-up 1ns would look like a fact.
const noDuration = "—"

func quantile(sk *ddsketch.DDSketch, q float64) string {
	v, err := sk.GetValueAtQuantile(q)
	if err != nil {
		return "-"
	}
	return human.Duration(time.Duration(v))
}

func bytesString(n int64) string {
	const unit = 1024
	if n < unit {
		return strconv.FormatInt(n, 10) + "B"
	}
	v, suffix := float64(n)/unit, "KiB"
	for _, s := range []string{"MiB", "GiB", "TiB"} {
		if v < unit {
			break
		}
		v, suffix = v/unit, s
	}
	return strconv.FormatFloat(v, 'f', 1, 64) + suffix
}
