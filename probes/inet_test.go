package probes

import (
	"net/netip"
	"os"
	"strconv"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/icptrack/icptrack/flow"
)

// listenInet binds a loopback socket on a free port: listening for TCP,
// ready to receive for UDP.
func listenInet(t *testing.T, v6, tcp bool) (*os.File, netip.AddrPort) {
	t.Helper()
	family, typ := unix.AF_INET, unix.SOCK_DGRAM
	var sa unix.Sockaddr = &unix.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}
	if v6 {
		family, sa = unix.AF_INET6, &unix.SockaddrInet6{Addr: [16]byte{15: 1}}
	}
	if tcp {
		typ = unix.SOCK_STREAM
	}
	fd, err := unix.Socket(family, typ|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := unix.Bind(fd, sa); err != nil {
		t.Fatal(err)
	}
	if tcp {
		if err := unix.Listen(fd, 8); err != nil {
			t.Fatal(err)
		}
	}
	got, err := unix.Getsockname(fd)
	if err != nil {
		t.Fatal(err)
	}
	var ap netip.AddrPort
	switch a := got.(type) {
	case *unix.SockaddrInet4:
		ap = netip.AddrPortFrom(netip.AddrFrom4(a.Addr), uint16(a.Port))
	case *unix.SockaddrInet6:
		ap = netip.AddrPortFrom(netip.AddrFrom16(a.Addr), uint16(a.Port))
	}
	return os.NewFile(uintptr(fd), "inet"), ap
}

func TestLoopbackTCP(t *testing.T) {
	for _, v6 := range []bool{false, true} {
		t.Run(map[bool]string{false: "ipv4", true: "ipv6"}[v6], func(t *testing.T) {
			srv, addr := listenInet(t, v6, true)
			c := startCapture(t, DefaultConfig())
			typ := map[bool]string{false: "tcp", true: "tcp6"}[v6]
			port := strconv.Itoa(int(addr.Port()))
			rc := spawn(t, "accept", []*os.File{srv}, "3", strconv.Itoa(msgSize), "recvfrom")
			wc := spawn(t, "connect", nil, port, typ, strconv.Itoa(msgCount), strconv.Itoa(msgSize), "sendmsg")
			srv.Close()
			wait(t, wc, rc)
			ops := c.stop(t)
			sends, recvs := checkTransfer(t, ops, transfer{mech: flow.TCP, writer: wc.Process.Pid, reader: rc.Process.Pid,
				count: msgCount, size: msgSize, sendSyscall: "sendmsg", recvSyscall: "recvfrom", eof: true})
			// The endpoint reads from each end's side: local->remote.
			client := sends[0].Endpoint
			server := recvs[0].Endpoint
			if want := addr.String(); server[:len(want)] != want || client[len(client)-len(want):] != want {
				t.Errorf("endpoints %q (client) and %q (server), want the server's %s at the right ends", client, server, want)
			}
		})
	}
}

func TestLoopbackUDP(t *testing.T) {
	for _, v6 := range []bool{false, true} {
		for _, connected := range []bool{false, true} {
			name := map[bool]string{false: "ipv4", true: "ipv6"}[v6] + map[bool]string{false: "/sendto", true: "/connected"}[connected]
			t.Run(name, func(t *testing.T) {
				srv, addr := listenInet(t, v6, false)
				c := startCapture(t, DefaultConfig())
				typ := map[bool]string{false: "udp", true: "udp6"}[v6]
				port := strconv.Itoa(int(addr.Port()))
				rc := spawn(t, "read", []*os.File{srv}, "3", strconv.Itoa(msgSize), "recvmsg", strconv.Itoa(msgCount))
				srv.Close()
				count, size := strconv.Itoa(msgCount), strconv.Itoa(msgSize)
				send := "sendto"
				args := []string{port, typ, count, size}
				mode := "sendto"
				if connected {
					send, mode, args = "write", "connect", append(args, "write")
				}
				wc := spawn(t, mode, nil, args...)
				wait(t, wc, rc)
				ops := c.stop(t)
				checkTransfer(t, ops, transfer{mech: flow.UDP, writer: wc.Process.Pid, reader: rc.Process.Pid,
					count: msgCount, size: msgSize, sendSyscall: send, recvSyscall: "recvmsg"})
			})
		}
	}
}
