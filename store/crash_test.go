package store

import (
	"bufio"
	"bytes"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/icptrack/icptrack/exporter"
	"github.com/icptrack/icptrack/flow"
)

// The crash tests run this test binary again as a writer that appends
// operations until it is killed with SIGKILL, and say after each block
// how far the file holds them.
const (
	childEnv = "ICPTRACK_STORE_CHILD"
	keysEnv  = "ICPTRACK_STORE_KEYS"
	tornEnv  = "ICPTRACK_STORE_TORN"
	pastEnv  = "ICPTRACK_STORE_PAST"
)

func TestMain(m *testing.M) {
	if dir := os.Getenv(childEnv); dir != "" {
		crashChild(dir)
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// crashOp is the i-th operation the writer appends.
func crashOp(i int) *flow.Operation {
	return randomOp(rand.New(rand.NewPCG(uint64(i), 2)), i, testBase())
}

func crashChild(dir string) {
	if os.Getenv(tornEnv) != "" {
		// Past the first thousand records, write a block's first half,
		// say so, and wait to be killed before writing the rest.
		writes := 0
		writeBlock = func(f *os.File, b []byte) (int, error) {
			if writes++; writes > 10 {
				n, err := f.Write(b[:len(b)/2])
				fmt.Printf("torn %d\n", n)
				time.Sleep(time.Minute)
				return n, err
			}
			return f.Write(b)
		}
	}
	w, err := Open(dir, Options{KeyFile: os.Getenv(keysEnv), BlockSize: 4 << 10, SegmentSize: 128 << 10})
	if err != nil {
		fmt.Println("error", err)
		return
	}
	var said uint64
	for i := 0; ; i++ {
		if err := w.Append(crashOp(i)); err != nil {
			fmt.Println("error", err)
			return
		}
		if n := w.Written(); n != said {
			fmt.Printf("written %d\n", n)
			said = n
			// Past what the parent waits for, hold still to be killed
			// between two blocks, with a record in the block being
			// filled. Writing on, the kill could land anywhere, also
			// between a closed segment and the next one's header, where
			// there is nothing to recover (the close syncs, so that
			// window is wide).
			if past, _ := strconv.ParseUint(os.Getenv(pastEnv), 10, 64); past > 0 && n >= past {
				if err := w.Append(crashOp(i + 1)); err != nil {
					fmt.Println("error", err)
				}
				time.Sleep(time.Minute)
				return
			}
		}
	}
}

// crash runs the writer and kills it with SIGKILL once it has written
// past records, or once it tore a block in two; it returns the last
// sequence number it said was written.
func crash(t *testing.T, dir, keys string, torn bool, past uint64) uint64 {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), childEnv+"="+dir, keysEnv+"="+keys, pastEnv+"="+strconv.FormatUint(past, 10))
	if torn {
		cmd.Env = append(cmd.Env, tornEnv+"=1")
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Wait()
	defer cmd.Process.Kill()
	var written uint64
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		switch f[0] {
		case "error":
			t.Fatalf("the writer: %s", sc.Text())
		case "written":
			written, _ = strconv.ParseUint(f[1], 10, 64)
		case "torn":
		}
		if (torn && f[0] == "torn") || (!torn && written >= past) {
			if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
				t.Fatal(err)
			}
			cmd.Wait()
			return written
		}
	}
	t.Fatalf("the writer stopped before it was killed: %v", sc.Err())
	return 0
}

func testCrash(t *testing.T, torn bool) {
	dir := t.TempDir()
	keys := newKeyring(t)
	vk, err := CreateSeal(dir, DefaultSealEvery, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	written := crash(t, dir, keys, torn, 3000)
	kr := loadKeyring(t, keys)
	before := mustVerify(t, dir, VerifyOptions{})
	newest := before.Segments[len(before.Segments)-1]
	if torn && newest.Status != StatusTruncated {
		t.Fatalf("before the restart, the torn segment: %s", statusDetails(before))
	}

	// The restart: the torn tail is cut off and recorded, and writing
	// goes on in a new segment.
	w, err := Open(dir, Options{KeyFile: keys})
	if err != nil {
		t.Fatal(err)
	}
	after := crashOp(1 << 30)
	if err := w.Append(after); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	r := mustVerify(t, dir, VerifyOptions{VerifyKey: vk, Keyring: kr})
	if !r.OK {
		t.Fatalf("after the restart: %s", statusDetails(r))
	}
	crashed := r.Segments[len(r.Segments)-2]
	if len(crashed.Notes) == 0 || !strings.Contains(crashed.Notes[0], "a crash") || (torn && !strings.Contains(crashed.Notes[0], "torn bytes")) {
		t.Errorf("the crashed segment's notes: %q", crashed.Notes)
	}

	// Nothing the writer had written out is lost, and what is there is
	// what it wrote, in order, then what came after the restart.
	recs := readRecords(t, dir, kr)
	var ops []*flow.Operation
	var notes []string
	for i, rec := range recs {
		if rec.Seq != uint64(i+1) {
			t.Fatalf("record %d has sequence number %d", i+1, rec.Seq)
		}
		if rec.Op != nil {
			ops = append(ops, rec.Op)
		} else {
			notes = append(notes, rec.Note.Kind)
		}
	}
	last := ops[len(ops)-1]
	ops = ops[:len(ops)-1]
	if !bytes.Equal(exporter.AppendJSON(nil, last), exporter.AppendJSON(nil, after)) {
		t.Fatalf("the operation appended after the restart is not the last one read")
	}
	for i, op := range ops {
		if want := crashOp(i); !bytes.Equal(exporter.AppendJSON(nil, op), exporter.AppendJSON(nil, want)) {
			t.Fatalf("operation %d reads back as\n%s\nwant\n%s", i, exporter.AppendJSON(nil, op), exporter.AppendJSON(nil, want))
		}
	}
	// started, the operations, then recovered and started again.
	if strings.Join(notes, " ") != "started recovered started" {
		t.Errorf("notes %q, want the first start, the recovery and the second start", notes)
	}
	if got := uint64(len(ops)) + 1; got < written {
		t.Fatalf("the writer said it had written %d records; %d are left", written, got)
	}
	t.Logf("killed after it said %d records were written; %d are there (the block being filled is what was lost)", written, len(ops)+1)
}

func TestAKilledWriterLosesNothingItHadWritten(t *testing.T) { testCrash(t, false) }

func TestAKilledWriterMidBlockLosesOnlyThatBlock(t *testing.T) { testCrash(t, true) }
