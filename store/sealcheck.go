package store

import (
	"crypto/hmac"
	"fmt"
	"time"
)

// sealCheck is verify's second level: every seal made with its own
// epoch's key, over blocks all written in that epoch, and nothing left
// unsealed but the tail a running writer has not sealed yet.
type sealCheck struct {
	key     *VerifyKey
	started bool // a sealed segment has been seen
	first   uint64
	last    uint64 // the last seal's epoch
	sealed  bool   // a seal has been seen

	// The blocks since the last seal: the first of them, and its epoch.
	pending      bool
	pendingEpoch uint64
	pendingRes   *SegmentResult
	pendingBlock int64
	pendingOff   int64
	pendingSeg   uint64
}

func (s *sealCheck) segment(v *verifier, h *Header, res *SegmentResult) {
	if s.key == nil {
		return
	}
	if h.Flags&headerSealed == 0 {
		if s.started {
			bad(res, StatusUnsealed, -1, 0, "sealing stopped: this segment is not sealed, and segment %d was", s.first)
		} else {
			res.Notes = append(res.Notes, "not sealed: sealing began later")
		}
		return
	}
	if !s.started {
		s.started, s.first = true, h.Segment
	}
	if h.SealEvery != s.key.Every || h.SealStart != s.key.Start {
		bad(res, StatusModified, -1, 0, "the header's epochs (%ds from %d) are not the verification key's (%ds from %d)", h.SealEvery, h.SealStart, s.key.Every, s.key.Start)
	}
}

// block checks one block of a sealed segment; false stops the segment.
func (s *sealCheck) block(v *verifier, h *Header, b *block, res *SegmentResult) bool {
	if s.key == nil || h.Flags&headerSealed == 0 {
		return true
	}
	k := int64(b.Number)
	if b.Kind != kindSeal {
		// A data or closing block: covered by the next seal, which must
		// be of the epoch it was written in.
		e := epochOf(b.WriteTime, s.key.Start, s.key.Every)
		if s.pending && e != s.pendingEpoch {
			bad(res, StatusUnsealed, k, b.Offset, "it was written in epoch %d, and the blocks of epoch %d before it (from block %d of segment %d) were never sealed",
				e, s.pendingEpoch, s.pendingBlock, s.pendingSeg)
			return false
		}
		if !s.pending {
			s.pending, s.pendingEpoch = true, e
			s.pendingRes, s.pendingBlock, s.pendingOff, s.pendingSeg = res, k, b.Offset, h.Segment
		}
	}
	var tail []byte
	switch {
	case b.Kind == kindSeal:
		tail = b.body()
	case b.Kind == kindClose && b.Flags&blockSealed != 0:
		tail = b.body()[closeBody:]
	case b.Kind == kindClose:
		bad(res, StatusUnsealed, k, b.Offset, "the closing block of a sealed segment carries no seal")
		return false
	default:
		return true
	}
	epoch := le.Uint64(tail)
	var tag [hashSize]byte
	copy(tag[:], tail[8:])
	now := v.o.Now()
	if limit := epochOf(now.UnixNano(), s.key.Start, s.key.Every) + 1; epoch > limit {
		bad(res, StatusModified, k, b.Offset, "the seal claims epoch %d, which has not begun", epoch)
		return false
	}
	signed := b.Raw[:int(b.Length)-2*hashSize]
	want := sealTag(s.key.epochKey(epoch), h.Hash, signed)
	if !hmac.Equal(want[:], tag[:]) {
		bad(res, StatusModified, k, b.Offset, "the seal does not verify with epoch %d's key: the blocks before it were changed, or it was made without the key", epoch)
		return false
	}
	if s.sealed && epoch < s.last {
		bad(res, StatusModified, k, b.Offset, "a seal of epoch %d comes after one of epoch %d", epoch, s.last)
		return false
	}
	if s.pending && s.pendingEpoch != epoch {
		bad(res, StatusModified, k, b.Offset, "a seal made with epoch %d's key covers blocks written in epoch %d (from block %d of segment %d): a key taken later sealed earlier data",
			epoch, s.pendingEpoch, s.pendingBlock, s.pendingSeg)
		return false
	}
	s.pending, s.sealed, s.last = false, true, epoch
	res.Seals++
	return true
}

// finish judges the blocks after the last seal: the tail a running
// writer has not sealed yet, or blocks nobody sealed.
func (s *sealCheck) finish(v *verifier) {
	if s.key == nil || !s.pending {
		return
	}
	now := epochOf(v.o.Now().UnixNano(), s.key.Start, s.key.Every)
	if v.isLive() && s.pendingEpoch+1 >= now {
		res := &v.report.Segments[len(v.report.Segments)-1]
		res.Notes = append(res.Notes, fmt.Sprintf("the blocks since the last seal (from block %d of segment %d) are this epoch's: icptrack is writing and seals them when the epoch ends, at %s",
			s.pendingBlock, s.pendingSeg, time.Unix(s.key.Start+int64(s.pendingEpoch+1)*int64(s.key.Every), 0).UTC().Format(time.RFC3339)))
		return
	}
	bad(s.pendingRes, StatusUnsealed, s.pendingBlock, s.pendingOff, "the blocks from here on were never sealed: icptrack stopped without sealing them (and has not restarted), or they were added without the seal key")
}
