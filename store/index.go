package store

import (
	"errors"
	"math/bits"
	"slices"

	"github.com/icptrack/icptrack/flow"
)

// A data block's index, in the clear so that a query can skip the block
// without decrypting it: the operations' time range, their mechanisms,
// and the set of their pids and of their channels.
//
//	int64  min time (unix ns; operations only)
//	int64  max time
//	uint32 mechanisms (bit m for mechanism m)
//	set    pids     (key: the pid)
//	set    channels (key: FNV-1a 64 of the channel)
//
// A set is a kind byte: 0 empty; 1 exact, a uint16 count and that many
// uint64 keys, ascending; 2 Bloom, a byte log2(bits), a byte k, then
// bits/8 bytes. Key k's Bloom bits are (h1 + i*h2) mod bits for i < k,
// where z = splitmix64's finaliser of k, h1 = the low 32 bits of z and
// h2 = (the high 32 bits) | 1, in 32-bit arithmetic; bit b is
// byte[b/8] & (1 << (b%8)).

const (
	setEmpty = 0
	setExact = 1
	setBloom = 2
	// maxExact is the most keys kept exactly; more go in a Bloom filter.
	maxExact = 16
	// bloomK and bloomBitsPerKey give about 0.6% false positives.
	bloomK          = 4
	bloomBitsPerKey = 12
	minBloomLog2    = 6
	maxBloomLog2    = 16
)

// indexBuilder gathers a block's index as operations are added.
type indexBuilder struct {
	ops        int
	minT, maxT int64
	mechs      uint32
	pids       []uint64
	chans      []uint64
	lastPID    uint32
	lastChan   string
	lastHash   uint64
	// seen remembers keys already gathered (direct-mapped, by the key's
	// low bits), so that the sets sort hundreds of keys rather than an
	// operation's worth each.
	seen [2][256]uint64
}

func (x *indexBuilder) reset() {
	pids, chans := x.pids[:0], x.chans[:0]
	clear(x.seen[0][:])
	clear(x.seen[1][:])
	x.ops, x.minT, x.maxT, x.mechs, x.pids, x.chans = 0, 0, 0, 0, pids, chans
}

// fresh reports whether key was not gathered yet in set i, as far as
// the cache knows (a key it forgot is gathered twice, and compacted).
func (x *indexBuilder) fresh(i int, key uint64) bool {
	slot := &x.seen[i][(key^key>>17)&255]
	if *slot == key+1 {
		return false
	}
	*slot = key + 1
	return true
}

func (x *indexBuilder) add(op *flow.Operation) {
	t := op.Time.UnixNano()
	if x.ops == 0 || t < x.minT {
		x.minT = t
	}
	if x.ops == 0 || t > x.maxT {
		x.maxT = t
	}
	x.mechs |= 1 << (op.Mechanism & 31)
	if (x.ops == 0 || op.PID != x.lastPID) && x.fresh(0, uint64(op.PID)) {
		x.pids = append(x.pids, uint64(op.PID))
	}
	x.lastPID = op.PID
	if x.ops == 0 || op.Channel != x.lastChan {
		x.lastChan, x.lastHash = op.Channel, channelKey(op.Channel)
		if x.fresh(1, x.lastHash) {
			x.chans = append(x.chans, x.lastHash)
		}
	}
	x.ops++
}

// appendTo appends the encoded index.
func (x *indexBuilder) appendTo(b []byte) []byte {
	b = le.AppendUint64(b, uint64(x.minT))
	b = le.AppendUint64(b, uint64(x.maxT))
	b = le.AppendUint32(b, x.mechs)
	if x.ops == 0 {
		return append(b, setEmpty, setEmpty)
	}
	b = appendSet(b, x.pids)
	return appendSet(b, x.chans)
}

func appendSet(b []byte, keys []uint64) []byte {
	slices.Sort(keys)
	keys = slices.Compact(keys)
	switch {
	case len(keys) == 0:
		return append(b, setEmpty)
	case len(keys) <= maxExact:
		b = append(b, setExact)
		b = le.AppendUint16(b, uint16(len(keys)))
		for _, k := range keys {
			b = le.AppendUint64(b, k)
		}
		return b
	}
	log2 := bits.Len(uint(len(keys)*bloomBitsPerKey - 1))
	log2 = min(max(log2, minBloomLog2), maxBloomLog2)
	b = append(b, setBloom, byte(log2), bloomK)
	start := len(b)
	b = append(b, make([]byte, 1<<log2/8)...)
	filter := b[start:]
	mask := uint32(1)<<log2 - 1
	for _, k := range keys {
		h1, h2 := bloomHashes(k)
		for i := uint32(0); i < bloomK; i++ {
			bit := (h1 + i*h2) & mask
			filter[bit>>3] |= 1 << (bit & 7)
		}
	}
	return b
}

func bloomHashes(k uint64) (uint32, uint32) {
	z := k + 0x9e3779b97f4a7c15
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
	z = (z ^ (z >> 27)) * 0x94d049bb133111eb
	z ^= z >> 31
	return uint32(z), uint32(z>>32) | 1
}

// channelKey is FNV-1a, 64 bits.
func channelKey(s string) uint64 {
	h := uint64(14695981039346656037)
	for i := 0; i < len(s); i++ {
		h ^= uint64(s[i])
		h *= 1099511628211
	}
	return h
}

// blockIndex is a decoded index.
type blockIndex struct {
	MinTime, MaxTime int64
	Mechs            uint32
	PIDs, Channels   keySet
}

// keySet is a decoded set: the exact keys, or a Bloom filter.
type keySet struct {
	kind  byte
	exact []byte // count × uint64
	bloom []byte
	log2  uint8
	k     uint8
}

// mayHave reports whether key may be in the set: surely not when false.
func (s *keySet) mayHave(key uint64) bool {
	switch s.kind {
	case setExact:
		for i := 0; i+8 <= len(s.exact); i += 8 {
			if le.Uint64(s.exact[i:]) == key {
				return true
			}
		}
		return false
	case setBloom:
		h1, h2 := bloomHashes(key)
		mask := uint32(1)<<s.log2 - 1
		for i := uint32(0); i < uint32(s.k); i++ {
			bit := (h1 + i*h2) & mask
			if s.bloom[bit>>3]&(1<<(bit&7)) == 0 {
				return false
			}
		}
		return true
	}
	return false
}

var errIndex = errors.New("block index is malformed")

func parseIndex(b []byte) (blockIndex, error) {
	var x blockIndex
	if len(b) < 20 {
		return x, errIndex
	}
	x.MinTime = int64(le.Uint64(b))
	x.MaxTime = int64(le.Uint64(b[8:]))
	x.Mechs = le.Uint32(b[16:])
	rest, err := parseSet(b[20:], &x.PIDs)
	if err != nil {
		return x, err
	}
	rest, err = parseSet(rest, &x.Channels)
	if err != nil {
		return x, err
	}
	if len(rest) != 0 {
		return x, errIndex
	}
	return x, nil
}

func parseSet(b []byte, s *keySet) ([]byte, error) {
	if len(b) < 1 {
		return nil, errIndex
	}
	s.kind = b[0]
	b = b[1:]
	switch s.kind {
	case setEmpty:
		return b, nil
	case setExact:
		if len(b) < 2 {
			return nil, errIndex
		}
		n := int(le.Uint16(b)) * 8
		if len(b) < 2+n {
			return nil, errIndex
		}
		s.exact = b[2 : 2+n]
		return b[2+n:], nil
	case setBloom:
		if len(b) < 2 || b[0] < 3 || b[0] > maxBloomLog2 || b[1] == 0 || b[1] > 32 {
			return nil, errIndex
		}
		s.log2, s.k = b[0], b[1]
		n := 1 << s.log2 / 8
		if len(b) < 2+n {
			return nil, errIndex
		}
		s.bloom = b[2 : 2+n]
		return b[2+n:], nil
	}
	return nil, errIndex
}
