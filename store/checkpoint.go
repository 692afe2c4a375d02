package store

import (
	"bufio"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"
)

// Checkpoint is where the chain stood at a seal or a closed segment:
// sent off the host (syslog, OTLP logs), it later shows whether the
// store still holds what it held then. Only such a copy catches the
// removal of the newest segments, which nothing after them names.
type Checkpoint struct {
	LogID   [16]byte
	Segment uint64
	Block   uint64
	// Seq is the sequence number of the last record up to this block.
	Seq uint64
	// Hash is the block's SHA-256 as written.
	Hash [hashSize]byte
	Time time.Time
	// Sealed: the block is a seal (or a sealed closing block) of Epoch,
	// with the HMAC Seal.
	Sealed bool
	Epoch  uint64
	Seal   [hashSize]byte
}

const checkpointTag = "icptrack-checkpoint v1"

// String is the checkpoint as one line of text, found again by
// ParseCheckpoints wherever it sits in a line (a syslog message, a log
// record's body):
//
//	icptrack-checkpoint v1 log=… segment=N block=N seq=N hash=… time=RFC3339 [epoch=N seal=…]
func (c Checkpoint) String() string {
	s := fmt.Sprintf("%s log=%x segment=%d block=%d seq=%d hash=%x time=%s",
		checkpointTag, c.LogID, c.Segment, c.Block, c.Seq, c.Hash, c.Time.UTC().Format(time.RFC3339Nano))
	if c.Sealed {
		s += fmt.Sprintf(" epoch=%d seal=%x", c.Epoch, c.Seal)
	}
	return s
}

// MarshalText makes a checkpoint JSON as its line.
func (c Checkpoint) MarshalText() ([]byte, error) { return []byte(c.String()), nil }

// ParseCheckpoint reads one checkpoint from the text after its tag.
func ParseCheckpoint(line string) (Checkpoint, error) {
	var c Checkpoint
	_, rest, ok := strings.Cut(line, checkpointTag)
	if !ok {
		return c, fmt.Errorf("no %q in it", checkpointTag)
	}
	seen := map[string]bool{}
	for _, f := range strings.Fields(rest) {
		k, v, ok := strings.Cut(f, "=")
		if !ok {
			break // the end of the checkpoint in a longer line
		}
		var err error
		switch k {
		case "log":
			err = hexInto(c.LogID[:], v)
		case "segment":
			c.Segment, err = strconv.ParseUint(v, 10, 64)
		case "block":
			c.Block, err = strconv.ParseUint(v, 10, 64)
		case "seq":
			c.Seq, err = strconv.ParseUint(v, 10, 64)
		case "hash":
			err = hexInto(c.Hash[:], v)
		case "time":
			c.Time, err = time.Parse(time.RFC3339Nano, strings.TrimRight(v, `",}`))
		case "epoch":
			c.Epoch, err = strconv.ParseUint(v, 10, 64)
			c.Sealed = true
		case "seal":
			err = hexInto(c.Seal[:], strings.TrimRight(v, `",}`))
		default:
			continue
		}
		if err != nil {
			return c, fmt.Errorf("%s=%s: %v", k, v, err)
		}
		seen[k] = true
	}
	for _, k := range []string{"log", "segment", "block", "seq", "hash"} {
		if !seen[k] {
			return c, fmt.Errorf("it has no %s", k)
		}
	}
	return c, nil
}

func hexInto(dst []byte, s string) error {
	b, err := hex.DecodeString(s)
	if err != nil || len(b) != len(dst) {
		return fmt.Errorf("want %d hex digits", 2*len(dst))
	}
	copy(dst, b)
	return nil
}

// ReadCheckpoints reads every checkpoint in a file of lines (a syslog
// file, an export of log records, or lines of String): lines without one
// are skipped; a damaged one is an error naming its line.
func ReadCheckpoints(path string) ([]Checkpoint, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("checkpoints: %w", err)
	}
	defer f.Close()
	cs, err := parseCheckpoints(f, path)
	if err == nil && len(cs) == 0 {
		err = fmt.Errorf("checkpoints: %s has no line with %q in it: give the file icptrack's checkpoints were sent to", path, checkpointTag)
	}
	return cs, err
}

func parseCheckpoints(r io.Reader, name string) ([]Checkpoint, error) {
	var out []Checkpoint
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		if !strings.Contains(line, checkpointTag) {
			continue
		}
		c, err := ParseCheckpoint(line)
		if err != nil {
			return nil, fmt.Errorf("checkpoints: %s:%d: %v", name, n, err)
		}
		out = append(out, c)
	}
	return out, sc.Err()
}

// checkCheckpoints compares each checkpoint with the block it names.
func (v *verifier) checkCheckpoints() {
	present := map[uint64]bool{}
	for _, s := range v.report.Segments {
		present[s.Segment] = true
	}
	for _, c := range v.o.Checkpoints {
		r := CheckpointResult{Checkpoint: c, Status: StatusPass}
		if v.haveLog && c.LogID != v.logID {
			v.keyErr(fmt.Errorf("the checkpoints are of store %x, and %s is store %x: give the checkpoints sent from this store", c.LogID, v.dir, v.logID))
			return
		}
		mark, found := v.hashes[[2]uint64{c.Segment, c.Block}]
		switch {
		case found && mark.Hash != c.Hash:
			r.Status, r.Detail = StatusModified, fmt.Sprintf("block %d of segment %d is not the block it was when checkpointed", c.Block, c.Segment)
		case found && mark.NextSeq != c.Seq+1:
			r.Status, r.Detail = StatusModified, fmt.Sprintf("block %d of segment %d ends at record %d, and it ended at %d", c.Block, c.Segment, mark.NextSeq-1, c.Seq)
		case found:
		case !present[c.Segment] && c.Segment < v.firstKept:
			r.Status, r.Detail = "expired", fmt.Sprintf("segment %d has expired", c.Segment)
		case !present[c.Segment]:
			r.Status, r.Detail = StatusMissing, fmt.Sprintf("segment %d, which held record %d at %s, is gone", c.Segment, c.Seq, c.Time.UTC().Format(time.RFC3339))
		default:
			r.Status, r.Detail = StatusTruncated, fmt.Sprintf("segment %d no longer has block %d, which held record %d at %s (or the segment could not be read that far)", c.Segment, c.Block, c.Seq, c.Time.UTC().Format(time.RFC3339))
		}
		v.report.Checkpoints = append(v.report.Checkpoints, r)
	}
}
