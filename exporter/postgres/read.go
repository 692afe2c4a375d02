package postgres

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/icptrack/icptrack/flow"
)

// ReadOperations reads the operations table with prefix back as
// operations, as the event log would give them: a field the event log
// leaves out is zero (QueueDepth -1). where, if not empty, is an SQL
// condition on the table's columns.
func ReadOperations(ctx context.Context, conn *pgx.Conn, prefix, where string) ([]*flow.Operation, error) {
	if err := CheckTablePrefix(prefix); err != nil {
		return nil, err
	}
	q := "SELECT " + strings.Join(columnNames, ", ") + " FROM " + tablesOf(prefix).operations
	if where != "" {
		q += " WHERE " + where
	}
	rows, err := conn.Query(ctx, q+" ORDER BY time, time_ns, id")
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var ops []*flow.Operation
	for rows.Next() {
		var (
			r        row
			mech, ot string
		)
		if err := rows.Scan(&r.time, &r.timeNs, &r.id, &r.duration, &r.pid, &r.tid, &r.ppid, &r.comm, &r.exe, &r.cmdline,
			&mech, &ot, &r.syscall, &r.channel, &r.endpoint, &r.bytes, &r.count, &r.busy, &r.peerPID, &r.peerComm,
			&r.peers, &r.signal, &r.queueDepth, &r.messageType, &r.links, &r.error, &r.blocked, &r.payload,
			&r.payloadTruncated, &r.containerID, &r.cgroupID); err != nil {
			return nil, err
		}
		op, err := r.operation(mech, ot)
		if err != nil {
			return nil, err
		}
		ops = append(ops, op)
	}
	return ops, rows.Err()
}

// row is one row of the operations table as scanned.
type row struct {
	time                                       time.Time
	timeNs                                     int16
	id, duration, pid, tid, ppid, bytes, count int64
	comm                                       string
	exe, cmdline, syscall, channel, endpoint   *string
	busy, peerPID, queueDepth, messageType     *int64
	peerComm, signal, error, containerID       *string
	peers, links                               []int64
	blocked                                    bool
	payload                                    []byte
	payloadTruncated                           *bool
	cgroupID                                   *int64
}

func (r *row) operation(mech, ot string) (*flow.Operation, error) {
	op := &flow.Operation{
		ID:       flow.OpID(r.id),
		Time:     r.time.UTC().Add(time.Duration(r.timeNs)),
		Duration: time.Duration(r.duration),
		PID:      uint32(r.pid), TID: uint32(r.tid), PPID: uint32(r.ppid),
		Comm: r.comm, Exe: deref(r.exe), Cmdline: deref(r.cmdline),
		Syscall: deref(r.syscall), Channel: deref(r.channel), Endpoint: deref(r.endpoint),
		Bytes:  r.bytes,
		Signal: deref(r.signal), Error: deref(r.error), ContainerID: deref(r.containerID),
		Blocked:    r.blocked,
		QueueDepth: -1,
	}
	var ok bool
	if op.Mechanism, ok = mechanisms[mech]; !ok {
		return nil, fmt.Errorf("operation %s: %q is not a mechanism", op.ID, mech)
	}
	if op.Op, ok = opTypes[ot]; !ok {
		return nil, fmt.Errorf("operation %s: %q is not an operation type", op.ID, ot)
	}
	if r.count > 1 {
		op.Count = uint32(r.count)
		if r.busy != nil {
			op.Busy = time.Duration(*r.busy)
		}
	}
	if r.peerPID != nil {
		op.Peer = flow.Peer{PID: uint32(*r.peerPID), Comm: deref(r.peerComm)}
	}
	for _, p := range r.peers {
		op.Peers = append(op.Peers, uint32(p))
	}
	for _, id := range r.links {
		op.Links = append(op.Links, flow.OpID(id))
	}
	if r.queueDepth != nil {
		op.QueueDepth = *r.queueDepth
	}
	if r.messageType != nil {
		op.MessageType, op.HasMessageType = *r.messageType, true
	}
	if r.payloadTruncated != nil {
		op.PayloadCaptured, op.PayloadTruncated = true, *r.payloadTruncated
		op.Payload = r.payload
		if op.Payload == nil {
			op.Payload = []byte{}
		}
	}
	if r.cgroupID != nil {
		op.CgroupID = uint64(*r.cgroupID)
	}
	return op, nil
}

func deref[T any](p *T) T {
	var zero T
	if p == nil {
		return zero
	}
	return *p
}

var (
	mechanisms = map[string]flow.Mechanism{}
	opTypes    = map[string]flow.OpType{}
)

func init() {
	for m := flow.Mechanism(1); int(m) < flow.MechanismCount; m++ {
		mechanisms[m.String()] = m
	}
	for o := flow.Send; o <= flow.Wake; o++ {
		opTypes[o.String()] = o
	}
}
