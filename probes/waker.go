package probes

import (
	"errors"
	"fmt"
	"time"

	"golang.org/x/sys/unix"
)

// waker sleeps between drains of the ring buffer. The BPF programs submit
// records without waking anyone, except the one that makes the buffer a
// quarter full; that wake-up is an edge the waker catches. Plain epoll on
// a ring buffer is level-triggered: it reports ready whenever any data is
// waiting, which under steady traffic turns the reader into a loop that
// chases the producers record by record, bouncing the ring's cache lines
// between CPUs. Edge-triggered, it sleeps until the timer or the wake-up.
type waker struct {
	epfd, evfd int
	events     [2]unix.EpollEvent
}

func newWaker(ringFD int) (*waker, error) {
	epfd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("epoll: %w", err)
	}
	evfd, err := unix.Eventfd(0, unix.EFD_CLOEXEC|unix.EFD_NONBLOCK)
	if err != nil {
		unix.Close(epfd)
		return nil, fmt.Errorf("eventfd: %w", err)
	}
	w := &waker{epfd: epfd, evfd: evfd}
	for _, add := range []struct {
		fd     int
		events uint32
	}{{ringFD, unix.EPOLLIN | unix.EPOLLET}, {evfd, unix.EPOLLIN}} {
		ev := unix.EpollEvent{Events: add.events, Fd: int32(add.fd)}
		if err := unix.EpollCtl(epfd, unix.EPOLL_CTL_ADD, add.fd, &ev); err != nil {
			w.Close()
			return nil, fmt.Errorf("epoll_ctl: %w", err)
		}
	}
	return w, nil
}

// wait sleeps for d, or until the ring buffer fills up or interrupt.
func (w *waker) wait(d time.Duration) error {
	_, err := unix.EpollWait(w.epfd, w.events[:], int(d.Milliseconds()))
	if errors.Is(err, unix.EINTR) {
		return nil
	}
	return err
}

// interrupt ends the current or next wait at once.
func (w *waker) interrupt() {
	var one = [8]byte{1}
	_, _ = unix.Write(w.evfd, one[:])
}

func (w *waker) Close() {
	unix.Close(w.evfd)
	unix.Close(w.epfd)
}
