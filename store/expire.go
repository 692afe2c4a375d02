package store

import (
	"fmt"
	"os"
	"time"
)

// expire removes the oldest segments while the store is larger than
// MaxSize, or while the oldest was last written more than MaxAge ago;
// never the newest, whose successor is about to name it. It runs before
// a segment is opened, whose header then states the first segment kept
// and whose first block records what expired: so an expired segment
// does not look like a deleted one. A segment that is already gone when
// its turn comes is not counted as expired: the first one kept stays
// below it, and verify goes on reporting it missing.
func (w *Writer) expire(now time.Time) {
	if w.o.MaxSize <= 0 && w.o.MaxAge <= 0 {
		return
	}
	segs, err := listSegments(w.dir)
	if err != nil || len(segs) < 2 {
		return
	}
	sizes := make([]int64, len(segs))
	var total int64
	for i, s := range segs {
		if info, err := os.Stat(s.Path); err == nil {
			sizes[i] = info.Size()
			total += sizes[i]
		}
	}
	var first, last uint64
	var bytes int64
	reason := ""
	for i, s := range segs[:len(segs)-1] {
		why := ""
		switch {
		case w.o.MaxSize > 0 && total > w.o.MaxSize:
			why = "max_size"
		case w.o.MaxAge > 0 && now.Sub(lastWritten(s.Path)) > w.o.MaxAge:
			why = "max_age"
		default:
		}
		if why == "" {
			break
		}
		if err := os.Remove(s.Path); err != nil {
			w.o.Warn(fmt.Errorf("store %s: expire %s: %w", w.dir, s.Path, err))
			break
		}
		total -= sizes[i]
		if s.Number == w.firstKept {
			w.firstKept = s.Number + 1
		} else if s.Number > w.firstKept {
			w.o.Warn(fmt.Errorf("store %s: segment %d was removed by something other than icptrack: verify will report it missing", w.dir, w.firstKept))
		}
		if first == 0 {
			first = s.Number
		}
		last, bytes, reason = s.Number, bytes+sizes[i], why
	}
	if first != 0 {
		w.note(&Note{Kind: "expired", Time: now, Segment: first, Last: last, Bytes: uint64(bytes), Reason: reason})
	}
}

// lastWritten is when a segment was last written: its closing block's
// write time, or the file's when it was not closed.
func lastWritten(path string) time.Time {
	r, err := openSegReader(path)
	if err != nil {
		if info, err := os.Stat(path); err == nil {
			return info.ModTime()
		}
		return time.Time{}
	}
	defer r.Close()
	if r.size >= headerSize+closeBlockSize {
		b := make([]byte, blockFixed)
		if _, err := r.ReadAt(b, r.size-closeBlockSize); err == nil {
			if h, err := parseBlockHead(b, closeBlockSize); err == nil && h.Kind == kindClose {
				return time.Unix(0, h.WriteTime)
			}
		}
	}
	if info, err := r.f.Stat(); r.f != nil && err == nil {
		return info.ModTime()
	}
	if info, err := os.Stat(path); err == nil {
		return info.ModTime()
	}
	return time.Time{}
}
