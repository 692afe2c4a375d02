package store

import (
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"os"
	"time"

	"golang.org/x/sys/unix"

	"github.com/icptrack/icptrack/flow"
)

// Options tune a Writer. The zero value is the defaults.
type Options struct {
	// SegmentSize: a segment is closed before it would grow past this
	// (default 64 MiB).
	SegmentSize int64
	// SegmentAge: a segment with data is closed once this old (default 1h).
	SegmentAge time.Duration
	// MaxSize: the oldest segments expire while all of them together
	// are larger (0: never).
	MaxSize int64
	// MaxAge: a closed segment whose last write is older expires (0: never).
	MaxAge time.Duration
	// BlockSize: a block is written once its records reach this (default
	// 64 KiB); BlockAge, once its first record is this old (default 1s).
	BlockSize int
	BlockAge  time.Duration
	// KeyFile is the keyring; "" to write in the clear. It is read again
	// at each new segment, so that a rotated key is taken up.
	KeyFile string
	// Warn hears what goes wrong without stopping the store (a keyring
	// that cannot be read again, a checkpoint that failed).
	Warn func(error)
	// Checkpoint, if set, hears of each seal and each closed segment, once
	// they are synced: send it off the host. It is called on the writer's
	// goroutine.
	Checkpoint func(Checkpoint)
	// CheckpointEvery is how often a store that is not sealed makes a
	// checkpoint (default 15m); a sealed one makes one at each seal.
	CheckpointEvery time.Duration
	// Version is icptrack's, for the record a start writes.
	Version string
	// Clock is the time; nil for time.Now. For tests.
	Clock func() time.Time
}

// Defaults.
const (
	DefaultSegmentSize = 64 << 20
	DefaultSegmentAge  = time.Hour
	DefaultBlockSize   = 64 << 10
	DefaultBlockAge    = time.Second
)

func (o *Options) defaults() {
	if o.SegmentSize <= 0 {
		o.SegmentSize = DefaultSegmentSize
	}
	if o.SegmentAge <= 0 {
		o.SegmentAge = DefaultSegmentAge
	}
	if o.BlockSize <= 0 {
		o.BlockSize = DefaultBlockSize
	}
	if o.BlockAge <= 0 {
		o.BlockAge = DefaultBlockAge
	}
	if o.Clock == nil {
		o.Clock = time.Now
	}
	if o.CheckpointEvery < time.Second {
		o.CheckpointEvery = DefaultSealEvery
	}
	if o.Warn == nil {
		o.Warn = func(error) {}
	}
}

// Writer appends records to a store directory. It is not safe for
// concurrent use: the Sink gives it a goroutine of its own.
type Writer struct {
	dir  string
	o    Options
	lock *os.File

	logID     [16]byte
	firstKept uint64
	nextSeq   uint64
	lastWrite int64

	// The open segment.
	f         *os.File
	hdr       *Header
	segSize   int64
	segOpened time.Time
	nextBlock uint64
	prevHash  [hashSize]byte
	stats     closing
	dataSince bool // a data block was written since the segment opened
	cipher    *segmentCipher
	keyring   *Keyring

	// Sealing and checkpoints: the blocks written since the last seal
	// (or checkpoint), and the epoch of the checkpoints of a store that
	// is not sealed.
	seal     *sealState
	unsealed int
	ckEpoch  uint64
	lastTag  [hashSize]byte
	index    []byte
	lastHead blockHead

	// ops counts the operations appended; blockOps those of them in the
	// block being filled.
	ops, blockOps uint64

	// The block being filled.
	body      []byte
	recs      uint32
	blockSeq  uint64
	blockOpen time.Time
	enc       encoder
	idx       indexBuilder
	out       []byte

	err error
}

// Open opens the store in dir for writing, creating it if needed. If
// the newest segment was not closed (a crash), its torn tail is cut off
// and recorded, and writing goes on in a new segment; so does it after
// a clean close. Only one writer may hold a store.
func Open(dir string, o Options) (*Writer, error) {
	o.defaults()
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("store %s: %w", dir, err)
	}
	lock, err := lockStore(dir)
	if err != nil {
		return nil, err
	}
	w := &Writer{dir: dir, o: o, lock: lock, nextSeq: 1}
	if o.KeyFile != "" {
		if w.keyring, err = LoadKeyring(o.KeyFile); err != nil {
			lock.Close()
			return nil, &KeyError{err}
		}
		if w.keyring.current() == nil {
			lock.Close()
			return nil, &KeyError{fmt.Errorf("keyring %s has no current key: icptrack keys rotate --keyring %s makes one", o.KeyFile, o.KeyFile)}
		}
	}
	if w.seal, err = openSeal(dir); err != nil {
		lock.Close()
		return nil, &KeyError{err}
	}
	if err := w.start(); err != nil {
		if w.seal != nil {
			w.seal.close()
		}
		lock.Close()
		return nil, err
	}
	return w, nil
}

// lockFile is held (flock) by the writer while it runs.
const lockFile = "lock"

func lockStore(dir string) (*os.File, error) {
	path := dir + "/" + lockFile
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("store %s: %w", dir, err)
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, unix.EWOULDBLOCK) {
			return nil, fmt.Errorf("store %s is in use by another icptrack: give each its own --store directory", dir)
		}
		return nil, fmt.Errorf("store %s: lock: %w", dir, err)
	}
	return f, nil
}

// locked reports whether a writer holds dir's store.
func locked(dir string) bool {
	f, err := os.Open(dir + "/" + lockFile)
	if err != nil {
		return false
	}
	defer f.Close()
	if err := unix.Flock(int(f.Fd()), unix.LOCK_SH|unix.LOCK_NB); err != nil {
		return errors.Is(err, unix.EWOULDBLOCK)
	}
	_ = unix.Flock(int(f.Fd()), unix.LOCK_UN)
	return false
}

// start picks up from the newest segment, if any, and opens the next.
func (w *Writer) start() error {
	w.removeTemporaries()
	segs, err := listSegments(w.dir)
	if err != nil {
		return fmt.Errorf("store %s: %w", w.dir, err)
	}
	var prev previous
	if len(segs) == 0 {
		if w.seal != nil {
			w.logID = w.seal.logID
		} else if _, err := rand.Read(w.logID[:]); err != nil {
			return err
		}
		w.firstKept = 1
	} else {
		last := segs[len(segs)-1]
		if prev, err = w.resume(last); err != nil {
			return err
		}
		if w.seal != nil && w.seal.logID != w.logID {
			return &KeyError{fmt.Errorf("store %s: its seal.key is another store's (%x, the store is %x): move it away and run icptrack keys new --store %s", w.dir, w.seal.logID, w.logID, w.dir)}
		}
	}
	w.expire(w.o.Clock())
	flags := uint16(headerStarted)
	if prev.Number != 0 && !prev.Closed {
		flags |= headerRecovered
	}
	if err := w.openSegment(prev, flags); err != nil {
		return err
	}
	now := w.o.Clock()
	// The torn segment's unsealed blocks are sealed with the key of their
	// epoch, which the seal state still holds: it moves on only after a
	// seal.
	w.unsealed = prev.Unsealed
	w.ckEpoch = w.epochOf(now.UnixNano())
	if err := w.endEpoch(max(now.UnixNano(), w.lastWrite)); err != nil {
		return err
	}
	if prev.Number != 0 && !prev.Closed {
		w.note(&Note{Kind: "recovered", Time: now, Segment: prev.Number, Offset: uint64(prev.Length), Bytes: prev.Torn})
	}
	w.note(&Note{Kind: "started", Time: now, Version: w.o.Version, PID: uint32(os.Getpid())})
	return w.err
}

// previous is what the next segment's header says of the one before.
type previous struct {
	Number uint64
	Length int64
	Hash   [hashSize]byte
	Torn   uint64
	Closed bool
	// Unsealed counts its blocks after its last seal.
	Unsealed int
}

// resume reads the newest segment: its log id, where its chain ends,
// the next sequence number, and whether it was closed. A torn tail is
// cut off.
func (w *Writer) resume(seg segmentFile) (previous, error) {
	p := previous{Number: seg.Number}
	r, err := openSegReader(seg.Path)
	if err == nil && r.hdrErr != nil {
		r.Close()
		err = r.hdrErr
	}
	if err != nil {
		return p, fmt.Errorf("store %s: the newest segment %s cannot be read (%v): icptrack verify %s says more; move the file out of the way to go on", w.dir, seg.Path, err, w.dir)
	}
	defer r.Close()
	h := r.hdr
	w.logID, w.firstKept = h.LogID, h.FirstKept
	w.nextSeq = h.FirstSeq
	w.lastWrite = h.Created
	p.Hash = h.Hash
	off := int64(headerSize)
	var buf []byte
	for want := uint64(0); ; want++ {
		var b *block
		b, buf, err = r.readBlock(off, buf)
		if err != nil || !b.checkHash() || b.Number != want || b.Prev != p.Hash {
			break
		}
		p.Hash = b.Hash
		off += int64(b.Length)
		w.lastWrite = max(w.lastWrite, b.WriteTime)
		switch {
		case b.Kind == kindSeal || b.Flags&blockSealed != 0:
			p.Unsealed = 0
		case h.Flags&headerSealed != 0:
			p.Unsealed++
		}
		if b.Kind == kindClose {
			p.Closed = true
			break
		}
		w.nextSeq = b.FirstSeq + uint64(b.Records)
	}
	p.Length = off
	if off < r.size {
		if p.Closed {
			return p, fmt.Errorf("store %s: segment %s has %d bytes after its closing block: icptrack verify %s says more; move the file out of the way to go on", w.dir, seg.Path, r.size-off, w.dir)
		}
		p.Torn = uint64(r.size - off)
		if err := os.Truncate(seg.Path, off); err != nil {
			return p, fmt.Errorf("store %s: cut the torn tail of %s: %w", w.dir, seg.Path, err)
		}
	}
	return p, nil
}

func (w *Writer) removeTemporaries() {
	entries, _ := os.ReadDir(w.dir)
	for _, e := range entries {
		if n := e.Name(); len(n) > 4 && n[len(n)-4:] == ".tmp" {
			os.Remove(w.dir + "/" + n)
		}
	}
}

// openSegment writes the next segment's header to a temporary file,
// syncs it and gives it its name, so that a segment never exists without
// a whole header.
func (w *Writer) openSegment(prev previous, flags uint16) error {
	now := w.o.Clock()
	h := &Header{
		Flags:     flags,
		LogID:     w.logID,
		Segment:   prev.Number + 1,
		Created:   max(now.UnixNano(), w.lastWrite),
		FirstSeq:  w.committedSeq(),
		FirstKept: w.firstKept,
		PrevSeg:   prev.Number,
		PrevLen:   uint64(prev.Length),
		PrevHash:  prev.Hash,
		PrevTorn:  prev.Torn,
	}
	if w.seal != nil {
		h.Flags |= headerSealed
		h.SealEvery, h.SealStart = w.seal.every, w.seal.start
	}
	key := w.currentKey()
	if key != nil {
		h.Flags |= headerEncrypted
		h.KeyID = keyID(key.secret)
		if _, err := rand.Read(h.Nonce[:]); err != nil {
			return w.fail(err)
		}
	}
	raw := h.marshal()
	path := segmentPath(w.dir, h.Segment)
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return w.fail(fmt.Errorf("store %s: %w", w.dir, err))
	}
	_, err = f.Write(raw)
	if err == nil {
		err = f.Sync()
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err == nil {
		err = syncDir(w.dir)
	}
	if err != nil {
		f.Close()
		os.Remove(tmp)
		return w.fail(fmt.Errorf("store %s: new segment: %w", w.dir, err))
	}
	w.f, w.hdr = f, h
	w.cipher = nil
	if key != nil {
		if w.cipher, err = newSegmentCipher(key.secret, h); err != nil {
			return w.fail(err)
		}
	}
	w.segSize = headerSize
	w.segOpened = now
	w.nextBlock = 0
	w.prevHash = h.Hash
	w.stats = closing{FirstSeq: w.committedSeq()}
	w.dataSince = false
	return nil
}

// currentKey is the key a new segment is encrypted with: the keyring is
// read again, so that keys rotate takes effect; if it cannot be, the
// key in use stays.
func (w *Writer) currentKey() *Key {
	if w.keyring == nil {
		return nil
	}
	if w.hdr != nil {
		if kr, err := LoadKeyring(w.o.KeyFile); err != nil {
			w.o.Warn(fmt.Errorf("store %s: keeping key %s: %w", w.dir, w.keyring.current().ID, err))
		} else if kr.current() == nil {
			w.o.Warn(fmt.Errorf("store %s: keeping key %s: keyring %s has no current key", w.dir, w.keyring.current().ID, w.o.KeyFile))
		} else {
			w.keyring = kr
		}
	}
	return w.keyring.current()
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

func (w *Writer) fail(err error) error {
	if w.err == nil {
		w.err = err
	}
	return w.err
}

// Err is the first write error; once there is one, nothing more is
// written.
func (w *Writer) Err() error { return w.err }

// Append adds one operation. It reaches the file when its block is
// written: when the block is full, at Tick once the block is a second
// old, or at Flush.
func (w *Writer) Append(op *flow.Operation) error {
	if w.err != nil {
		return w.err
	}
	if w.recs == 0 {
		w.startBlock()
	}
	n := len(w.body)
	w.body = w.enc.appendOp(w.body, op)
	if len(w.body) > w.o.BlockSize && w.recs > 0 {
		// Keep blocks within their size: the record starts the next
		// block, encoded afresh since it may refer to this block.
		w.body = w.body[:n]
		if err := w.writeData(); err != nil {
			return err
		}
		w.startBlock()
		w.body = w.enc.appendOp(w.body, op)
	}
	w.idx.add(op)
	w.recs++
	w.nextSeq++
	w.ops++
	w.blockOps++
	if len(w.body) >= w.o.BlockSize {
		return w.writeData()
	}
	return nil
}

// note adds a record about the store itself to the block.
func (w *Writer) note(n *Note) {
	if w.err != nil {
		return
	}
	if w.recs == 0 {
		w.startBlock()
	}
	w.body = appendNote(w.body, n)
	w.recs++
	w.nextSeq++
}

// AppendDrops records that n operations were lost (reason: the ring
// buffer, a full queue), so that overload is told apart from deletion.
func (w *Writer) AppendDrops(t time.Time, reason string, n uint64) error {
	if n == 0 {
		return w.err
	}
	w.note(&Note{Kind: "drops", Time: t, Reason: reason, Count: n})
	return w.err
}

func (w *Writer) startBlock() {
	w.body = w.body[:0]
	w.recs = 0
	w.blockSeq = w.nextSeq
	w.blockOpen = w.o.Clock()
	w.enc.reset()
	w.idx.reset()
}

// Tick writes the block once it is BlockAge old, and closes the
// segment once it is SegmentAge old.
func (w *Writer) Tick(now time.Time) error {
	if w.err != nil {
		return w.err
	}
	if w.recs > 0 && now.Sub(w.blockOpen) >= w.o.BlockAge {
		if err := w.writeData(); err != nil {
			return err
		}
	}
	if err := w.endEpoch(max(now.UnixNano(), w.lastWrite)); err != nil {
		return err
	}
	if w.dataSince && now.Sub(w.segOpened) >= w.o.SegmentAge {
		return w.rotate()
	}
	return nil
}

// Flush writes the block being filled and syncs the segment.
func (w *Writer) Flush() error {
	if w.err != nil {
		return w.err
	}
	if w.recs > 0 {
		if err := w.writeData(); err != nil {
			return err
		}
	}
	if err := w.f.Sync(); err != nil {
		return w.fail(fmt.Errorf("store %s: sync: %w", w.dir, err))
	}
	return nil
}

// Close writes what is left, closes the segment with its closing block
// and releases the store.
func (w *Writer) Close() error {
	if w.f == nil {
		return w.err
	}
	if w.err == nil && w.recs > 0 {
		_ = w.writeData()
	}
	if w.err == nil {
		_ = w.closeSegment()
	}
	if w.f != nil {
		w.f.Close()
		w.f = nil
	}
	if w.seal != nil {
		w.seal.close()
	}
	w.lock.Close()
	return w.err
}

// NextSeq is the sequence number the next record will get.
func (w *Writer) NextSeq() uint64 { return w.nextSeq }

// OpsWritten is how many operations were written out to segment files.
func (w *Writer) OpsWritten() uint64 { return w.ops - w.blockOps }

// Written is the sequence number of the last record written out to the
// segment file: what a crash of icptrack alone can no longer lose.
func (w *Writer) Written() uint64 { return w.committedSeq() - 1 }

// writeData writes the block being filled.
func (w *Writer) writeData() error {
	w.index = w.idx.appendTo(w.index[:0])
	if w.dataSince && w.segSize+int64(blockFixed+len(w.index)+len(w.body)+hashSize+tagSize)+closeBlockSize > w.o.SegmentSize {
		if err := w.rotate(); err != nil {
			return err
		}
	}
	wt := w.writeTime()
	if err := w.endEpoch(wt); err != nil {
		return err
	}
	w.out = append(w.out[:0], make([]byte, blockFixed)...)
	w.out = append(w.out, w.index...)
	h := blockHead{
		Kind:      kindData,
		IndexLen:  uint32(len(w.index)),
		FirstSeq:  w.blockSeq,
		Records:   w.recs,
		WriteTime: wt,
	}
	if w.idx.ops > 0 {
		if w.stats.MinTime == 0 || w.stats.MinTime > w.idx.minT {
			w.stats.MinTime = w.idx.minT
		}
		w.stats.MaxTime = max(w.stats.MaxTime, w.idx.maxT)
	}
	w.stats.Records += uint64(w.recs)
	w.recs = 0
	w.blockOps = 0
	w.dataSince = true
	return w.emit(&h, w.body, nil)
}

// committedSeq is the sequence number after the last record written
// out: the records of the block being filled are not in the segment yet.
func (w *Writer) committedSeq() uint64 { return w.nextSeq - uint64(w.recs) }

// closeBlockSize is a closing block's size: it is always the last
// closeBlockSize bytes of a closed segment.
const closeBlockSize = blockOverhead + closeBody + sealBody

// closeSegment writes the closing block, sealed when the store is, and
// syncs the segment.
func (w *Writer) closeSegment() error {
	wt := w.writeTime()
	if err := w.endEpoch(wt); err != nil {
		return err
	}
	w.stats.Blocks = w.nextBlock
	w.out = append(w.out[:0], make([]byte, blockFixed)...)
	body := make([]byte, closeBody+sealBody)
	w.stats.put(body)
	h := blockHead{Kind: kindClose, FirstSeq: w.committedSeq(), WriteTime: wt}
	var sign func([]byte)
	if w.seal != nil {
		h.Flags |= blockSealed
		le.PutUint64(body[closeBody:], w.seal.epoch)
		sign = w.sign
	}
	if err := w.emit(&h, body, sign); err != nil {
		return err
	}
	return w.checkpoint(&h)
}

// epochOf is t's epoch: the seal's, or for a store that is not sealed,
// the checkpoints'.
func (w *Writer) epochOf(t int64) uint64 {
	if w.seal != nil {
		return epochOf(t, w.seal.start, w.seal.every)
	}
	return epochOf(t, 0, uint32(w.o.CheckpointEvery/time.Second))
}

// endEpoch, once t is in a later epoch, seals the blocks written in the
// epoch that ended (or, not sealed, makes a checkpoint) and, sealed,
// moves the key on to t's epoch, erasing the old one.
func (w *Writer) endEpoch(t int64) error {
	e := w.epochOf(t)
	cur := w.ckEpoch
	if w.seal != nil {
		cur = w.seal.epoch
	}
	if e <= cur {
		return nil
	}
	if w.unsealed > 0 {
		if w.seal != nil {
			if err := w.writeSeal(); err != nil {
				return err
			}
		} else if err := w.checkpoint(&w.lastHead); err != nil {
			return err
		}
	}
	if w.seal != nil {
		if err := w.seal.advance(e); err != nil {
			return w.fail(fmt.Errorf("store %s: %w", w.dir, err))
		}
	}
	w.ckEpoch = e
	return nil
}

// writeSeal seals the chain with the current epoch's key.
func (w *Writer) writeSeal() error {
	w.out = append(w.out[:0], make([]byte, blockFixed)...)
	body := make([]byte, sealBody)
	le.PutUint64(body, w.seal.epoch)
	h := blockHead{Kind: kindSeal, FirstSeq: w.committedSeq(), WriteTime: w.writeTime()}
	if err := w.emit(&h, body, w.sign); err != nil {
		return err
	}
	return w.checkpoint(&h)
}

// sign puts the seal's HMAC in the last 32 bytes of out, over the bytes
// before them.
func (w *Writer) sign(out []byte) {
	n := len(out) - hashSize
	w.lastTag = sealTag(w.seal.key, w.hdr.Hash, out[:n])
	copy(out[n:], w.lastTag[:])
}

// checkpoint syncs the segment and hands on where the chain stands,
// after block h.
func (w *Writer) checkpoint(h *blockHead) error {
	if err := w.f.Sync(); err != nil {
		return w.fail(fmt.Errorf("store %s: sync: %w", w.dir, err))
	}
	w.unsealed = 0
	if w.o.Checkpoint == nil {
		return nil
	}
	c := Checkpoint{LogID: w.logID, Segment: w.hdr.Segment, Block: h.Number, Seq: h.FirstSeq + uint64(h.Records) - 1,
		Hash: w.prevHash, Time: time.Unix(0, h.WriteTime).UTC()}
	if h.Kind == kindSeal || h.Flags&blockSealed != 0 {
		c.Sealed, c.Epoch, c.Seal = true, le.Uint64(w.out[len(w.out)-2*hashSize-8:]), w.lastTag
	}
	w.o.Checkpoint(c)
	return nil
}

// rotate closes the segment and opens the next.
func (w *Writer) rotate() error {
	if err := w.closeSegment(); err != nil {
		return err
	}
	prev := previous{Number: w.hdr.Segment, Length: w.segSize, Hash: w.prevHash, Closed: true}
	if err := w.f.Close(); err != nil {
		return w.fail(err)
	}
	w.f = nil
	w.expire(w.o.Clock())
	return w.openSegment(prev, 0)
}

// emit finishes the block whose fixed part and index are in w.out:
// body follows them, encrypted when the segment is. finish, if set, sees
// the whole block before it is hashed (a seal signs it). It is written
// in one write, so that a crash tears at most this block.
func (w *Writer) emit(h *blockHead, body []byte, finish func(out []byte)) error {
	h.Number = w.nextBlock
	h.Prev = w.prevHash
	size := len(w.out) + len(body) + hashSize
	if w.cipher != nil && h.Kind == kindData {
		h.Flags |= blockEncrypted
		size += tagSize
	}
	h.Length = uint32(size)
	h.put(w.out)
	if h.Flags&blockEncrypted != 0 {
		w.out = w.cipher.seal(w.out, body, h.Number)
	} else {
		w.out = append(w.out, body...)
	}
	if finish != nil {
		finish(w.out)
	}
	if w.stats.FirstWrite == 0 {
		w.stats.FirstWrite = h.WriteTime
	}
	w.stats.LastWrite = h.WriteTime
	sum := sha256.Sum256(w.out)
	w.out = append(w.out, sum[:]...)
	if _, err := writeBlock(w.f, w.out); err != nil {
		return w.fail(fmt.Errorf("store %s: write: %w", w.dir, err))
	}
	w.segSize += int64(len(w.out))
	w.prevHash = sum
	w.nextBlock++
	w.lastHead = *h
	if h.Kind != kindSeal {
		w.unsealed++
	}
	return nil
}

// writeBlock writes a block. The crash tests make it tear one in two.
var writeBlock = func(f *os.File, b []byte) (int, error) { return f.Write(b) }

// writeTime is now, never before the last write: write times only grow.
func (w *Writer) writeTime() int64 {
	t := max(w.o.Clock().UnixNano(), w.lastWrite)
	w.lastWrite = t
	return t
}
