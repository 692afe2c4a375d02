// Package capture reads a capture back: the event log in any of the
// formats icptrack writes (exporter.Formats) but text, as operations.
package capture

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"regexp"
	"slices"
	"strings"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"

	"github.com/icptrack/icptrack/exporter"
	"github.com/icptrack/icptrack/flow"
	"github.com/icptrack/icptrack/semconv"
)

// Reader gives a capture's operations in the order they were written.
type Reader interface {
	// Next returns the next operation, or io.EOF after the last. Any
	// other error names the line (or OTLP request) and what is wrong;
	// reading stops there.
	Next() (*flow.Operation, error)
	// Format is the format Open detected.
	Format() exporter.Format
}

// ErrText is returned for a capture in the text format, which is written
// for people and has not everything the others carry.
var ErrText = errors.New("this is icptrack's text format, which is written for people and cannot be read back: capture with --format jsonl, csv, otlp-json or otlp-proto")

// maxRequest bounds one otlp-proto request, so that a damaged length
// cannot make the reader allocate without end.
const maxRequest = 256 << 20

var textLine = regexp.MustCompile(`^(\x1b\[[0-9;]*m)?\d\d:\d\d:\d\d\.\d{6}`)

// Open detects the format of r from its first bytes: a JSON object whose
// first member is "id" (jsonl) or "resourceLogs" (otlp-json), the CSV
// header, or a 4-byte length and a protobuf request (otlp-proto). An
// empty input is an empty capture.
func Open(r io.Reader) (Reader, error) {
	br := bufio.NewReaderSize(r, 64<<10)
	head, err := br.Peek(64)
	if err != nil && err != io.EOF && err != bufio.ErrBufferFull {
		return nil, err
	}
	if len(head) == 0 {
		return empty{}, nil
	}
	// A protobuf request: its length, then field 1 (resource_logs, length
	// delimited), so its fifth byte is 0x0a. No text format starts so.
	if len(head) >= 5 && head[4] == 0x0a && binary.BigEndian.Uint32(head) > 0 {
		return &protoReader{r: br}, nil
	}
	trimmed := bytes.TrimLeft(head, " \t\r\n")
	switch {
	case bytes.HasPrefix(trimmed, []byte(`{"resourceLogs"`)):
		return &otlpJSONReader{r: br}, nil
	case bytes.HasPrefix(trimmed, []byte(`{"id"`)):
		return &jsonlReader{r: br}, nil
	case bytes.HasPrefix(trimmed, []byte("{")):
		return nil, errors.New(`line 1: a JSON object that is neither an event-log line (its first member "id") nor an OTLP logs request (its first member "resourceLogs")`)
	case bytes.HasPrefix(head, []byte("id,time,")):
		return newCSVReader(br)
	case textLine.Match(head):
		return nil, ErrText
	}
	return nil, errors.New("not a capture: the input is none of jsonl, csv, otlp-json or otlp-proto")
}

type empty struct{}

func (empty) Next() (*flow.Operation, error) { return nil, io.EOF }
func (empty) Format() exporter.Format        { return exporter.JSONL }

// jsonlReader reads the JSON Lines event log.
type jsonlReader struct {
	r    *bufio.Reader
	line int
}

func (j *jsonlReader) Format() exporter.Format { return exporter.JSONL }

func (j *jsonlReader) Next() (*flow.Operation, error) {
	for {
		b, err := j.r.ReadBytes('\n')
		if len(b) == 0 && err != nil {
			return nil, err
		}
		if err != nil && err != io.EOF {
			return nil, err
		}
		j.line++
		if len(bytes.TrimSpace(b)) == 0 {
			continue // blank lines are not operations
		}
		op, perr := decodeJSONLine(b)
		if perr != nil {
			return nil, fmt.Errorf("line %d: %v", j.line, perr)
		}
		return op, nil
	}
}

func decodeJSONLine(b []byte) (*flow.Operation, error) {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("not a JSON object: %v", err)
	}
	bd := newBuilder()
	// In a fixed order, so that the first error is the same every time.
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		v, err := jsonValue(m[k])
		if err == nil {
			err = bd.set(k, v)
		} else {
			err = fmt.Errorf("field %q: %v", k, err)
		}
		if err != nil {
			return nil, err
		}
	}
	return bd.done()
}

// jsonValue is a JSON value as text: a string's contents, a number or
// boolean as written, a list's elements.
func jsonValue(raw json.RawMessage) (value, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 {
		return value{}, errors.New("no value")
	}
	switch raw[0] {
	case '"':
		var s string
		err := json.Unmarshal(raw, &s)
		return value{s: s}, err
	case '[':
		var elems []json.RawMessage
		if err := json.Unmarshal(raw, &elems); err != nil {
			return value{}, err
		}
		v := value{isList: true, list: make([]string, 0, len(elems))}
		for _, e := range elems {
			ev, err := jsonValue(e)
			if err != nil {
				return value{}, err
			}
			if ev.isList {
				return value{}, errors.New("a list inside a list")
			}
			v.list = append(v.list, ev.s)
		}
		return v, nil
	case '{':
		return value{}, errors.New("an object, want a single value or a list")
	}
	return value{s: string(raw)}, nil
}

// csvReader reads the CSV format: the header names the columns.
type csvReader struct {
	r      *csv.Reader
	header []string
}

func newCSVReader(r io.Reader) (*csvReader, error) {
	c := &csvReader{r: csv.NewReader(r)}
	c.r.ReuseRecord = true
	h, err := c.r.Read()
	if err != nil {
		return nil, fmt.Errorf("line 1: %v", err)
	}
	c.header = slices.Clone(h)
	for i, name := range c.header {
		if slices.Contains(c.header[:i], name) {
			return nil, fmt.Errorf("line 1: column %q appears twice", name)
		}
	}
	return c, nil
}

func (c *csvReader) Format() exporter.Format { return exporter.CSV }

func (c *csvReader) Next() (*flow.Operation, error) {
	rec, err := c.r.Read()
	if err == io.EOF {
		return nil, io.EOF
	}
	if err != nil {
		return nil, err // csv.ParseError names the line
	}
	line, _ := c.r.FieldPos(0)
	bd := newBuilder()
	for i, cell := range rec {
		if cell == "" {
			continue // a field that does not apply
		}
		name := c.header[i]
		v := value{s: cell}
		if listFields[name] {
			v = value{isList: true, list: strings.Split(cell, " ")}
		}
		if err := bd.set(name, v); err != nil {
			return nil, fmt.Errorf("line %d: %v", line, err)
		}
	}
	op, err := bd.done()
	if err != nil {
		return nil, fmt.Errorf("line %d: %v", line, err)
	}
	return op, nil
}

// Hosted is a Reader whose format says where the operations were
// captured: the OTLP formats, whose resources carry host.name.
type Hosted interface {
	// Host is the host.name of the last operation Next returned; empty
	// when its resource has none.
	Host() string
}

// records queues the operations of one OTLP request.
type records struct {
	ops   []*flow.Operation
	hosts []string // the ops' host.name, in the same order
	host  string   // of the last one popped
	n     int      // requests read
}

func (q *records) add(ld plog.Logs) error {
	q.ops, q.hosts = q.ops[:0], q.hosts[:0]
	rls := ld.ResourceLogs()
	for i := 0; i < rls.Len(); i++ {
		host := ""
		if v, ok := rls.At(i).Resource().Attributes().Get(semconv.AttrHostName); ok {
			host = v.AsString()
		}
		sls := rls.At(i).ScopeLogs()
		for j := 0; j < sls.Len(); j++ {
			lrs := sls.At(j).LogRecords()
			for k := 0; k < lrs.Len(); k++ {
				op, err := fromRecord(lrs.At(k))
				if err != nil {
					return fmt.Errorf("record %d: %v", len(q.ops)+1, err)
				}
				q.ops = append(q.ops, op)
				q.hosts = append(q.hosts, host)
			}
		}
	}
	slices.Reverse(q.ops) // popped from the end
	slices.Reverse(q.hosts)
	return nil
}

func (q *records) pop() *flow.Operation {
	op := q.ops[len(q.ops)-1]
	q.ops = q.ops[:len(q.ops)-1]
	q.host = q.hosts[len(q.hosts)-1]
	q.hosts = q.hosts[:len(q.hosts)-1]
	return op
}

func fromRecord(r plog.LogRecord) (*flow.Operation, error) {
	bd := newBuilder()
	var err error
	r.Attributes().Range(func(k string, a pcommon.Value) bool {
		var v value
		if a.Type() == pcommon.ValueTypeSlice {
			s := a.Slice()
			v = value{isList: true, list: make([]string, s.Len())}
			for i := range s.Len() {
				v.list[i] = s.At(i).AsString()
			}
		} else {
			v = value{s: a.AsString()}
		}
		err = bd.set(k, v)
		return err == nil
	})
	if err != nil {
		return nil, err
	}
	bd.op.Time = r.Timestamp().AsTime().UTC()
	bd.seen["time"] = true
	return bd.done()
}

// otlpJSONReader reads a JSON ExportLogsServiceRequest per line, as the
// Collector's fileexporter writes them.
type otlpJSONReader struct {
	r    *bufio.Reader
	q    records
	line int
}

func (o *otlpJSONReader) Format() exporter.Format { return exporter.OTLPJSON }

func (o *otlpJSONReader) Host() string { return o.q.host }

func (o *otlpJSONReader) Next() (*flow.Operation, error) {
	for len(o.q.ops) == 0 {
		b, err := o.r.ReadBytes('\n')
		if len(b) == 0 && err != nil {
			return nil, err
		}
		if err != nil && err != io.EOF {
			return nil, err
		}
		o.line++
		if len(bytes.TrimSpace(b)) == 0 {
			continue
		}
		ld, err := (&plog.JSONUnmarshaler{}).UnmarshalLogs(b)
		if err != nil {
			return nil, fmt.Errorf("line %d: not an OTLP logs request: %v", o.line, err)
		}
		if err := o.q.add(ld); err != nil {
			return nil, fmt.Errorf("line %d: %v", o.line, err)
		}
	}
	return o.q.pop(), nil
}

// protoReader reads protobuf ExportLogsServiceRequests, each after its
// length as 4 big-endian bytes, as the Collector's fileexporter writes
// them.
type protoReader struct {
	r   *bufio.Reader
	q   records
	off int64
	buf []byte
}

func (p *protoReader) Format() exporter.Format { return exporter.OTLPProto }

func (p *protoReader) Host() string { return p.q.host }

func (p *protoReader) Next() (*flow.Operation, error) {
	for len(p.q.ops) == 0 {
		var n [4]byte
		if _, err := io.ReadFull(p.r, n[:]); err != nil {
			if err == io.ErrUnexpectedEOF {
				return nil, fmt.Errorf("request %d (byte %d): cut short in its length", p.q.n+1, p.off)
			}
			return nil, err
		}
		size := binary.BigEndian.Uint32(n[:])
		if size > maxRequest {
			return nil, fmt.Errorf("request %d (byte %d): a length of %d bytes, more than a request can be (%d)", p.q.n+1, p.off, size, maxRequest)
		}
		if cap(p.buf) < int(size) {
			p.buf = make([]byte, size)
		}
		p.buf = p.buf[:size]
		if _, err := io.ReadFull(p.r, p.buf); err != nil {
			return nil, fmt.Errorf("request %d (byte %d): cut short: %d bytes announced", p.q.n+1, p.off, size)
		}
		p.q.n++
		ld, err := (&plog.ProtoUnmarshaler{}).UnmarshalLogs(p.buf)
		if err != nil {
			return nil, fmt.Errorf("request %d (byte %d): not an OTLP logs request: %v", p.q.n, p.off, err)
		}
		if err := p.q.add(ld); err != nil {
			return nil, fmt.Errorf("request %d (byte %d): %v", p.q.n, p.off, err)
		}
		p.off += 4 + int64(size)
	}
	return p.q.pop(), nil
}
