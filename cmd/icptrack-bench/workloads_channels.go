package main

import (
	"fmt"
	"strconv"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/icptrack/icptrack/internal/ipcload"
)

// Flow control of the channels workload: the reader acknowledges every
// ackEvery messages over one pipe, and the writer stays at most window
// messages ahead, whatever the number of channels, so that 10 and 10,000
// channels hold the same number of messages in flight.
const (
	ackEvery = 100
	window   = 2 * ackEvery
)

// passBatch is how many descriptors go in one SCM_RIGHTS message (the
// kernel takes up to 253).
const passBatch = 250

// channels opens nch channels at once, alternately a pipe and a unix
// stream socketpair, hands their reading ends to a reader, and sends msgs
// 64-byte messages over them in turn, round-robin. The reading ends go
// over a seqpacket socket (SCM_RIGHTS) a batch at a time, so that neither
// process holds much more than nch descriptors: the hard limit may be too
// low for 2*nch, and not even root may raise it in a container.
func channels(msgs, nch int) error {
	if nch < 1 {
		return fmt.Errorf("channels: want a number of channels, got %d", nch)
	}
	if err := raiseNoFile(nch + passBatch + 64); err != nil {
		return err
	}
	ctl, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return err
	}
	ackR, ackW, err := pipe()
	if err != nil {
		return err
	}
	peer, err := partner("channels-reader", []string{strconv.Itoa(msgs), strconv.Itoa(nch)}, ctl[1], ackW)
	if err != nil {
		return err
	}
	writers := make([]int, 0, nch)
	for len(writers) < nch {
		readers := make([]int, 0, passBatch)
		for i := len(writers); i < nch && len(readers) < passBatch; i++ {
			r, w, err := openChannel(i)
			if err != nil {
				return fmt.Errorf("opening channel %d of %d: %w", i+1, nch, err)
			}
			readers, writers = append(readers, r), append(writers, w)
		}
		if err := unix.Sendmsg(ctl[0], []byte{0}, unix.UnixRights(readers...), nil, 0); err != nil {
			return fmt.Errorf("passing channels to the reader: %w", err)
		}
		for _, r := range readers {
			unix.Close(r)
		}
	}
	ack := make([]byte, 1)
	if err := ipcload.ReadFull(ackR, ack); err != nil { // the reader has them all
		return fmt.Errorf("waiting for the reader: %w", err)
	}
	acks := (msgs + ackEvery - 1) / ackEvery
	acked := 0
	buf := make([]byte, msgSize)
	start := time.Now()
	for k := range msgs {
		for k >= acked*ackEvery+window {
			if err := ipcload.ReadFull(ackR, ack); err != nil {
				return err
			}
			acked++
		}
		if err := writeFull(writers[k%nch], buf); err != nil {
			return err
		}
	}
	for ; acked < acks; acked++ {
		if err := ipcload.ReadFull(ackR, ack); err != nil {
			return err
		}
	}
	elapsed := time.Since(start)
	if err := peer.Wait(); err != nil {
		return err
	}
	return report(msgs, elapsed, nil)
}

// openChannel opens channel i: a pipe when i is even, else a unix stream
// socketpair.
func openChannel(i int) (r, w int, err error) {
	if i%2 == 0 {
		return pipe()
	}
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	return fds[1], fds[0], err
}

// channelsReader receives nch channels on fd 3, then reads msgs messages
// from them in the writer's order, acknowledging on fd 4.
func channelsReader(msgs, nch int) error {
	const ctlFd, ackFd = 3, 4
	chans := make([]int, 0, nch)
	oob := make([]byte, unix.CmsgSpace(passBatch*4))
	for len(chans) < nch {
		_, oobn, _, _, err := unix.Recvmsg(ctlFd, make([]byte, 1), oob, unix.MSG_CMSG_CLOEXEC)
		if err != nil {
			return fmt.Errorf("receiving channels: %w", err)
		}
		cmsgs, err := unix.ParseSocketControlMessage(oob[:oobn])
		if err != nil || len(cmsgs) == 0 {
			return fmt.Errorf("receiving channels: no descriptors after %d of %d (%v)", len(chans), nch, err)
		}
		for _, m := range cmsgs {
			fds, err := unix.ParseUnixRights(&m)
			if err != nil {
				return err
			}
			chans = append(chans, fds...)
		}
	}
	ack := []byte{1}
	if err := writeFull(ackFd, ack); err != nil {
		return err
	}
	buf := make([]byte, msgSize)
	for k := range msgs {
		if err := ipcload.ReadFull(chans[k%nch], buf); err != nil {
			return fmt.Errorf("channel %d: %w", k%nch, err)
		}
		if (k+1)%ackEvery == 0 || k+1 == msgs {
			if err := writeFull(ackFd, ack); err != nil {
				return err
			}
		}
	}
	return nil
}

// raiseNoFile raises the open-file limit to at least n, the hard limit
// too if need be and allowed (CAP_SYS_RESOURCE). Partners inherit it.
func raiseNoFile(n int) error {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return err
	}
	if lim.Cur >= uint64(n) {
		return nil
	}
	lim.Cur, lim.Max = uint64(n), max(lim.Max, uint64(n))
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return fmt.Errorf("raising the open-file limit to %d: %w (raise the hard limit, ulimit -Hn, or run with CAP_SYS_RESOURCE)", n, err)
	}
	return nil
}
