package replay

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"os"
	"strconv"
	"sync/atomic"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/icptrack/icptrack/flow"
)

// segment does a step on a shared-memory segment. The end's descriptor
// is the SysV segment's id, or the POSIX object's or memfd's descriptor.
func (r *runner) segment(e *endState, s *Step, deadline time.Time) error {
	switch s.Action {
	case Create:
		return r.createSegment(e)
	case Open:
		return r.openSegment(e, deadline)
	}
	if e.descriptor() < 0 && !(s.Action == Unlink && e.Mech == flow.POSIXShm) && !(s.Action == Detach) {
		// Opened before the capture began: opened now, at first use.
		if err := r.openSegment(e, deadline); err != nil {
			return err
		}
	}
	switch s.Action {
	case Unlink:
		if e.Mech == flow.SysVShm {
			_, err := unix.SysvShmCtl(e.descriptor(), unix.IPC_RMID, nil)
			return err
		}
		return unix.Unlink(shmDir + e.Name)
	case Attach:
		return e.attach(s.Bytes)
	case Detach:
		return e.detach()
	case Wake, Wait:
		word, err := e.word(s.Offset)
		if err != nil {
			return err
		}
		sleeping := sleepingFile(r.part.Dir, e.Channel, s.Offset, s.Seq)
		if s.Action == Wake {
			if s.Awaited {
				waitAsleep(sleeping, deadline)
			}
			return wake(word)
		}
		if int64(atomic.LoadUint32(word)) < s.Seq {
			_ = writeJSON(sleeping, [2]int{os.Getpid(), unix.Gettid()})
		}
		return wait(word, s.Seq, deadline)
	}
	return fmt.Errorf("%s is not something a stand-in does on shared memory", s.Action)
}

func (r *runner) createSegment(e *endState) error {
	var fd int
	var err error
	switch e.Mech {
	case flow.SysVShm:
		fd, err = unix.SysvShmGet(e.Key, int(e.MaxMsg), unix.IPC_CREAT|unix.IPC_EXCL|0o600)
	case flow.POSIXShm:
		fd, err = createSegment(shmDir+e.Name, e.MaxMsg)
	case flow.Memfd:
		fd, err = unix.MemfdCreate("icptrack-replay", unix.MFD_CLOEXEC)
		if err == nil {
			err = unix.Ftruncate(fd, e.MaxMsg)
		}
	}
	if err != nil {
		return err
	}
	e.setFD(fd)
	return writeJSON(madeFile(r.part.Dir, e.Channel), madeBy{PID: os.Getpid(), FD: fd})
}

func (r *runner) openSegment(e *endState, deadline time.Time) error {
	if err := r.waitMade(e, deadline); err != nil {
		return err
	}
	var fd int
	var err error
	switch e.Mech {
	case flow.SysVShm:
		fd, err = unix.SysvShmGet(e.Key, 0, 0)
	case flow.POSIXShm:
		fd, err = unix.Open(shmDir+e.Name, unix.O_RDWR|unix.O_CLOEXEC, 0)
	case flow.Memfd:
		if e.Existed {
			return errors.New("the replayer's memfd was not handed over")
		}
		// The capture's process had it from its parent; a stand-in
		// opens it where its creator holds it.
		var by madeBy
		if err := readJSON(madeFile(r.part.Dir, e.Channel), &by); err != nil {
			return err
		}
		fd, err = unix.Open("/proc/"+strconv.Itoa(by.PID)+"/fd/"+strconv.Itoa(by.FD), unix.O_RDWR|unix.O_CLOEXEC, 0)
	}
	if err != nil {
		return err
	}
	e.setFD(fd)
	return nil
}

// attach maps the segment (size bytes of it, or all of it when 0).
func (e *endState) attach(size int64) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	var mem []byte
	var err error
	if e.Mech == flow.SysVShm {
		mem, err = unix.SysvShmAttach(e.fd, 0, 0)
	} else {
		if size <= 0 {
			size = e.MaxMsg
		}
		mem, err = unix.Mmap(e.fd, 0, int(size), unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
	}
	if err != nil {
		return err
	}
	e.maps = append(e.maps, mem)
	return nil
}

// detach unmaps the latest mapping.
func (e *endState) detach() error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if len(e.maps) == 0 {
		return errors.New("nothing of the segment is attached")
	}
	mem := e.maps[len(e.maps)-1]
	e.maps = e.maps[:len(e.maps)-1]
	if e.Mech == flow.SysVShm {
		return unix.SysvShmDetach(mem)
	}
	return unix.Munmap(mem)
}

// word is the futex word at offset in the latest mapping, attaching the
// segment first if the capture began after it was.
func (e *endState) word(offset int64) (*uint32, error) {
	e.mu.Lock()
	n := len(e.maps)
	e.mu.Unlock()
	if n == 0 {
		if err := e.attach(0); err != nil {
			return nil, err
		}
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	mem := e.maps[len(e.maps)-1]
	if offset < 0 || offset+4 > int64(len(mem)) || offset%4 != 0 {
		return nil, fmt.Errorf("a futex word at %#x is outside the %d bytes mapped", offset, len(mem))
	}
	return (*uint32)(unsafe.Pointer(&mem[offset])), nil
}

// The futex commands, shared between processes (no FUTEX_PRIVATE_FLAG).
const (
	futexWait = 0
	futexWake = 1
)

// wake counts one more wake in the word and wakes its waiters.
func wake(word *uint32) error {
	atomic.AddUint32(word, 1)
	_, _, e := unix.Syscall6(unix.SYS_FUTEX, uintptr(unsafe.Pointer(word)), futexWake, math.MaxInt32, 0, 0, 0)
	if e != 0 {
		return e
	}
	return nil
}

// waitAsleep waits until the thread that said, in file sleeping, that it
// would wait is asleep: in the capture, the wait began before the wake,
// which the original programs made sure of through memory that is not
// re-enacted. It gives up at the deadline, or 100ms after the waiter
// said so if its thread is never seen asleep.
func waitAsleep(sleeping string, deadline time.Time) {
	if waitFor(sleeping, time.Until(deadline)) != nil {
		return
	}
	var who [2]int
	if readJSON(sleeping, &who) != nil {
		return
	}
	stat := "/proc/" + strconv.Itoa(who[0]) + "/task/" + strconv.Itoa(who[1]) + "/stat"
	for end := time.Now().Add(100 * time.Millisecond); time.Now().Before(end); time.Sleep(20 * time.Microsecond) {
		b, err := os.ReadFile(stat)
		if err != nil {
			return
		}
		// The state follows the command name in parentheses.
		if i := bytes.LastIndexByte(b, ')'); i >= 0 && i+2 < len(b) && b[i+2] == 'S' {
			return
		}
	}
}

// wait waits until the word has counted seq wakes. A waiter that comes
// after its wake makes its one call all the same, and is told at once
// (EAGAIN) that the word moved on, as a late waiter in the capture would
// have been.
func wait(word *uint32, seq int64, deadline time.Time) error {
	for first := true; ; first = false {
		v := atomic.LoadUint32(word)
		if int64(v) >= seq && !first {
			return nil
		}
		expect := v
		if int64(v) >= seq {
			expect = v + 1
		}
		left := time.Until(deadline)
		if left <= 0 {
			return errTimedOut
		}
		ts := unix.NsecToTimespec(int64(left))
		_, _, e := unix.Syscall6(unix.SYS_FUTEX, uintptr(unsafe.Pointer(word)), futexWait, uintptr(expect),
			uintptr(unsafe.Pointer(&ts)), 0, 0)
		if e == unix.ETIMEDOUT {
			return errTimedOut
		}
		if int64(atomic.LoadUint32(word)) >= seq {
			return nil
		}
	}
}
