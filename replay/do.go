package replay

import (
	"errors"
	"fmt"
	"os"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/icptrack/icptrack/flow"
)

// do makes call number call of step s, moving n bytes.
func (r *runner) do(s *Step, call int, n int64, deadline time.Time) error {
	if s.Action == Kill {
		pid, ok := r.pids[s.Target]
		if !ok {
			return fmt.Errorf("no stand-in plays pid %d", s.Target)
		}
		return unix.Kill(pid, syscall.Signal(s.Signal))
	}
	e := r.ends[s.Channel]
	if e == nil {
		return fmt.Errorf("channel %d is not this stand-in's", s.Channel)
	}
	switch e.Mech {
	case flow.POSIXMQ:
		return r.posixQueue(e, s, call, n, deadline)
	case flow.SysVMQ:
		return r.sysvQueue(e, s, call, n, deadline)
	case flow.SysVShm, flow.POSIXShm, flow.Memfd:
		return r.segment(e, s, deadline)
	}
	fd := e.descriptor()
	if fd < 0 {
		return errors.New("this stand-in already gave up its end")
	}
	switch s.Action {
	case Send:
		return writeAll(fd, payload(s, call, n))
	case Receive:
		if e.Mech.Stream() {
			return readStream(fd, make([]byte, n), deadline)
		}
		got, err := readMessage(fd, make([]byte, max(n, e.MaxMsg)+1), deadline)
		return sameSize(got, n, err)
	case EndOfFile:
		return readEnd(fd, deadline)
	}
	return fmt.Errorf("%s on %s is not something a stand-in does", s.Action, e.Mech)
}

func (e *endState) descriptor() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.fd
}

// sameSize checks that a message was as large as the captured one.
func sameSize(got int, want int64, err error) error {
	if err == nil && int64(got) != want {
		return fmt.Errorf("got a message of %d bytes, the capture's had %d", got, want)
	}
	return err
}

// payload is what call number call of a send writes: the captured bytes
// when the capture has them (they are the first call's), then generated
// ones.
func payload(s *Step, call int, n int64) []byte {
	b := make([]byte, n)
	i := 0
	if call == 0 {
		i = copy(b, s.Payload)
	}
	for ; i < len(b); i++ {
		b[i] = 'a' + byte(i%26)
	}
	return b
}

// posixQueue does a step on a POSIX message queue.
func (r *runner) posixQueue(e *endState, s *Step, call int, n int64, deadline time.Time) error {
	switch s.Action {
	case Create:
		fd, err := mqOpen(e.Name, unix.O_RDWR|unix.O_CREAT|unix.O_EXCL, e.Depth, e.MaxMsg)
		if err != nil {
			return err
		}
		e.setFD(fd)
		return markMade(r.part.Dir, e.Channel)
	case Open:
		return r.openPOSIX(e, deadline)
	case Unlink:
		return mqUnlink(e.Name)
	}
	if e.descriptor() < 0 {
		// Opened before the capture began: opened now, at first use.
		if err := r.openPOSIX(e, deadline); err != nil {
			return err
		}
	}
	switch s.Action {
	case Send:
		return mqSend(e.descriptor(), payload(s, call, n), s.Type, deadline)
	case Receive:
		got, err := mqReceive(e.descriptor(), make([]byte, max(e.MaxMsg, 1)), deadline)
		return sameSize(got, n, err)
	}
	return fmt.Errorf("%s is not something a stand-in does on a queue", s.Action)
}

func (r *runner) openPOSIX(e *endState, deadline time.Time) error {
	if err := r.waitMade(e, deadline); err != nil {
		return err
	}
	fd, err := mqOpen(e.Name, unix.O_RDWR, 0, 0)
	if err != nil {
		return err
	}
	e.setFD(fd)
	return nil
}

// sysvQueue does a step on a SysV message queue; the end's descriptor is
// the queue's id.
func (r *runner) sysvQueue(e *endState, s *Step, call int, n int64, deadline time.Time) error {
	switch s.Action {
	case Create:
		id, err := msgGet(e.Key, unix.IPC_CREAT|unix.IPC_EXCL|0o600)
		if err != nil {
			return err
		}
		e.setFD(id)
		return markMade(r.part.Dir, e.Channel)
	case Open:
		return r.openSysV(e, deadline)
	}
	if e.descriptor() < 0 {
		if err := r.openSysV(e, deadline); err != nil {
			return err
		}
	}
	id := e.descriptor()
	switch s.Action {
	case Unlink:
		return msgRemove(id)
	case Send:
		mtype := s.Type
		if mtype <= 0 {
			mtype = 1 // msgsnd needs a positive type
		}
		return msgSend(id, mtype, payload(s, call, n), make([]byte, 8+n))
	case Receive:
		got, err := msgReceive(id, s.Type, make([]byte, 8+max(e.MaxMsg, 1)))
		return sameSize(got, n, err)
	}
	return fmt.Errorf("%s is not something a stand-in does on a queue", s.Action)
}

func (r *runner) openSysV(e *endState, deadline time.Time) error {
	if err := r.waitMade(e, deadline); err != nil {
		return err
	}
	id, err := msgGet(e.Key, 0)
	if err != nil {
		return err
	}
	e.setFD(id)
	return nil
}

// waitMade waits until the stand-in that creates the queue has made it.
func (r *runner) waitMade(e *endState, deadline time.Time) error {
	if e.Existed {
		return nil
	}
	return waitFor(madeFile(r.part.Dir, e.Channel), time.Until(deadline))
}

// madeBy says who made a queue or segment; for a memfd, where others
// find it (/proc/PID/fd/FD).
type madeBy struct {
	PID, FD int
}

func markMade(dir string, channel int) error {
	return writeJSON(madeFile(dir, channel), madeBy{PID: os.Getpid()})
}

func (e *endState) setFD(fd int) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.fd >= 0 && e.Mech != flow.SysVMQ && e.Mech != flow.SysVShm {
		_ = unix.Close(e.fd)
	}
	e.fd = fd
}
