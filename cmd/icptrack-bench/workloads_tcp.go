package main

import (
	"fmt"

	"golang.org/x/sys/unix"
)

var loopback = [4]byte{127, 0, 0, 1}

// tcpPingPong listens on an ephemeral loopback port, hands the listening
// socket to the echo partner, and connects to it.
func tcpPingPong(n int) error {
	l, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return err
	}
	if err := unix.Bind(l, &unix.SockaddrInet4{Addr: loopback}); err != nil {
		return fmt.Errorf("binding 127.0.0.1:0: %w", err)
	}
	if err := unix.Listen(l, 1); err != nil {
		return err
	}
	addr, err := unix.Getsockname(l)
	if err != nil {
		return err
	}
	peer, err := partner("tcp-echo", count(n), l)
	if err != nil {
		return err
	}
	c, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return err
	}
	if err := noDelay(c); err != nil {
		return err
	}
	if err := unix.Connect(c, addr); err != nil {
		return fmt.Errorf("connecting to the echo partner on 127.0.0.1: %w", err)
	}
	return pingPong(fdConn{in: c, out: c}, n, peer)
}

// tcpEcho accepts one connection on the listening socket l and echoes.
func tcpEcho(l, n int) error {
	c, _, err := unix.Accept4(l, unix.SOCK_CLOEXEC)
	if err != nil {
		return err
	}
	unix.Close(l)
	if err := noDelay(c); err != nil {
		return err
	}
	return echo(fdConn{in: c, out: c}, n)
}

func noDelay(fd int) error {
	return unix.SetsockoptInt(fd, unix.IPPROTO_TCP, unix.TCP_NODELAY, 1)
}
