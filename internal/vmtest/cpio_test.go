package vmtest

import (
	"bytes"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// cpioEntry is what readNewc found in one header.
type cpioEntry struct {
	name         string
	ino, mode    uint32
	nlink        uint32
	rmaj, rmin   uint32
	data         []byte
	headerOffset int
}

// readNewc parses a newc archive strictly: the magic, hex fields, NUL
// after each name and 4-byte alignment of every header and of the data.
func readNewc(t *testing.T, b []byte) []cpioEntry {
	t.Helper()
	var out []cpioEntry
	off := 0
	for {
		if off%4 != 0 {
			t.Fatalf("header at %d is not 4-byte aligned", off)
		}
		if len(b)-off < 110 {
			t.Fatalf("archive ends at %d inside a header, with no trailer", off)
		}
		h := b[off : off+110]
		if string(h[:6]) != "070701" {
			t.Fatalf("magic at %d is %q", off, h[:6])
		}
		field := func(i int) uint32 {
			v, err := strconv.ParseUint(string(h[6+8*i:14+8*i]), 16, 32)
			if err != nil {
				t.Fatalf("field %d of the header at %d: %v", i, off, err)
			}
			return uint32(v)
		}
		e := cpioEntry{ino: field(0), mode: field(1), nlink: field(4), rmaj: field(9), rmin: field(10), headerOffset: off}
		size, namesize := int(field(6)), int(field(11))
		name := b[off+110 : off+110+namesize]
		if name[namesize-1] != 0 {
			t.Fatalf("name at %d is not NUL-terminated: %q", off, name)
		}
		e.name = string(name[:namesize-1])
		off += 110 + namesize
		for ; off%4 != 0; off++ {
			if b[off] != 0 {
				t.Fatalf("padding after %s is not zero", e.name)
			}
		}
		if e.name == "TRAILER!!!" {
			return out
		}
		e.data = b[off : off+size]
		off += size
		off += (4 - off%4) % 4
		out = append(out, e)
	}
}

func TestCPIOWriterRoundTrips(t *testing.T) {
	var buf bytes.Buffer
	w := NewCPIOWriter(&buf)
	// Sizes 0..5 cover every padding case of both names and data.
	files := map[string]string{"a": "", "bb": "1", "ccc": "12", "/dddd": "123", "e/x": "1234", "e/yy": "12345"}
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(w.Dir("e", 0o755))
	must(w.Dir("dev", 0o755))
	must(w.CharDev("dev/console", 0o600, 5, 1))
	for _, name := range []string{"a", "bb", "ccc", "/dddd", "e/x", "e/yy"} {
		must(w.File(name, 0o755, int64(len(files[name])), strings.NewReader(files[name])))
	}
	must(w.Close())

	entries := readNewc(t, buf.Bytes())
	if len(entries) != 9 {
		t.Fatalf("read %d entries, want 9: %+v", len(entries), entries)
	}
	inos := map[uint32]bool{}
	for _, e := range entries {
		if inos[e.ino] {
			t.Errorf("%s reuses inode %d: the kernel would take it for a hard link", e.name, e.ino)
		}
		inos[e.ino] = true
		switch {
		case e.name == "e" || e.name == "dev":
			if e.mode != 0o040755 {
				t.Errorf("%s: mode %o, want a directory 0755", e.name, e.mode)
			}
		case e.name == "dev/console":
			if e.mode != 0o020600 || e.rmaj != 5 || e.rmin != 1 {
				t.Errorf("dev/console: mode %o rdev %d:%d, want char 0600 5:1", e.mode, e.rmaj, e.rmin)
			}
		default:
			want, ok := files[e.name]
			if !ok {
				want, ok = files["/"+e.name]
			}
			if !ok {
				t.Errorf("unexpected entry %q", e.name)
				continue
			}
			if e.mode != 0o100755 || string(e.data) != want {
				t.Errorf("%s: mode %o data %q, want a file 0755 with %q", e.name, e.mode, e.data, want)
			}
		}
	}
}

func TestCPIOWriterRefusesAShortReader(t *testing.T) {
	w := NewCPIOWriter(io.Discard)
	if err := w.File("f", 0o644, 10, strings.NewReader("short")); err == nil {
		t.Fatal("a file with fewer bytes than its size was accepted")
	}
	if err := w.Close(); err == nil {
		t.Fatal("Close after a failed entry succeeded: the archive is corrupt")
	}
}

// TestCPIOWriterAgreesWithGNUCpio lists the archive with GNU cpio, when it
// is installed (apt-get install cpio), as a second opinion on the format.
func TestCPIOWriterAgreesWithGNUCpio(t *testing.T) {
	cpio, err := exec.LookPath("cpio")
	if err != nil {
		t.Skip("cpio not installed (apt-get install cpio): the round trip above still checks the format")
	}
	var buf bytes.Buffer
	w := NewCPIOWriter(&buf)
	w.Dir("d", 0o755)
	w.File("d/f", 0o644, 3, strings.NewReader("abc"))
	w.CharDev("console", 0o600, 5, 1)
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	archive := filepath.Join(dir, "a.cpio")
	if err := os.WriteFile(archive, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(cpio, "-itv", "-F", archive).CombinedOutput()
	if err != nil {
		t.Fatalf("cpio -itv: %v\n%s", err, out)
	}
	got := string(out)
	for _, want := range []string{"drwxr-xr-x", " d\n", "-rw-r--r--", " 3 ", " d/f\n", "crw-------", "5,", " console\n"} {
		if !strings.Contains(got, want) {
			t.Errorf("cpio -itv does not show %q:\n%s", want, got)
		}
	}
	if strings.Contains(got, "warning") || strings.Contains(got, "junk") {
		t.Errorf("cpio complained:\n%s", got)
	}
}
