package store

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/sha256"
	"errors"
)

// Encryption: each segment has its own AES-256 key, derived with
// HKDF-SHA256 from the key-encryption key (the keyring's), the store's
// log id as salt, and "icptrack segment key v1" followed by the segment
// number (8 bytes, big-endian) as info. A block's nonce is the segment's
// random 4-byte prefix followed by the block number (8 bytes,
// big-endian), so no nonce repeats under a key. The additional data is
// the segment header's hash followed by the block's bytes before its
// body (fixed part and index): a block cannot be moved, renumbered,
// re-chained or given another index without its tag failing.

const segmentKeyInfo = "icptrack segment key v1"

// segmentKey derives a segment's key.
func segmentKey(kek []byte, logID [16]byte, segment uint64) ([]byte, error) {
	info := make([]byte, 0, len(segmentKeyInfo)+8)
	info = append(info, segmentKeyInfo...)
	info = be64(info, segment)
	return hkdf.Key(sha256.New, kek, logID[:], string(info), 32)
}

func be64(b []byte, v uint64) []byte {
	return append(b, byte(v>>56), byte(v>>48), byte(v>>40), byte(v>>32), byte(v>>24), byte(v>>16), byte(v>>8), byte(v))
}

// segmentCipher encrypts or decrypts one segment's blocks.
type segmentCipher struct {
	aead   cipher.AEAD
	prefix [noncePrefixSize]byte
	nonce  [12]byte
	aad    []byte
}

func newSegmentCipher(kek []byte, h *Header) (*segmentCipher, error) {
	key, err := segmentKey(kek, h.LogID, h.Segment)
	if err != nil {
		return nil, err
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, err
	}
	c := &segmentCipher{aead: aead, prefix: h.Nonce}
	copy(c.nonce[:], h.Nonce[:])
	c.aad = append(c.aad, h.Hash[:]...)
	return c, nil
}

func (c *segmentCipher) setNonce(block uint64) {
	b := c.nonce[noncePrefixSize:noncePrefixSize]
	be64(b, block)
}

// seal appends the ciphertext of plain to out, whose bytes so far are
// the block's fixed part and index (the additional data, with the
// header's hash).
func (c *segmentCipher) seal(out, plain []byte, block uint64) []byte {
	c.setNonce(block)
	c.aad = append(c.aad[:hashSize], out...)
	return c.aead.Seal(out, c.nonce[:], plain, c.aad)
}

// blockOpener decrypts blocks.
type blockOpener interface {
	open(dst []byte, b *block, h *Header) ([]byte, error)
}

var errTag = errors.New("the GCM tag does not verify")

func (c *segmentCipher) open(dst []byte, b *block, h *Header) ([]byte, error) {
	c.setNonce(b.Number)
	c.aad = append(c.aad[:hashSize], b.Raw[:blockFixed+b.IndexLen]...)
	out, err := c.aead.Open(dst, c.nonce[:], b.body(), c.aad)
	if err != nil {
		return dst, errTag
	}
	return out, nil
}
