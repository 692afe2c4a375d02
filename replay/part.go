package replay

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/icptrack/icptrack/flow"
)

// The re-enactment's directory holds what the replayer and its stand-ins
// tell each other. Files, not pipes or signals: icptrack does not trace
// files, so a trace of the re-enactment shows the re-enacted IPC only.
const (
	partEnv  = "ICPTRACK_REPLAY_PART" // the stand-in's part file
	goFile   = "go.json"              // when to start, and who is who
	stopFile = "stop"                 // every stand-in is done
)

func readyFile(dir string, pid uint32) string {
	return filepath.Join(dir, "ready-"+strconv.FormatUint(uint64(pid), 10))
}

func doneFile(dir string, pid uint32) string {
	return filepath.Join(dir, "done-"+strconv.FormatUint(uint64(pid), 10))
}

func resultFile(dir string, pid uint32) string {
	return filepath.Join(dir, "result-"+strconv.FormatUint(uint64(pid), 10)+".json")
}

// madeFile marks a queue or segment that its creator has made, for
// those that open it: they wait for it rather than fail and retry, which
// a trace of the re-enactment would show. A memfd's says where to find it.
func madeFile(dir string, channel int) string {
	return filepath.Join(dir, "made-"+strconv.Itoa(channel))
}

// sleepingFile is where a stand-in about to wait on a futex word says
// which thread will sleep there, for the stand-in whose wake released
// that wait in the capture.
func sleepingFile(dir string, channel int, offset, seq int64) string {
	return filepath.Join(dir, fmt.Sprintf("sleeping-%d-%x-%d", channel, offset, seq))
}

// part is what one stand-in is told: its steps, and the channel ends it
// was given as file descriptors.
type part struct {
	PID     uint32
	Comm    string
	Dir     string
	Speed   float64
	Grace   time.Duration
	Threads []*Thread
	Ends    []partEnd
	Signals []int
	// Deliveries are the signals the capture saw it receive.
	Deliveries int
}

// partEnd is a channel end: a descriptor the stand-in was started with,
// or a queue it opens itself.
type partEnd struct {
	Channel int
	Role    Role
	Mech    flow.Mechanism
	FD      int `json:",omitempty"`
	// Shared: another stand-in holds the same end, so it is closed
	// rather than shut down when this one is done with it.
	Shared bool `json:",omitempty"`
	// Name is a POSIX queue's or segment's name, Key a SysV one's.
	Name string `json:",omitempty"`
	Key  int    `json:",omitempty"`
	// MaxMsg is a queue's largest message or a segment's size; Depth
	// the messages a POSIX queue holds.
	MaxMsg int64 `json:",omitempty"`
	Depth  int64 `json:",omitempty"`
	// Existed: the replayer made the queue or segment, so an open need
	// not wait for a creator.
	Existed bool `json:",omitempty"`
}

// goSignal is what the replayer tells every stand-in once all are ready.
type goSignal struct {
	// Start is when step time 0 is, in Unix nanoseconds.
	Start int64
	// PIDs maps the capture's pids to the stand-ins'.
	PIDs map[uint32]int
}

// standInResult is what a stand-in did, for the summary.
type standInResult struct {
	PID uint32
	// Done counts calls and bytes per mechanism and action.
	Done []doneCount
	// Failures are steps that did not go as in the capture.
	Failures []failure
	// First and Last are when the first step began and the last ended,
	// in Unix nanoseconds; Late is the most a step started behind its
	// time.
	First, Last int64
	Late        time.Duration
	Signals     int
	// Stalled names the steps each thread was in when it was stopped.
	Stalled []string `json:",omitempty"`
}

type doneCount struct {
	Mech   flow.Mechanism
	Action Action
	Calls  int64
	Bytes  int64
}

type failure struct {
	Op  flow.OpID
	Err string
}

func writeJSON(path string, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	// Written whole, then renamed, so that a reader never sees half.
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

func readJSON(path string, v any) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("%s: %v", path, err)
	}
	return nil
}

// exists reports whether path exists.
func exists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}
