package exporter

import (
	"bufio"
	"encoding/base64"
	"encoding/binary"
	"encoding/csv"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"go.opentelemetry.io/collector/pdata/plog"

	"github.com/icptrack/icptrack/flow"
)

// Format is how the event log is written (--format).
type Format string

// The event log's formats.
const (
	JSONL     Format = "jsonl"
	CSV       Format = "csv"
	Text      Format = "text"
	OTLPJSON  Format = "otlp-json"
	OTLPProto Format = "otlp-proto"
)

// Formats lists the formats, the default first.
var Formats = []Format{JSONL, CSV, Text, OTLPJSON, OTLPProto}

// ParseFormat checks a --format value; "" is the default, jsonl.
func ParseFormat(s string) (Format, error) {
	if s == "" {
		return JSONL, nil
	}
	for _, f := range Formats {
		if string(f) == s {
			return f, nil
		}
	}
	names := make([]string, len(Formats))
	for i, f := range Formats {
		names[i] = string(f)
	}
	return "", fmt.Errorf("%q is not a format: use one of %s", s, strings.Join(names, ", "))
}

// OpWriter writes operations in one format. The first write error sticks
// and is returned by Flush, which writes out everything buffered (for the
// OTLP formats, the batch being built).
type OpWriter interface {
	Write(op *flow.Operation)
	Flush() error
}

// WriterOptions tune NewWriter.
type WriterOptions struct {
	// Colour: text lines get ANSI colours (the caller checks that the
	// destination is a terminal).
	Colour bool
	// BatchSize is the log records per OTLP request (default 512).
	BatchSize int
	// Appending: the destination already holds a log in this format, so
	// the operations follow on with no header (CSV's row of names).
	Appending bool
}

// DefaultOTLPBatch is the log records per request of the OTLP formats.
const DefaultOTLPBatch = 512

// NewWriter writes operations to w in format f.
func NewWriter(f Format, w io.Writer, o WriterOptions) (OpWriter, error) {
	switch f {
	case JSONL, "":
		return NewEventLog(w), nil
	case CSV:
		c := newCSVLog(w)
		c.header = o.Appending
		return c, nil
	case Text:
		return &textLog{w: bufio.NewWriterSize(w, 64<<10), colour: o.Colour}, nil
	case OTLPJSON, OTLPProto:
		return newOTLPLog(f, w, o.BatchSize), nil
	}
	_, err := ParseFormat(string(f))
	return nil, err
}

// CSVColumns are the CSV format's columns, in order: every field of the
// event log, in the order the JSON Lines log writes them.
var CSVColumns = []string{
	fId.name, fTime.name, fDurationNs.name, fPid.name, fTid.name, fPpid.name, fComm.name,
	fExe.name, fCmdline.name, fMechanism.name, fOp.name, fSyscall.name, fChannel.name,
	fEndpoint.name, fBytes.name, fCount.name, fBusyNs.name, fPeerPid.name, fPeerComm.name,
	fPeers.name, fSignal.name, fQueueDepth.name, fMessageType.name, fLinks.name, fError.name,
	fBlocked.name, fPayload.name, fPayloadTruncated.name, fContainerId.name, fCgroupId.name,
}

// csvLog writes a header row, then a row per operation; a field that
// does not apply is an empty cell, and lists (links, peers) are joined
// with single spaces.
type csvLog struct {
	w      *bufio.Writer
	cw     *csv.Writer
	row    []string
	col    map[string]int
	enc    encoder
	header bool
	err    error
}

func newCSVLog(w io.Writer) *csvLog {
	bw := bufio.NewWriterSize(w, 256<<10)
	col := make(map[string]int, len(CSVColumns))
	for i, c := range CSVColumns {
		col[c] = i
	}
	return &csvLog{w: bw, cw: csv.NewWriter(bw), row: make([]string, len(CSVColumns)), col: col}
}

func (c *csvLog) Write(op *flow.Operation) {
	if c.err != nil {
		return
	}
	if !c.header {
		c.header = true
		if c.err = c.cw.Write(CSVColumns); c.err != nil {
			return
		}
	}
	clear(c.row)
	eventFields(op, csvFields{c})
	c.err = c.cw.Write(c.row)
}

func (c *csvLog) Flush() error {
	if c.err != nil {
		return c.err
	}
	c.cw.Flush()
	if c.err = c.cw.Error(); c.err == nil {
		c.err = c.w.Flush()
	}
	return c.err
}

type csvFields struct{ c *csvLog }

func (f csvFields) set(k field, v string) { f.c.row[f.c.col[k.name]] = v }

func (f csvFields) id(k field, id flow.OpID) { f.set(k, string(appendID(nil, id))) }
func (f csvFields) time(k field, t time.Time) {
	f.set(k, string(f.c.enc.appendTime(nil, t)))
}
func (f csvFields) int(k field, v int64)    { f.set(k, strconv.FormatInt(v, 10)) }
func (f csvFields) str(k field, v string)   { f.set(k, v) }
func (f csvFields) name(k field, v string)  { f.set(k, v) }
func (f csvFields) bool(k field, v bool)    { f.set(k, strconv.FormatBool(v)) }
func (f csvFields) bytes(k field, v []byte) { f.set(k, base64.StdEncoding.EncodeToString(v)) }
func (f csvFields) ids(k field, ids []flow.OpID) {
	var b []byte
	for i, id := range ids {
		if i > 0 {
			b = append(b, ' ')
		}
		b = appendID(b, id)
	}
	f.set(k, string(b))
}
func (f csvFields) pids(k field, pids []uint32) {
	var b []byte
	for i, p := range pids {
		if i > 0 {
			b = append(b, ' ')
		}
		b = strconv.AppendUint(b, uint64(p), 10)
	}
	f.set(k, string(b))
}

// otlpLog writes operations as OTLP logs requests (the Logs mapping, with
// the records kept in order), in the layout of the Collector's
// fileexporter: a JSON request per line, or each protobuf request after
// its length as 4 big-endian bytes.
type otlpLog struct {
	w     *bufio.Writer
	logs  *Logs
	proto bool
	buf   []byte
	err   error
}

func newOTLPLog(f Format, w io.Writer, batch int) *otlpLog {
	if batch <= 0 {
		batch = DefaultOTLPBatch
	}
	o := &otlpLog{w: bufio.NewWriterSize(w, 256<<10), proto: f == OTLPProto}
	o.logs = NewLogs(LogOptions{BatchSize: batch, BatchTimeout: time.Hour, InOrder: true}, o.write)
	return o
}

func (o *otlpLog) write(ld plog.Logs) {
	if o.err != nil {
		return
	}
	var b []byte
	if o.proto {
		b, o.err = (&plog.ProtoMarshaler{}).MarshalLogs(ld)
		if o.err == nil {
			o.buf = binary.BigEndian.AppendUint32(o.buf[:0], uint32(len(b)))
			if _, o.err = o.w.Write(o.buf); o.err == nil {
				_, o.err = o.w.Write(b)
			}
		}
		return
	}
	b, o.err = (&plog.JSONMarshaler{}).MarshalLogs(ld)
	if o.err == nil {
		if _, o.err = o.w.Write(b); o.err == nil {
			o.err = o.w.WriteByte('\n')
		}
	}
}

func (o *otlpLog) Write(op *flow.Operation) {
	if o.err == nil {
		o.logs.Add(op)
	}
}

func (o *otlpLog) Flush() error {
	o.logs.Flush()
	if o.err != nil {
		return o.err
	}
	o.err = o.w.Flush()
	return o.err
}
