package exporter

import (
	"context"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"
)

// OwnAddrs are the TCP addresses of icptrack's own connections and
// servers: OTLP exports and the Prometheus endpoint. icptrack never traces
// itself, but it may trace the process at the other end (a Collector or
// Jaeger on this host, a Prometheus scraping it); those operations are
// icptrack's own traffic seen from outside, and reporting them would feed
// every export back into the next. The pipeline leaves them out.
type OwnAddrs struct {
	mu  sync.Mutex
	set atomic.Pointer[map[netip.AddrPort]int]
}

// Add records an address (counting: the same one may be added twice).
func (o *OwnAddrs) Add(a netip.AddrPort) { o.update(a, 1) }

// Remove forgets an address added once.
func (o *OwnAddrs) Remove(a netip.AddrPort) { o.update(a, -1) }

func (o *OwnAddrs) update(a netip.AddrPort, d int) {
	a = netip.AddrPortFrom(a.Addr().Unmap(), a.Port())
	o.mu.Lock()
	defer o.mu.Unlock()
	next := map[netip.AddrPort]int{}
	if cur := o.set.Load(); cur != nil {
		for k, v := range *cur {
			next[k] = v
		}
	}
	if next[a] += d; next[a] <= 0 {
		delete(next, a)
	}
	o.set.Store(&next)
}

// Has reports whether a is one of icptrack's own addresses. It takes no
// lock: the capture path asks it for every TCP and UDP event.
func (o *OwnAddrs) Has(a netip.AddrPort) bool {
	if o == nil {
		return false
	}
	cur := o.set.Load()
	if cur == nil || len(*cur) == 0 {
		return false
	}
	_, ok := (*cur)[netip.AddrPortFrom(a.Addr().Unmap(), a.Port())]
	return ok
}

// AddListener records the address a server of icptrack's listens on. A
// wildcard address is recorded as the loopback addresses, which is where
// traffic that icptrack can see comes from.
func (o *OwnAddrs) AddListener(addr net.Addr) {
	for _, a := range listenerAddrs(o, addr) {
		o.Add(a)
	}
}

// RemoveListener forgets what AddListener recorded, once the server has
// closed the listener (a reload moved it).
func (o *OwnAddrs) RemoveListener(addr net.Addr) {
	for _, a := range listenerAddrs(o, addr) {
		o.Remove(a)
	}
}

func listenerAddrs(o *OwnAddrs, addr net.Addr) []netip.AddrPort {
	if o == nil {
		return nil
	}
	ap, ok := addrPort(addr)
	if !ok {
		return nil
	}
	if ap.Addr().IsUnspecified() {
		return []netip.AddrPort{netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), ap.Port()), netip.AddrPortFrom(netip.IPv6Loopback(), ap.Port())}
	}
	return []netip.AddrPort{ap}
}

// DialContext dials as net.Dialer does and records the connection's local
// address while it is open.
func (o *OwnAddrs) DialContext(ctx context.Context, network, address string) (net.Conn, error) {
	var d net.Dialer
	c, err := d.DialContext(ctx, network, address)
	if err != nil || o == nil {
		return c, err
	}
	ap, ok := addrPort(c.LocalAddr())
	if !ok {
		return c, nil
	}
	o.Add(ap)
	return &ownConn{Conn: c, own: o, addr: ap}, nil
}

type ownConn struct {
	net.Conn
	own  *OwnAddrs
	addr netip.AddrPort
	once sync.Once
}

// ownLinger is how long a closed connection's address is still icptrack's:
// the other end's last operations on it reach icptrack after the close.
const ownLinger = 10 * time.Second

func (c *ownConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(func() { time.AfterFunc(ownLinger, func() { c.own.Remove(c.addr) }) })
	return err
}

func addrPort(a net.Addr) (netip.AddrPort, bool) {
	switch v := a.(type) {
	case *net.TCPAddr:
		return v.AddrPort(), true
	case *net.UDPAddr:
		return v.AddrPort(), true
	}
	return netip.AddrPort{}, false
}
