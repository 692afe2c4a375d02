package store

import (
	"crypto/sha256"
	"errors"
	"io"
	"math/rand/v2"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/icptrack/icptrack/flow"
)

// randomOp makes the i-th operation of a synthetic capture: every field
// of flow.Operation takes values an operation can have, often repeating
// the one before (as a real capture does), sometimes not.
func randomOp(r *rand.Rand, i int, base time.Time) *flow.Operation {
	comms := []string{"demo-server", "demo-client", "nginx", "postgres", "sh", "a\"quoted\\name\n", "ünïcode"}
	pid := uint32(1000 + r.IntN(40))
	op := &flow.Operation{
		ID:         flow.OpID(r.Uint64() | 1),
		Time:       base.Add(time.Duration(i)*time.Millisecond + time.Duration(r.IntN(1000))),
		Duration:   time.Duration(r.IntN(5_000_000)),
		PID:        pid,
		TID:        pid + uint32(r.IntN(3)),
		PPID:       pid / 2,
		Comm:       comms[int(pid)%len(comms)],
		Mechanism:  flow.Mechanism(1 + r.IntN(flow.MechanismCount-1)),
		Op:         flow.OpType(1 + r.IntN(10)),
		Syscall:    []string{"write", "read", "sendmsg", "recvmsg", "mq_timedsend", ""}[r.IntN(6)],
		Channel:    "pipe:" + string(rune('a'+r.IntN(20))),
		Endpoint:   []string{"pipe:[123]", "/run/app.sock", "@abstract", "", "127.0.0.1:5000->127.0.0.1:41234"}[r.IntN(5)],
		Bytes:      int64(r.IntN(1 << 20)),
		QueueDepth: -1,
		Blocked:    r.IntN(4) == 0,
		Exe:        "/usr/bin/" + comms[int(pid)%len(comms)],
		CgroupID:   uint64(pid / 10),
	}
	if r.IntN(3) == 0 {
		op.Count = uint32(2 + r.IntN(100))
		op.Busy = time.Duration(r.IntN(1_000_000))
	}
	if r.IntN(10) == 0 {
		op.StartUnknown = true
	}
	if r.IntN(2) == 0 {
		op.Peer = flow.Peer{PID: 1000 + uint32(r.IntN(40)), Comm: comms[r.IntN(len(comms))]}
	} else if r.IntN(5) == 0 {
		op.Peer = flow.Kernel
	}
	if r.IntN(3) == 0 {
		op.Links = make([]flow.OpID, 1+r.IntN(3))
		for j := range op.Links {
			op.Links[j] = flow.OpID(r.Uint64())
		}
	}
	if r.IntN(8) == 0 {
		op.Error = []string{"EAGAIN", "EPIPE", "errno_200"}[r.IntN(3)]
		op.Bytes = 0
	}
	if r.IntN(4) == 0 {
		op.PayloadCaptured = true
		op.Payload = make([]byte, r.IntN(64))
		for j := range op.Payload {
			op.Payload[j] = byte(r.IntN(256))
		}
		op.PayloadTruncated = r.IntN(2) == 0
	}
	if r.IntN(6) == 0 {
		op.Signal = "SIGTERM"
	}
	if r.IntN(5) == 0 {
		op.QueueDepth = int64(r.IntN(10))
		op.HasMessageType = true
		op.MessageType = int64(r.IntN(5)) - 1
	}
	if r.IntN(7) == 0 {
		op.Peers = []uint32{uint32(r.IntN(5000)), uint32(r.IntN(5000))}
	}
	if r.IntN(5) == 0 {
		op.Local = netip.MustParseAddrPort("127.0.0.1:5000")
		op.Remote = netip.AddrPortFrom(netip.MustParseAddr("::1"), uint16(r.IntN(65536)))
	}
	if r.IntN(4) == 0 {
		op.Cmdline = "server --port 8080 --name=" + comms[r.IntN(len(comms))]
	}
	if r.IntN(6) == 0 {
		op.ContainerID = "3f2a9c1e5b7d"
	}
	return op
}

// plainOps makes n small operations of two processes over a pipe.
func plainOps(n int, base time.Time) []*flow.Operation {
	ops := make([]*flow.Operation, n)
	for i := range ops {
		pid := uint32(100 + i%2)
		ops[i] = &flow.Operation{ID: flow.OpID(i + 1), Time: base.Add(time.Duration(i) * time.Millisecond),
			Duration: 1500, PID: pid, TID: pid, Comm: "p" + string(rune('0'+i%2)), Mechanism: flow.Pipe,
			Op: flow.OpType(1 + i%2), Syscall: "write", Channel: "pipe:1", Bytes: int64(i), QueueDepth: -1}
	}
	return ops
}

// randomOps makes n operations with a fixed seed.
func randomOps(seed uint64, n int, base time.Time) []*flow.Operation {
	r := rand.New(rand.NewPCG(seed, 1))
	ops := make([]*flow.Operation, n)
	for i := range ops {
		ops[i] = randomOp(r, i, base)
	}
	return ops
}

// fakeClock is a clock a test moves.
type fakeClock struct{ t time.Time }

func (c *fakeClock) now() time.Time      { return c.t }
func (c *fakeClock) add(d time.Duration) { c.t = c.t.Add(d) }
func newClock(t time.Time) *fakeClock    { return &fakeClock{t} }
func testBase() time.Time                { return time.Date(2026, 12, 5, 10, 0, 0, 0, time.UTC) }
func segFiles(t *testing.T, dir string) []string {
	t.Helper()
	m, err := filepath.Glob(filepath.Join(dir, "*.seg"))
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func mustVerify(t *testing.T, dir string, o VerifyOptions) *Report {
	t.Helper()
	r, err := Verify(dir, o)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func readFile(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func writeFile(t *testing.T, path string, b []byte) {
	t.Helper()
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

// rechain rewrites every segment as someone who can write the files
// would after changing them: modify may change a block (segment, block
// number, its bytes), every hash after it is made to match again, the
// headers' links included, and resign, if set, sees each block with its
// new link (and the header's hash) before it is hashed.
func rechain(t *testing.T, dir string, modify func(seg, k uint64, b []byte) []byte, resign func(seg, k uint64, b []byte, header [hashSize]byte)) {
	t.Helper()
	var prevLen uint64
	var prevHash [hashSize]byte
	for i, path := range segFiles(t, dir) {
		raw := readFile(t, path)
		h, err := parseHeader(raw)
		if err != nil {
			t.Fatal(err)
		}
		if i > 0 {
			h.PrevLen, h.PrevHash = prevLen, prevHash
		}
		out := h.marshal()
		prev := h.Hash
		for off, k := headerSize, uint64(0); off < len(raw); k++ {
			n := int(le.Uint32(raw[off+4:]))
			b := append([]byte(nil), raw[off:off+n]...)
			if modify != nil {
				b = modify(h.Segment, k, b)
			}
			le.PutUint32(b[4:], uint32(len(b)))
			copy(b[48:80], prev[:])
			if resign != nil {
				resign(h.Segment, k, b, h.Hash)
			}
			prev = sha256.Sum256(b[:len(b)-hashSize])
			copy(b[len(b)-hashSize:], prev[:])
			out = append(out, b...)
			off += n
		}
		writeFile(t, path, out)
		prevLen, prevHash = uint64(len(out)), prev
	}
}

// newKeyring makes a keyring in a temporary directory.
func newKeyring(t *testing.T, recipients ...string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "keyring")
	if _, err := NewKeyring(path, recipients); err != nil {
		t.Fatal(err)
	}
	return path
}

func loadKeyring(t *testing.T, path string) *Keyring {
	t.Helper()
	kr, err := LoadKeyring(path)
	if err != nil {
		t.Fatal(err)
	}
	return kr
}

// readNotes decodes every note in the store, as text, one a line.
func readNotes(t *testing.T, dir string, kr *Keyring) string {
	t.Helper()
	var out []string
	for _, rec := range readRecords(t, dir, kr) {
		if rec.Note != nil {
			out = append(out, rec.Note.String())
		}
	}
	return strings.Join(out, "\n")
}

// record is a record as a test reads it back: its sequence number and
// the operation or the note.
type record struct {
	Seq  uint64
	Op   *flow.Operation
	Note *Note
}

// readRecords reads every record of every segment, in order, decrypting
// with kr; any problem fails the test.
// readOps is the operations among readRecords'.
func readOps(t *testing.T, dir string, kr *Keyring) []*flow.Operation {
	t.Helper()
	var ops []*flow.Operation
	for _, r := range readRecords(t, dir, kr) {
		if r.Op != nil {
			ops = append(ops, r.Op)
		}
	}
	return ops
}

func readRecords(t *testing.T, dir string, kr *Keyring) []record {
	t.Helper()
	segs, err := listSegments(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []record
	for _, seg := range segs {
		r, err := openSegReader(seg.Path)
		if err != nil {
			t.Fatal(err)
		}
		var open *segmentCipher
		if r.hdr.Encrypted() {
			k := kr.lookup(r.hdr.KeyID)
			if k == nil {
				t.Fatalf("%s: no key", seg.Path)
			}
			if open, err = newSegmentCipher(k.secret, r.hdr); err != nil {
				t.Fatal(err)
			}
		}
		for off := int64(headerSize); ; {
			b, _, err := r.readBlock(off, nil)
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				t.Fatalf("%s at %d: %v", seg.Path, off, err)
			}
			off += int64(b.Length)
			if b.Kind != kindData {
				continue
			}
			body := b.body()
			if open != nil {
				if body, err = open.open(nil, b, r.hdr); err != nil {
					t.Fatal(err)
				}
			}
			var d decoder
			d.reset(body)
			seq := b.FirstSeq
			for {
				typ, rec, ok := d.next()
				if !ok {
					break
				}
				if typ == recOperation {
					op := &flow.Operation{}
					if err := d.operation(rec, op); err != nil {
						t.Fatal(err)
					}
					out = append(out, record{Seq: seq, Op: op.Clone()})
				} else {
					n, err := d.note(typ, rec)
					if err != nil {
						t.Fatal(err)
					}
					out = append(out, record{Seq: seq, Note: n})
				}
				seq++
			}
			if d.err != nil {
				t.Fatal(d.err)
			}
		}
		r.Close()
	}
	return out
}
