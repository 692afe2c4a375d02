package store

// Stage 1 stubs, replaced by the keyring, the seals and the checkpoints.

type VerifyKey struct{ LogID [16]byte }
type Checkpoint struct {
	LogID          [16]byte
	Segment, Block uint64
}

type sealCheck struct{ key *VerifyKey }

func (s *sealCheck) segment(v *verifier, h *Header, res *SegmentResult)              {}
func (s *sealCheck) block(v *verifier, h *Header, b *block, res *SegmentResult) bool { return true }
func (s *sealCheck) finish(v *verifier)                                              {}
func (v *verifier) checkCheckpoints()                                                {}
