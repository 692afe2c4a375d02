package store

import (
	"bytes"
	"errors"
	"io"
	"time"

	"github.com/icptrack/icptrack/flow"
)

// segmentWalk verifies one segment: its header, its link to the segment
// before, then block by block until the end or the first problem.
type segmentWalk struct {
	v      *verifier
	res    *SegmentResult
	newest bool
	r      *segReader
	hdr    *Header
	open   blockOpener // decrypts the segment's blocks; nil without the key

	dec decoder
	op  flow.Operation
	idx indexBuilder
	buf []byte
	pt  []byte
}

func (w *segmentWalk) run(seg segmentFile) {
	v, res := w.v, w.res
	r, err := openSegReader(seg.Path)
	if err != nil {
		bad(res, StatusModified, -1, 0, "the header cannot be read: %v", err)
		v.lost()
		return
	}
	defer r.Close()
	v.report.Bytes += r.size
	w.r, w.hdr = r, r.hdr
	h := r.hdr
	if r.hdrErr != nil {
		bad(res, StatusModified, -1, 0, "the header's bytes do not match its hash")
		v.lost()
		return
	}
	if h.Segment != seg.Number {
		bad(res, StatusReordered, -1, 0, "the file holds segment %d", h.Segment)
	}
	v.header(h)
	if h.LogID != v.logID {
		bad(res, StatusModified, -1, 0, "it belongs to another store (log id %x, not %x)", h.LogID, v.logID)
	}
	v.link(h, res)
	if w.open, err = v.opener(h); err != nil {
		v.keyErr(err)
	}
	v.seal.segment(v, h, res)
	w.blocks()
}

// lost is a segment whose chain could not be followed: the next one's
// link to it cannot be checked.
func (v *verifier) lost() {
	v.prevHdr = nil
	v.seal.pending = false
}

// link checks that h continues the segment before it.
func (v *verifier) link(h *Header, res *SegmentResult) {
	if v.prev == nil {
		v.first, v.firstRes = h, len(v.report.Segments)-1
		v.nextSeq = h.FirstSeq
		return
	}
	prevNum := v.prev.Segment
	if v.prevHdr != nil {
		prevNum = v.prevHdr.Segment
	}
	switch {
	case h.PrevSeg > prevNum:
		if h.PrevSeg == prevNum+1 {
			bad(res, StatusMissing, -1, 0, "segment %d before it is gone", h.PrevSeg)
		} else {
			bad(res, StatusMissing, -1, 0, "segments %d to %d before it are gone", prevNum+1, h.PrevSeg)
		}
		return
	case h.PrevSeg < prevNum:
		bad(res, StatusReordered, -1, 0, "it follows segment %d, but comes after segment %d", h.PrevSeg, prevNum)
		return
	}
	if v.prevHdr == nil {
		return
	}
	prev := v.prev
	switch {
	case int64(h.PrevLen) > v.prevEnd:
		bad(prev, StatusTruncated, int64(prev.Blocks), v.prevEnd, "segment %d says this one ended at offset %d; its chain ends at %d", h.Segment, h.PrevLen, v.prevEnd)
	case int64(h.PrevLen) < v.prevEnd:
		bad(prev, StatusModified, int64(prev.Blocks), int64(h.PrevLen), "segment %d says this one ended at offset %d, but it has blocks after that", h.Segment, h.PrevLen)
	case h.PrevHash != v.prevHash:
		bad(prev, StatusModified, int64(prev.Blocks)-1, v.prevEnd, "its last block is not the one segment %d recorded", h.Segment)
	case !prev.Closed && h.Flags&headerRecovered == 0:
		bad(prev, StatusTruncated, int64(prev.Blocks), v.prevEnd, "it has no closing block, and segment %d records no crash", h.Segment)
	case !prev.Closed:
		n := "not closed: icptrack stopped without closing it (a crash)"
		if h.PrevTorn > 0 {
			n += "; at the restart, segment " + itoa(h.Segment) + " recorded it and cut " + itoa(h.PrevTorn) + " torn bytes at offset " + itoa(h.PrevLen)
		} else {
			n += "; segment " + itoa(h.Segment) + " recorded it at the restart"
		}
		prev.Notes = append(prev.Notes, n)
	}
	if h.FirstSeq != v.nextSeq {
		bad(res, StatusMissing, -1, 0, "it starts at record %d, but the segment before ends before record %d", h.FirstSeq, v.nextSeq)
	}
}

// blocks walks the segment's blocks.
func (w *segmentWalk) blocks() {
	v, res, h := w.v, w.res, w.hdr
	off := int64(headerSize)
	prevHash := h.Hash
	seq := h.FirstSeq
	res.FirstSeq = seq
	defer func() {
		v.prevHdr = h
		if res.Status != StatusPass {
			// What follows is judged on its own: its link to a segment
			// that failed part way cannot be.
			v.prevHdr = nil
			v.seal.pending = false
		}
		v.prevEnd = off
		v.prevHash = prevHash
		v.nextSeq = seq
		if res.Records > 0 {
			res.LastSeq = seq - 1
		}
	}()
	var minT, maxT int64
	for k := uint64(0); ; k++ {
		b, buf, err := w.r.readBlock(off, w.buf)
		w.buf = buf
		if errors.Is(err, io.EOF) {
			if w.newest && v.isLive() {
				res.Notes = append(res.Notes, "open: icptrack is writing it")
			} else if w.newest {
				res.Notes = append(res.Notes, "not closed: icptrack stopped without closing it (a crash?), or its end was cut at a block boundary, which only the checkpoints or the seals can tell")
			}
			return
		}
		if err != nil {
			if errors.Is(err, errShort) && w.newest && v.isLive() {
				res.Notes = append(res.Notes, "open: a block is being written at offset "+itoa(uint64(off)))
				return
			}
			if errors.Is(err, errShort) {
				bad(res, StatusTruncated, int64(k), off, "the file ends inside block %d (cut off, or torn by a crash that icptrack has not restarted after yet)", k)
				return
			}
			bad(res, StatusModified, int64(k), off, "%v", err)
			return
		}
		if !b.checkHash() {
			bad(res, StatusModified, int64(k), off, "its bytes do not match its hash")
			return
		}
		if b.Number != k {
			if b.Number > k && !w.appearsLater(off, k) {
				if b.Number == k+1 {
					bad(res, StatusMissing, int64(k), off, "block %d is gone", k)
				} else {
					bad(res, StatusMissing, int64(k), off, "blocks %d to %d are gone", k, b.Number-1)
				}
			} else {
				bad(res, StatusReordered, int64(k), off, "block %d is where block %d belongs", b.Number, k)
			}
			return
		}
		if b.Prev != prevHash {
			bad(res, StatusModified, int64(k), off, "it does not follow the block before it (the chain is broken)")
			return
		}
		if b.FirstSeq != seq {
			bad(res, StatusMissing, int64(k), off, "it starts at record %d where record %d belongs", b.FirstSeq, seq)
			return
		}
		switch b.Kind {
		case kindData:
			if !w.data(b, k) {
				return
			}
			if b.Records > 0 && b.IndexLen > 0 {
				if x, err := parseIndex(b.index()); err == nil && x.MinTime != 0 {
					if minT == 0 || x.MinTime < minT {
						minT = x.MinTime
					}
					maxT = max(maxT, x.MaxTime)
				}
			}
		case kindSeal:
			if b.IndexLen != 0 || b.Records != 0 || len(b.body()) != sealBody {
				bad(res, StatusModified, int64(k), off, "the seal block is malformed")
				return
			}
		case kindClose:
			if !w.closing(b, k, minT, maxT) {
				return
			}
		}
		if !v.seal.block(v, h, b, res) {
			return
		}
		if v.wanted[h.Segment][k] {
			v.hashes[[2]uint64{h.Segment, k}] = blockMark{Hash: b.Hash, NextSeq: seq + uint64(b.Records)}
		}
		prevHash = b.Hash
		seq += uint64(b.Records)
		res.Records += uint64(b.Records)
		res.Blocks++
		off += int64(b.Length)
		if minT != 0 {
			res.From, res.To = time.Unix(0, minT), time.Unix(0, maxT)
		}
		if b.Kind == kindClose {
			res.Closed = true
			if off != w.r.size {
				bad(res, StatusModified, int64(k)+1, off, "%d bytes follow the closing block", w.r.size-off)
			}
			return
		}
	}
}

// appearsLater reports whether block k comes later in the segment than
// off: then blocks were swapped, not removed.
func (w *segmentWalk) appearsLater(off int64, k uint64) bool {
	var buf []byte
	for {
		h, b, err := w.r.readHead(off, buf)
		buf = b
		if err != nil {
			return false
		}
		if h.Number == k {
			return true
		}
		off += int64(h.Length)
	}
}

// data checks a data block's records: decrypted when the key is at
// hand, decoded, counted, and its index rebuilt from them.
func (w *segmentWalk) data(b *block, k uint64) bool {
	res := w.res
	body := b.body()
	enc := b.Flags&blockEncrypted != 0
	if enc != w.hdr.Encrypted() {
		bad(res, StatusModified, int64(k), b.Offset, "its encryption flag disagrees with the header")
		return false
	}
	if enc {
		if w.open == nil {
			return true // without the key, the chain is all there is to check
		}
		var err error
		w.pt, err = w.open.open(w.pt[:0], b, w.hdr)
		if err != nil {
			bad(res, StatusModified, int64(k), b.Offset, "its GCM tag does not verify: the ciphertext or what it is bound to was changed")
			return false
		}
		body = w.pt
	}
	w.dec.reset(body)
	w.idx.reset()
	var n uint32
	for {
		typ, rec, ok := w.dec.next()
		if !ok {
			break
		}
		n++
		if typ == recOperation {
			w.op = flow.Operation{}
			if w.dec.operation(rec, &w.op) != nil {
				break
			}
			w.idx.add(&w.op)
		} else if _, err := w.dec.note(typ, rec); err != nil {
			break
		}
	}
	if w.dec.err != nil {
		bad(res, StatusModified, int64(k), b.Offset, "its records are malformed: %v", w.dec.err)
		return false
	}
	if n != b.Records {
		bad(res, StatusModified, int64(k), b.Offset, "it holds %d records, and says %d", n, b.Records)
		return false
	}
	if !bytes.Equal(w.idx.appendTo(nil), b.index()) {
		bad(res, StatusModified, int64(k), b.Offset, "its index does not match its records")
		return false
	}
	return true
}

// closing checks a closing block against the segment it closes.
func (w *segmentWalk) closing(b *block, k uint64, minT, maxT int64) bool {
	res := w.res
	if b.IndexLen != 0 || b.Records != 0 || len(b.body()) != closeBody+sealBody {
		bad(res, StatusModified, int64(k), b.Offset, "the closing block is malformed")
		return false
	}
	c := parseClosing(b.body())
	if c.Blocks != k || c.Records != res.Records || c.FirstSeq != w.hdr.FirstSeq || c.MinTime != minT || c.MaxTime != maxT {
		bad(res, StatusModified, int64(k), b.Offset, "the closing block states %d blocks and %d records from %d; the segment has %d and %d from %d",
			c.Blocks, c.Records, c.FirstSeq, k, res.Records, w.hdr.FirstSeq)
		return false
	}
	return true
}

func noteExpired(last uint64) string {
	if last == 1 {
		return "segment 1 before it expired"
	}
	return "the segments up to " + itoa(last) + " before it expired"
}

func itoa(n uint64) string {
	var b [20]byte
	i := len(b)
	for {
		i--
		b[i] = byte('0' + n%10)
		n /= 10
		if n == 0 {
			return string(b[i:])
		}
	}
}
