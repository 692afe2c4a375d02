package store

import (
	"context"
	"errors"
	"fmt"
	"io"
	"iter"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/icptrack/icptrack/filter"
	"github.com/icptrack/icptrack/flow"
)

// Reader reads a store for queries: the CLI's icptrack query, and the
// API's. It may be used while a writer appends; it reads what was
// written out when each segment is reached. Open one per query.
type Reader struct {
	dir string
	kr  *Keyring
}

// OpenReader opens the store in dir; kr decrypts it (nil for a store
// written in the clear).
func OpenReader(dir string, kr *Keyring) (*Reader, error) {
	info, err := os.Stat(dir)
	if err != nil {
		return nil, fmt.Errorf("store %s: %w", dir, err)
	}
	if !info.IsDir() {
		return nil, fmt.Errorf("store %s is not a directory", dir)
	}
	return &Reader{dir: dir, kr: kr}, nil
}

// Position is where a record is in a store: a cursor that stays good
// while segments are appended (and until its segment expires).
type Position struct {
	Segment uint64 `json:"segment"`
	Block   uint64 `json:"block"`
	Record  uint32 `json:"record"`
}

// String is segment.block.record: a cursor for an API.
func (p Position) String() string {
	return fmt.Sprintf("%d.%d.%d", p.Segment, p.Block, p.Record)
}

// ParsePosition reads what String wrote.
func ParsePosition(s string) (Position, error) {
	var p Position
	parts := strings.Split(s, ".")
	if len(parts) != 3 {
		return p, fmt.Errorf("%q is not a store position (segment.block.record)", s)
	}
	var err [3]error
	p.Segment, err[0] = strconv.ParseUint(parts[0], 10, 64)
	p.Block, err[1] = strconv.ParseUint(parts[1], 10, 64)
	var r uint64
	r, err[2] = strconv.ParseUint(parts[2], 10, 32)
	p.Record = uint32(r)
	if e := errors.Join(err[:]...); e != nil {
		return p, fmt.Errorf("%q is not a store position (segment.block.record)", s)
	}
	return p, nil
}

// after reports whether p comes after q.
func (p Position) after(q Position) bool {
	if p.Segment != q.Segment {
		return p.Segment > q.Segment
	}
	if p.Block != q.Block {
		return p.Block > q.Block
	}
	return p.Record > q.Record
}

// Query selects records.
type Query struct {
	// From and To bound the operations' times: From <= time < To. Zero
	// leaves that side open.
	From, To time.Time
	// Filter keeps the operations it matches; nil keeps all.
	Filter *filter.Filter
	// After, if set, resumes after that record.
	After *Position
	// Notes asks for the records that are not operations too (drops,
	// starts, crashes, expiry), in their place, bounded by From and To.
	Notes bool
}

// Record is one record a query found.
type Record struct {
	Pos Position
	Seq uint64
	// Op is the operation, or Note the note.
	Op   *flow.Operation
	Note *Note
}

// QueryStats say how much a query read, and how much its index let it
// skip without reading (or decrypting).
type QueryStats struct {
	Segments        int    `json:"segments"`
	SegmentsSkipped int    `json:"segments_skipped"`
	Blocks          int    `json:"blocks"`
	BlocksSkipped   int    `json:"blocks_skipped"`
	Records         uint64 `json:"records"`
	Matched         uint64 `json:"matched"`
}

// ErrStop, returned by a query's callback, ends the query without error.
var ErrStop = errors.New("stop")

// Query calls fn with each record q selects, in the order they were
// written. The record is fn's to keep. An error from fn ends the query
// and is returned (but ErrStop, which ends it quietly).
func (r *Reader) Query(ctx context.Context, q Query, fn func(*Record) error) (QueryStats, error) {
	var st QueryStats
	segs, err := listSegments(r.dir)
	if err != nil {
		return st, fmt.Errorf("store %s: %w", r.dir, err)
	}
	qr := newQueryRun(r, q, &st)
	for _, seg := range segs {
		if q.After != nil && seg.Number < q.After.Segment {
			continue
		}
		if err := ctx.Err(); err != nil {
			return st, err
		}
		if err := qr.segment(ctx, seg, fn); err != nil {
			if errors.Is(err, ErrStop) {
				return st, nil
			}
			return st, err
		}
	}
	return st, nil
}

// Records is Query as an iterator.
func (r *Reader) Records(ctx context.Context, q Query, stats *QueryStats) iter.Seq2[*Record, error] {
	return func(yield func(*Record, error) bool) {
		st, err := r.Query(ctx, q, func(rec *Record) error {
			if !yield(rec, nil) {
				return ErrStop
			}
			return nil
		})
		if stats != nil {
			*stats = st
		}
		if err != nil {
			yield(nil, err)
		}
	}
}

// queryRun is one query's state.
type queryRun struct {
	r        *Reader
	q        Query
	st       *QueryStats
	from, to int64
	push     filter.Pushdown
	pids     []uint64
	chans    []uint64
	dec      decoder
	buf      []byte
	head     []byte
	pt       []byte
	op       flow.Operation
}

func newQueryRun(r *Reader, q Query, st *QueryStats) *queryRun {
	qr := &queryRun{r: r, q: q, st: st, from: -1 << 63, to: 1<<63 - 1}
	if !q.From.IsZero() {
		qr.from = q.From.UnixNano()
	}
	if !q.To.IsZero() {
		qr.to = q.To.UnixNano()
	}
	if q.Filter != nil {
		qr.push = q.Filter.Pushdown()
		for _, p := range qr.push.PIDs {
			qr.pids = append(qr.pids, uint64(p))
		}
		for _, c := range qr.push.Channels {
			qr.chans = append(qr.chans, channelKey(c))
		}
	}
	return qr
}

// skipSegment reports whether a closed segment's operations all fall
// outside the time range, from its closing block.
func (qr *queryRun) skipSegment(sr *segReader) bool {
	if qr.q.Notes || (qr.q.From.IsZero() && qr.q.To.IsZero()) || sr.size < headerSize+closeBlockSize {
		return false
	}
	b, _, err := sr.readBlock(sr.size-closeBlockSize, nil)
	if err != nil || b.Kind != kindClose || len(b.body()) != closeBody+sealBody {
		return false
	}
	c := parseClosing(b.body())
	if c.MinTime == 0 && c.MaxTime == 0 {
		return true // no operations
	}
	return c.MaxTime < qr.from || c.MinTime >= qr.to
}

// skipBlock reports whether a block's index rules out every operation
// in it.
func (qr *queryRun) skipBlock(index []byte) bool {
	if qr.q.Notes {
		return false
	}
	x, err := parseIndex(index)
	if err != nil {
		return false // read it, and find what is wrong there
	}
	if x.PIDs.kind == setEmpty {
		return true // no operations
	}
	if x.MaxTime < qr.from || x.MinTime >= qr.to {
		return true
	}
	if m := qr.push.Mechanisms; m != 0 && x.Mechs&uint32(m) == 0 {
		return true
	}
	if len(qr.pids) > 0 && !anyIn(&x.PIDs, qr.pids) {
		return true
	}
	if len(qr.chans) > 0 && !anyIn(&x.Channels, qr.chans) {
		return true
	}
	return false
}

func anyIn(s *keySet, keys []uint64) bool {
	for _, k := range keys {
		if s.mayHave(k) {
			return true
		}
	}
	return false
}

func (qr *queryRun) segment(ctx context.Context, seg segmentFile, fn func(*Record) error) error {
	sr, err := openSegReader(seg.Path)
	if err != nil {
		return fmt.Errorf("store %s: %s: %w", qr.r.dir, seg.Path, err)
	}
	defer sr.Close()
	if sr.hdrErr != nil {
		return fmt.Errorf("store %s: %s: the header was changed: icptrack verify says more", qr.r.dir, seg.Path)
	}
	h := sr.hdr
	qr.st.Segments++
	if qr.skipSegment(sr) {
		qr.st.SegmentsSkipped++
		return nil
	}
	var open *segmentCipher
	if h.Encrypted() {
		if qr.r.kr == nil {
			return &KeyError{fmt.Errorf("store %s is encrypted: give the keyring it was written with", qr.r.dir)}
		}
		k := qr.r.kr.lookup(h.KeyID)
		if k == nil || !k.Readable() {
			return &KeyError{qr.r.kr.keyMissing(h.KeyID, h.Segment)}
		}
		if open, err = newSegmentCipher(k.secret, h); err != nil {
			return err
		}
	}
	for off := int64(headerSize); ; {
		if err := ctx.Err(); err != nil {
			return err
		}
		bh, head, err := sr.readHead(off, qr.head)
		qr.head = head
		if errors.Is(err, io.EOF) {
			return nil
		}
		if errors.Is(err, errShort) {
			return nil // the block being written, or a torn tail
		}
		if err != nil {
			return fmt.Errorf("store %s: %s at offset %d: %v: icptrack verify says more", qr.r.dir, seg.Path, off, err)
		}
		after := qr.q.After != nil && qr.q.After.Segment == h.Segment
		if bh.Kind != kindData || (after && bh.Number < qr.q.After.Block) {
			off += int64(bh.Length)
			continue
		}
		qr.st.Blocks++
		if qr.skipBlock(head[blockFixed:]) {
			qr.st.BlocksSkipped++
			off += int64(bh.Length)
			continue
		}
		if err := qr.block(sr, h, off, open, fn); err != nil {
			return err
		}
		off += int64(bh.Length)
	}
}

func (qr *queryRun) block(sr *segReader, h *Header, off int64, open *segmentCipher, fn func(*Record) error) error {
	b, buf, err := sr.readBlock(off, qr.buf)
	qr.buf = buf
	if err != nil {
		return fmt.Errorf("store %s: segment %d at offset %d: %v", qr.r.dir, h.Segment, off, err)
	}
	body := b.body()
	if open != nil {
		if qr.pt, err = open.open(qr.pt[:0], b, h); err != nil {
			return fmt.Errorf("store %s: segment %d, block %d: %v: it was changed; icptrack verify says more", qr.r.dir, h.Segment, b.Number, err)
		}
		body = qr.pt
	} else if !b.checkHash() {
		return fmt.Errorf("store %s: segment %d, block %d does not match its hash: it was changed; icptrack verify says more", qr.r.dir, h.Segment, b.Number)
	}
	qr.dec.reset(body)
	pos := Position{Segment: h.Segment, Block: b.Number}
	for i := uint32(0); ; i++ {
		typ, rec, ok := qr.dec.next()
		if !ok {
			break
		}
		qr.st.Records++
		pos.Record = i
		r := Record{Pos: pos, Seq: b.FirstSeq + uint64(i)}
		if typ == recOperation {
			// Decoded in place, and copied only when it matches.
			op := &qr.op
			if err := qr.dec.operation(rec, op); err != nil {
				break
			}
			t := op.Time.UnixNano()
			if t < qr.from || t >= qr.to || (qr.q.Filter != nil && !qr.q.Filter.Match(op)) {
				continue
			}
			if qr.q.After != nil && !pos.after(*qr.q.After) {
				continue
			}
			r.Op = op.Clone()
		} else {
			n, err := qr.dec.note(typ, rec)
			if err != nil {
				break
			}
			if t := n.Time.UnixNano(); !qr.q.Notes || t < qr.from || t >= qr.to {
				continue
			}
			r.Note = n
		}
		if qr.q.After != nil && !pos.after(*qr.q.After) {
			continue
		}
		qr.st.Matched++
		if err := fn(&r); err != nil {
			return err
		}
	}
	if qr.dec.err != nil {
		return fmt.Errorf("store %s: segment %d, block %d: %v", qr.r.dir, h.Segment, b.Number, qr.dec.err)
	}
	return nil
}
