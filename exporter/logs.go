package exporter

import (
	"encoding/base64"
	"strconv"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"

	"github.com/icptrack/icptrack/flow"
)

// LogOptions tune how operations become log records.
type LogOptions struct {
	Resource     ResourceOptions
	BatchSize    int
	BatchTimeout time.Duration
	// InOrder keeps the records of a batch in the order of the
	// operations: a process's records share a ResourceLogs only while
	// they follow each other. A capture file needs that order; a backend
	// that indexes logs does not, and gets one ResourceLogs per process.
	InOrder bool
}

// Logs turns operations into OTel log records (pdata), one per operation,
// with the event log's fields as attributes under the same names, for
// pipelines that index logs (Loki, Elasticsearch). Like Spans, it batches
// with one Resource per process and is not safe for concurrent use.
type Logs struct {
	opts    LogOptions
	sink    func(plog.Logs)
	res     *resources
	batch   plog.Logs
	byPID   map[uint32]plog.LogRecordSlice
	n       int
	started time.Time
	body    []byte
	last    plog.LogRecordSlice // InOrder: the records of lastPID
	lastPID uint32
}

// NewLogs hands each batch to sink, which owns it from then on.
func NewLogs(opts LogOptions, sink func(plog.Logs)) *Logs {
	d := DefaultSpanOptions()
	if opts.BatchSize <= 0 {
		opts.BatchSize = d.BatchSize
	}
	if opts.BatchTimeout <= 0 {
		opts.BatchTimeout = d.BatchTimeout
	}
	l := &Logs{opts: opts, sink: sink, res: newResources(opts.Resource), byPID: make(map[uint32]plog.LogRecordSlice)}
	l.batch = plog.NewLogs()
	return l
}

// Add maps one operation.
func (l *Logs) Add(op *flow.Operation) {
	if l.n == 0 {
		l.started = time.Now()
	}
	var records plog.LogRecordSlice
	var ok bool
	if l.opts.InOrder {
		records, ok = l.last, l.n > 0 && op.PID == l.lastPID
	} else {
		records, ok = l.byPID[op.PID]
	}
	if !ok {
		attrs := l.res.of(op)
		rl := l.batch.ResourceLogs().AppendEmpty()
		attrs.CopyTo(rl.Resource().Attributes())
		sl := rl.ScopeLogs().AppendEmpty()
		sl.Scope().SetName(ScopeName)
		sl.Scope().SetVersion(Version())
		records = sl.LogRecords()
		if l.opts.InOrder {
			l.last, l.lastPID = records, op.PID
		} else {
			l.byPID[op.PID] = records
		}
	}
	r := records.AppendEmpty()
	r.SetTimestamp(pcommon.NewTimestampFromTime(op.Time))
	r.SetObservedTimestamp(pcommon.NewTimestampFromTime(time.Now()))
	r.SetEventName("ipc." + op.Op.String())
	if IsError(op.Error) {
		r.SetSeverityNumber(plog.SeverityNumberWarn)
		r.SetSeverityText("WARN")
	} else {
		r.SetSeverityNumber(plog.SeverityNumberInfo)
		r.SetSeverityText("INFO")
	}
	r.SetSpanID(spanID(op.ID))
	l.body = appendLogBody(l.body[:0], op)
	r.Body().SetStr(string(l.body))
	a := r.Attributes()
	a.EnsureCapacity(24)
	eventFields(op, attrFields{a})
	if l.n++; l.n >= l.opts.BatchSize {
		l.Flush()
	}
}

// appendLogBody is a line a person reads: "write pipe:[7] 64 bytes".
func appendLogBody(b []byte, op *flow.Operation) []byte {
	b = append(b, operationName(op)...)
	if op.Endpoint != "" {
		b = append(b, ' ')
		b = append(b, op.Endpoint...)
	}
	if op.Op == flow.Send || op.Op == flow.Receive {
		b = append(b, ' ')
		b = strconv.AppendInt(b, op.Bytes, 10)
		b = append(b, " bytes"...)
	}
	if op.Peer.PID != 0 || op.Peer == flow.Kernel {
		if op.Op == flow.Receive {
			b = append(b, " from "...)
		} else {
			b = append(b, " to "...)
		}
		b = append(b, op.Peer.Comm...)
		if op.Peer.PID != 0 {
			b = append(b, '[')
			b = strconv.AppendUint(b, uint64(op.Peer.PID), 10)
			b = append(b, ']')
		}
	}
	if op.Error != "" {
		b = append(b, ": "...)
		b = append(b, op.Error...)
	}
	return b
}

// Tick sends a batch that has waited long enough.
func (l *Logs) Tick(now time.Time) {
	if l.n > 0 && now.Sub(l.started) >= l.opts.BatchTimeout {
		l.Flush()
	}
}

// Flush sends the batch being built, if it has records.
func (l *Logs) Flush() {
	if l.n == 0 {
		return
	}
	b := l.batch
	l.batch = plog.NewLogs()
	clear(l.byPID)
	l.n = 0
	l.sink(b)
}

// attrFields writes the event log's fields as OTel attributes.
type attrFields struct{ m pcommon.Map }

func (a attrFields) id(k field, id flow.OpID) { a.m.PutStr(k.name, id.String()) }

// The record's own timestamp carries the time.
func (a attrFields) time(field, time.Time) {}

func (a attrFields) int(k field, v int64) { a.m.PutInt(k.name, v) }

func (a attrFields) str(k field, v string) { a.m.PutStr(k.name, v) }

func (a attrFields) name(k field, v string) { a.m.PutStr(k.name, v) }

func (a attrFields) bool(k field, v bool) { a.m.PutBool(k.name, v) }

func (a attrFields) ids(k field, ids []flow.OpID) {
	s := a.m.PutEmptySlice(k.name)
	s.EnsureCapacity(len(ids))
	for _, id := range ids {
		s.AppendEmpty().SetStr(id.String())
	}
}

func (a attrFields) pids(k field, pids []uint32) {
	s := a.m.PutEmptySlice(k.name)
	s.EnsureCapacity(len(pids))
	for _, p := range pids {
		s.AppendEmpty().SetInt(int64(p))
	}
}

func (a attrFields) bytes(k field, v []byte) {
	a.m.PutStr(k.name, base64.StdEncoding.EncodeToString(v))
}
