package store

import (
	"fmt"
	"os"
	"path/filepath"
	"time"
)

// What verify found wrong with a segment. A segment gets the first.
const (
	StatusPass      = "PASS"
	StatusModified  = "modified"
	StatusReordered = "reordered"
	StatusMissing   = "missing"
	StatusTruncated = "truncated"
	StatusUnsealed  = "unsealed tail"
)

// VerifyOptions choose verify's levels: the chain is always checked;
// with a verification key, the seals too; with a keyring, every
// encrypted block's tag.
type VerifyOptions struct {
	VerifyKey *VerifyKey
	Keyring   *Keyring
	// Checkpoints, taken off the host, must all be found in the store.
	Checkpoints []Checkpoint
	// Now is the time, for telling a live unsealed tail from an old one
	// (nil: time.Now).
	Now func() time.Time
}

// SegmentResult is verify's verdict on one segment file.
type SegmentResult struct {
	File    string `json:"file"`
	Segment uint64 `json:"segment"`
	// Status is PASS or the first thing wrong: modified, reordered,
	// missing, truncated, unsealed tail.
	Status string `json:"status"`
	// Block and Offset locate the first bad block (-1: the header or the
	// segment as a whole).
	Block  int64  `json:"block"`
	Offset int64  `json:"offset"`
	Detail string `json:"detail,omitempty"`
	// What the segment holds, as far as it was read.
	Blocks   uint64    `json:"blocks"`
	Records  uint64    `json:"records"`
	FirstSeq uint64    `json:"first_seq,omitempty"`
	LastSeq  uint64    `json:"last_seq,omitempty"`
	From     time.Time `json:"from,omitzero"`
	To       time.Time `json:"to,omitzero"`
	Seals    int       `json:"seals"`
	Closed   bool      `json:"closed"`
	// Notes say what is normal but worth knowing: a crash recorded by
	// the next segment, an open segment being written, expired ones.
	Notes []string `json:"notes,omitempty"`
}

// OK reports whether the segment passed.
func (r *SegmentResult) OK() bool { return r.Status == StatusPass }

// CheckpointResult is the verdict on one off-host checkpoint.
type CheckpointResult struct {
	Checkpoint Checkpoint `json:"checkpoint"`
	Status     string     `json:"status"` // PASS, expired, or a status above
	Detail     string     `json:"detail,omitempty"`
}

// Report is what verify found.
type Report struct {
	Dir         string             `json:"dir"`
	Segments    []SegmentResult    `json:"segments"`
	Checkpoints []CheckpointResult `json:"checkpoints,omitempty"`
	// Levels are the checks made: chain, seals, encryption.
	Levels []string `json:"levels"`
	// Unchecked says which levels were not checked, and why.
	Unchecked []string `json:"unchecked,omitempty"`
	Failed    int      `json:"failed"`
	Records   uint64   `json:"records"`
	Bytes     int64    `json:"bytes"`
	OK        bool     `json:"ok"`
}

// KeyError is a verification key or keyring that cannot be used on this
// store: a usage mistake, not tampering.
type KeyError struct{ Err error }

func (e *KeyError) Error() string { return e.Err.Error() }
func (e *KeyError) Unwrap() error { return e.Err }

// Verify checks the store in dir. It returns an error only when it
// cannot check at all (no such store, a key for another store: then a
// *KeyError); what it finds wrong is in the report.
func Verify(dir string, o VerifyOptions) (*Report, error) {
	if o.Now == nil {
		o.Now = time.Now
	}
	info, err := os.Stat(dir)
	if err != nil {
		return nil, fmt.Errorf("store %s: %w", dir, err)
	}
	if !info.IsDir() {
		return nil, fmt.Errorf("store %s is not a directory", dir)
	}
	segs, err := listSegments(dir)
	if err != nil {
		return nil, fmt.Errorf("store %s: %w", dir, err)
	}
	if len(segs) == 0 {
		return nil, fmt.Errorf("store %s has no segments: is it the directory given to --store?", dir)
	}
	v := &verifier{dir: dir, o: o, report: &Report{Dir: dir, Levels: []string{"chain"}}}
	v.report.Segments = make([]SegmentResult, 0, len(segs))
	if err := v.prepare(segs); err != nil {
		return nil, err
	}
	for i, seg := range segs {
		v.segment(seg, i == len(segs)-1)
	}
	v.finish()
	if v.keyProblem != nil {
		return v.report, v.keyProblem
	}
	return v.report, nil
}

// verifier carries what the chain needs from one segment to the next.
type verifier struct {
	dir string
	o   VerifyOptions
	// live is whether a writer holds the store: asked only when the
	// newest segment ends as a segment being written would.
	live      bool
	liveKnown bool
	report    *Report

	logID     [16]byte
	haveLog   bool
	firstKept uint64 // the highest a header states
	// first is the first segment, whose missing predecessor is judged
	// at the end, once every header's first-kept segment is known.
	first    *Header
	firstRes int

	prev     *SegmentResult // the last segment read, nil at first
	prevHdr  *Header
	prevEnd  int64 // where its chain ended
	prevHash [hashSize]byte
	nextSeq  uint64

	seal       sealCheck
	keyProblem *KeyError
	// checkpoints by segment, and the hashes of the blocks they name.
	wanted map[uint64]map[uint64]bool
	hashes map[[2]uint64]blockMark
}

// isLive reports whether a writer holds the store.
func (v *verifier) isLive() bool {
	if !v.liveKnown {
		v.live, v.liveKnown = locked(v.dir), true
	}
	return v.live
}

// blockMark is what a checkpoint is compared with.
type blockMark struct {
	Hash    [hashSize]byte
	NextSeq uint64
}

// prepare sets up the levels and the checkpoints wanted.
func (v *verifier) prepare(segs []segmentFile) error {
	if v.o.VerifyKey != nil {
		v.report.Levels = append(v.report.Levels, "seals")
		v.seal.key = v.o.VerifyKey
	} else {
		v.report.Unchecked = append(v.report.Unchecked, "seals (give --verify-key)")
	}
	if v.o.Keyring != nil {
		v.report.Levels = append(v.report.Levels, "encryption")
	} else {
		v.report.Unchecked = append(v.report.Unchecked, "encryption tags (give the keyring)")
	}
	v.wanted = map[uint64]map[uint64]bool{}
	v.hashes = map[[2]uint64]blockMark{}
	for _, c := range v.o.Checkpoints {
		if v.wanted[c.Segment] == nil {
			v.wanted[c.Segment] = map[uint64]bool{}
		}
		v.wanted[c.Segment][c.Block] = true
	}
	return nil
}

// header notes what a readable header says of the whole store: its log
// id (the first one's), and the highest first-kept segment any states,
// which tells expired segments from deleted ones.
func (v *verifier) header(h *Header) {
	if !v.haveLog {
		v.logID, v.haveLog = h.LogID, true
		if k := v.o.VerifyKey; k != nil && k.LogID != h.LogID {
			v.keyErr(fmt.Errorf("the verification key is for store %x, and %s is store %x: give the key `icptrack keys new` printed for this store", k.LogID, v.dir, h.LogID))
		}
	}
	v.firstKept = max(v.firstKept, h.FirstKept)
}

// segment verifies one segment file and adds its result. Results live
// in a slice made to hold them all, so pointers to them stay good.
func (v *verifier) segment(seg segmentFile, newest bool) {
	v.report.Segments = append(v.report.Segments, SegmentResult{File: filepath.Base(seg.Path), Segment: seg.Number, Status: StatusPass, Block: -1})
	res := &v.report.Segments[len(v.report.Segments)-1]
	w := segmentWalk{v: v, res: res, newest: newest}
	w.run(seg)
	v.report.Records += res.Records
	v.prev = res
}

// bad sets res's status to the first problem found.
func bad(res *SegmentResult, status string, block, offset int64, format string, args ...any) {
	if res.Status != StatusPass {
		return
	}
	res.Status, res.Block, res.Offset = status, block, offset
	res.Detail = fmt.Sprintf(format, args...)
}

func (v *verifier) finish() {
	if h := v.first; h != nil && h.PrevSeg != 0 {
		res := &v.report.Segments[v.firstRes]
		if h.PrevSeg >= v.firstKept {
			bad(res, StatusMissing, -1, 0, "segment %d before it is gone, and no segment says it expired", h.PrevSeg)
		} else {
			res.Notes = append(res.Notes, noteExpired(h.PrevSeg))
		}
	}
	v.seal.finish(v)
	v.checkCheckpoints()
	r := v.report
	for i := range r.Segments {
		if !r.Segments[i].OK() {
			r.Failed++
		}
	}
	for _, c := range r.Checkpoints {
		if c.Status != StatusPass && c.Status != "expired" {
			r.Failed++
		}
	}
	r.OK = r.Failed == 0
}

// keyErr keeps the first key problem: Verify returns it, as a usage
// error, once the chain has been checked.
func (v *verifier) keyErr(err error) {
	if v.keyProblem == nil {
		v.keyProblem = &KeyError{err}
	}
}

// opener is what decrypts a segment's blocks: nil when it is not
// encrypted or no keyring was given.
func (v *verifier) opener(h *Header) (blockOpener, error) {
	kr := v.o.Keyring
	if !h.Encrypted() || kr == nil {
		return nil, nil
	}
	k := kr.lookup(h.KeyID)
	if k == nil || !k.Readable() {
		return nil, kr.keyMissing(h.KeyID, h.Segment)
	}
	return newSegmentCipher(k.secret, h)
}
