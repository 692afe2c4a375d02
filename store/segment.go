package store

import (
	"errors"
	"fmt"
	"golang.org/x/sys/unix"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
)

// Segment files are named by their number, 12 decimal digits, so that
// they sort in order: 000000000001.seg.
const segmentExt = ".seg"

var segmentName = regexp.MustCompile(`^([0-9]{12})\.seg$`)

func segmentPath(dir string, n uint64) string {
	return filepath.Join(dir, fmt.Sprintf("%012d%s", n, segmentExt))
}

// segmentFile is a segment file in a store directory.
type segmentFile struct {
	Path   string
	Number uint64 // from its name
}

// listSegments lists dir's segment files by number.
func listSegments(dir string) ([]segmentFile, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var out []segmentFile
	for _, e := range entries {
		m := segmentName.FindStringSubmatch(e.Name())
		if m == nil || e.Type()&fs.ModeType != 0 {
			continue
		}
		n, _ := strconv.ParseUint(m[1], 10, 64)
		out = append(out, segmentFile{Path: filepath.Join(dir, e.Name()), Number: n})
	}
	slices.SortFunc(out, func(a, b segmentFile) int {
		switch {
		case a.Number < b.Number:
			return -1
		case a.Number > b.Number:
			return 1
		}
		return 0
	})
	return out, nil
}

// segReader reads one segment file's header and blocks.
type segReader struct {
	f      *os.File
	size   int64
	hdr    *Header
	hdrErr error // a header that does not match its hash (hdr is still set)
	// whole is the file, when it is small enough to read at once.
	whole []byte
}

// wholeFile is the largest segment read into memory at once: a small
// store is then read with a system call per file.
const wholeFile = 4 << 20

// ReadAt reads the file, from memory when it is there.
func (r *segReader) ReadAt(b []byte, off int64) (int, error) {
	if r.whole != nil {
		if off >= int64(len(r.whole)) {
			return 0, io.EOF
		}
		n := copy(b, r.whole[off:])
		if n < len(b) {
			return n, io.EOF
		}
		return n, nil
	}
	return r.f.ReadAt(b, off)
}

// openSegReader opens path and reads its header. A header that cannot
// be parsed at all is an error; one whose hash is wrong is kept with
// hdrErr set, for the verifier to report.
func openSegReader(path string) (*segReader, error) {
	r, err := openSegFile(path)
	if err != nil {
		return nil, err
	}
	b := make([]byte, headerSize)
	if _, err := io.ReadFull(io.NewSectionReader(r, 0, r.size), b); err != nil {
		r.Close()
		if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
			return nil, fmt.Errorf("the file is %d bytes, shorter than a segment header", r.size)
		}
		return nil, err
	}
	r.hdr, err = parseHeader(b)
	if err != nil && !errors.Is(err, errHashMismatch) {
		r.Close()
		return nil, err
	}
	r.hdrErr = err
	return r, nil
}

// openSegFile opens a segment file: a small one is read whole at once,
// with as few system calls as can be (verify reads small stores many
// times over in its tests, and system calls are slow where BPF hooks
// them).
func openSegFile(path string) (*segReader, error) {
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, &fs.PathError{Op: "open", Path: path, Err: err}
	}
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		unix.Close(fd)
		return nil, &fs.PathError{Op: "stat", Path: path, Err: err}
	}
	r := &segReader{size: st.Size}
	if r.size > wholeFile {
		r.f = os.NewFile(uintptr(fd), path)
		return r, nil
	}
	defer unix.Close(fd)
	r.whole = make([]byte, r.size)
	for n := 0; n < len(r.whole); {
		m, err := unix.Read(fd, r.whole[n:])
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return nil, &fs.PathError{Op: "read", Path: path, Err: err}
		}
		if m == 0 {
			r.whole = r.whole[:n]
			r.size = int64(n)
			break
		}
		n += m
	}
	return r, nil
}

func (r *segReader) Close() error {
	if r.f == nil {
		return nil
	}
	return r.f.Close()
}

// readBlock reads the whole block at off into buf (grown as needed). At
// the end of the file it returns io.EOF; a block the file ends inside of
// is errShort. The hash is not checked here.
func (r *segReader) readBlock(off int64, buf []byte) (*block, []byte, error) {
	if off >= r.size {
		return nil, buf, io.EOF
	}
	if r.whole != nil {
		h, err := parseBlockHead(r.whole[off:], r.size-off)
		if err != nil {
			return &block{blockHead: h, Offset: off}, buf, err
		}
		b := &block{blockHead: h, Offset: off, Raw: r.whole[off : off+int64(h.Length)]}
		copy(b.Hash[:], b.Raw[h.Length-hashSize:])
		return b, buf, nil
	}
	head := buf[:0]
	if cap(head) < blockFixed {
		head = make([]byte, 0, 4<<10)
	}
	n, err := r.ReadAt(head[:min(int64(cap(head)), r.size-off)], off)
	if err != nil && !errors.Is(err, io.EOF) {
		return nil, head, err
	}
	head = head[:n]
	h, err := parseBlockHead(head, r.size-off)
	if err != nil {
		return &block{blockHead: h, Offset: off}, head, err
	}
	raw := head
	if int(h.Length) > len(raw) {
		if cap(raw) < int(h.Length) {
			raw = make([]byte, h.Length)
			copy(raw, head)
		}
		raw = raw[:h.Length]
		if _, err := r.ReadAt(raw[n:], off+int64(n)); err != nil {
			return nil, raw, err
		}
	}
	raw = raw[:h.Length]
	b := &block{blockHead: h, Offset: off, Raw: raw}
	copy(b.Hash[:], raw[h.Length-hashSize:])
	return b, raw, nil
}

// readHead reads only the block's fixed part and index at off, for a
// query that may skip the block: buf holds them.
func (r *segReader) readHead(off int64, buf []byte) (blockHead, []byte, error) {
	if off >= r.size {
		return blockHead{}, buf, io.EOF
	}
	want := int64(blockFixed + 512)
	if cap(buf) < int(want) {
		buf = make([]byte, want)
	}
	buf = buf[:min(want, r.size-off)]
	n, err := r.ReadAt(buf, off)
	if err != nil && !errors.Is(err, io.EOF) {
		return blockHead{}, buf, err
	}
	h, err := parseBlockHead(buf[:n], r.size-off)
	if err != nil {
		return h, buf, err
	}
	need := blockFixed + int(h.IndexLen)
	if need > n {
		if cap(buf) < need {
			nb := make([]byte, need)
			copy(nb, buf[:n])
			buf = nb
		}
		buf = buf[:need]
		if _, err := r.ReadAt(buf[n:], off+int64(n)); err != nil {
			return h, buf, err
		}
	}
	return h, buf[:need], nil
}
