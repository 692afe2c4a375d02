package store

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
)

// The segment format, version 1. All integers are little-endian. A
// segment file is a header followed by blocks; each block ends with the
// SHA-256 of its own bytes, and each block names the hash of the one
// before it (the header's, for the first), so the chain can be checked
// without any key.

const (
	formatVersion = 1

	headerSize = 176
	// hashSize is a SHA-256.
	hashSize = sha256.Size
	// blockFixed is a block's fixed part before its index.
	blockFixed = 80
	// blockOverhead is the fixed part and the trailing hash.
	blockOverhead = blockFixed + hashSize
	// maxBlockSize bounds a block a reader will accept: a single record
	// may exceed the writer's 64 KiB target, never this.
	maxBlockSize = 16 << 20
	// maxIndexSize bounds a block's index.
	maxIndexSize = 64 << 10
	// keyIDSize is the key id a header names.
	keyIDSize = 8
	// noncePrefixSize is the random per-segment part of each nonce.
	noncePrefixSize = 4
	// tagSize is AES-GCM's tag.
	tagSize = 16
)

var (
	headerMagic = [8]byte{'I', 'C', 'P', 'T', 'S', 'E', 'G', '1'}
	blockMagic  = [4]byte{'I', 'C', 'B', 'K'}
)

// Header flags.
const (
	// headerEncrypted: the segment's data blocks are encrypted.
	headerEncrypted = 1 << 0
	// headerRecovered: the previous segment was not closed (a crash);
	// its torn tail, if any, was cut off and counted in PrevTorn.
	headerRecovered = 1 << 1
	// headerSealed: the writer sealed this segment.
	headerSealed = 1 << 2
	// headerStarted: the first segment a starting icptrack opened.
	headerStarted = 1 << 3
)

// Header is a segment's header.
type Header struct {
	Flags     uint16
	LogID     [16]byte
	Segment   uint64
	Created   int64 // unix nanoseconds
	FirstSeq  uint64
	FirstKept uint64
	PrevSeg   uint64
	PrevLen   uint64
	PrevHash  [hashSize]byte
	PrevTorn  uint64
	KeyID     [keyIDSize]byte
	Nonce     [noncePrefixSize]byte
	SealEvery uint32 // epoch length in seconds; 0: not sealed
	SealStart int64  // epoch origin, unix seconds
	// Hash is SHA-256 of the header's bytes before it.
	Hash [hashSize]byte
}

// Encrypted reports whether the segment's data blocks are encrypted.
func (h *Header) Encrypted() bool { return h.Flags&headerEncrypted != 0 }

func (h *Header) marshal() []byte {
	b := make([]byte, headerSize)
	copy(b[0:], headerMagic[:])
	le.PutUint16(b[8:], formatVersion)
	le.PutUint16(b[10:], h.Flags)
	le.PutUint32(b[12:], headerSize)
	copy(b[16:], h.LogID[:])
	le.PutUint64(b[32:], h.Segment)
	le.PutUint64(b[40:], uint64(h.Created))
	le.PutUint64(b[48:], h.FirstSeq)
	le.PutUint64(b[56:], h.FirstKept)
	le.PutUint64(b[64:], h.PrevSeg)
	le.PutUint64(b[72:], h.PrevLen)
	copy(b[80:], h.PrevHash[:])
	le.PutUint64(b[112:], h.PrevTorn)
	copy(b[120:], h.KeyID[:])
	copy(b[128:], h.Nonce[:])
	le.PutUint32(b[132:], h.SealEvery)
	le.PutUint64(b[136:], uint64(h.SealStart))
	h.Hash = sha256.Sum256(b[:144])
	copy(b[144:], h.Hash[:])
	return b
}

// errNotSegment is a file that does not start as a segment does.
var errNotSegment = errors.New("not an icptrack segment (bad magic)")

func parseHeader(b []byte) (*Header, error) {
	if len(b) < headerSize {
		return nil, fmt.Errorf("header: %d bytes, want %d", len(b), headerSize)
	}
	if !bytes.Equal(b[:8], headerMagic[:]) {
		return nil, errNotSegment
	}
	if v := le.Uint16(b[8:]); v != formatVersion {
		return nil, fmt.Errorf("header: format version %d, this icptrack reads %d", v, formatVersion)
	}
	if n := le.Uint32(b[12:]); n != headerSize {
		return nil, fmt.Errorf("header: length %d, want %d", n, headerSize)
	}
	h := &Header{
		Flags:     le.Uint16(b[10:]),
		Segment:   le.Uint64(b[32:]),
		Created:   int64(le.Uint64(b[40:])),
		FirstSeq:  le.Uint64(b[48:]),
		FirstKept: le.Uint64(b[56:]),
		PrevSeg:   le.Uint64(b[64:]),
		PrevLen:   le.Uint64(b[72:]),
		PrevTorn:  le.Uint64(b[112:]),
		SealEvery: le.Uint32(b[132:]),
		SealStart: int64(le.Uint64(b[136:])),
	}
	copy(h.LogID[:], b[16:])
	copy(h.PrevHash[:], b[80:])
	copy(h.KeyID[:], b[120:])
	copy(h.Nonce[:], b[128:])
	copy(h.Hash[:], b[144:])
	if sha256.Sum256(b[:144]) != h.Hash {
		return h, errHashMismatch
	}
	return h, nil
}

// Block kinds.
const (
	kindData  = 1
	kindSeal  = 2
	kindClose = 3
)

// Block flags.
const (
	blockEncrypted = 1 << 0
	blockSealed    = 1 << 1 // a closing block that carries a seal
)

// blockHead is a block's fixed part.
type blockHead struct {
	Length    uint32
	Kind      uint8
	Flags     uint8
	IndexLen  uint32
	Number    uint64
	FirstSeq  uint64
	Records   uint32
	WriteTime int64
	Prev      [hashSize]byte
}

func (h *blockHead) put(b []byte) {
	copy(b[0:], blockMagic[:])
	le.PutUint32(b[4:], h.Length)
	b[8] = h.Kind
	b[9] = h.Flags
	le.PutUint16(b[10:], 0)
	le.PutUint32(b[12:], h.IndexLen)
	le.PutUint64(b[16:], h.Number)
	le.PutUint64(b[24:], h.FirstSeq)
	le.PutUint32(b[32:], h.Records)
	le.PutUint32(b[36:], 0)
	le.PutUint64(b[40:], uint64(h.WriteTime))
	copy(b[48:], h.Prev[:])
}

// errHashMismatch is a block or header whose bytes do not hash to the
// hash it carries.
var errHashMismatch = errors.New("its bytes do not match its hash")

// parseBlockHead reads a block's fixed part and checks what can be
// checked without the rest. size is what is left of the file from the
// block's start.
func parseBlockHead(b []byte, size int64) (blockHead, error) {
	var h blockHead
	if len(b) < blockFixed {
		return h, errShort
	}
	if !bytes.Equal(b[:4], blockMagic[:]) {
		return h, errors.New("no block starts here (bad magic)")
	}
	h.Length = le.Uint32(b[4:])
	h.Kind = b[8]
	h.Flags = b[9]
	h.IndexLen = le.Uint32(b[12:])
	h.Number = le.Uint64(b[16:])
	h.FirstSeq = le.Uint64(b[24:])
	h.Records = le.Uint32(b[32:])
	h.WriteTime = int64(le.Uint64(b[40:]))
	copy(h.Prev[:], b[48:])
	switch {
	case h.Length < blockOverhead || h.Length > maxBlockSize:
		return h, fmt.Errorf("block length %d is out of range", h.Length)
	case h.IndexLen > maxIndexSize || blockOverhead+h.IndexLen > h.Length:
		return h, fmt.Errorf("index length %d does not fit the block", h.IndexLen)
	case h.Kind < kindData || h.Kind > kindClose:
		return h, fmt.Errorf("unknown block kind %d", h.Kind)
	case b[10] != 0 || b[11] != 0 || le.Uint32(b[36:]) != 0:
		return h, errors.New("reserved bytes are not zero")
	case int64(h.Length) > size:
		return h, errShort
	}
	return h, nil
}

// errShort is a block that the file ends inside of.
var errShort = errors.New("the file ends inside the block")

// block is one block as read: its bytes and the parts of them.
type block struct {
	blockHead
	Offset int64
	Raw    []byte // the whole block, trailing hash included
	Hash   [hashSize]byte
}

func (b *block) index() []byte { return b.Raw[blockFixed : blockFixed+b.IndexLen] }
func (b *block) body() []byte  { return b.Raw[blockFixed+b.IndexLen : b.Length-hashSize] }

// checkHash reports whether the block's bytes match its trailing hash.
func (b *block) checkHash() bool {
	return sha256.Sum256(b.Raw[:b.Length-hashSize]) == b.Hash
}

// sealBody is a seal block's body, and the tail of a sealed closing
// block: the epoch and the HMAC.
const sealBody = 8 + hashSize

// closeBody is a closing block's body before its seal.
const closeBody = 7 * 8

// closing is what a closing block states about its segment.
type closing struct {
	Blocks     uint64 // data and seal blocks before it
	Records    uint64
	FirstSeq   uint64
	MinTime    int64 // operations' times; 0 when there were none
	MaxTime    int64
	FirstWrite int64 // write times of its first and last blocks
	LastWrite  int64
}

func (c *closing) put(b []byte) {
	le.PutUint64(b[0:], c.Blocks)
	le.PutUint64(b[8:], c.Records)
	le.PutUint64(b[16:], c.FirstSeq)
	le.PutUint64(b[24:], uint64(c.MinTime))
	le.PutUint64(b[32:], uint64(c.MaxTime))
	le.PutUint64(b[40:], uint64(c.FirstWrite))
	le.PutUint64(b[48:], uint64(c.LastWrite))
}

func parseClosing(b []byte) closing {
	return closing{
		Blocks:     le.Uint64(b[0:]),
		Records:    le.Uint64(b[8:]),
		FirstSeq:   le.Uint64(b[16:]),
		MinTime:    int64(le.Uint64(b[24:])),
		MaxTime:    int64(le.Uint64(b[32:])),
		FirstWrite: int64(le.Uint64(b[40:])),
		LastWrite:  int64(le.Uint64(b[48:])),
	}
}

var le = binary.LittleEndian
