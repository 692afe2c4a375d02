package syslog

import (
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"
)

// Transports, as the URL's scheme names them.
const (
	Unix = "unix"
	UDP  = "udp"
	TCP  = "tcp"
	TLS  = "tls"
)

// Target is where messages go: a parsed --syslog URL.
type Target struct {
	// Transport is unix, udp, tcp or tls.
	Transport string
	// Address is host:port, or the socket's path for unix.
	Address string
	// Host is the host a TLS server's certificate must name.
	Host string
}

// String is the target as a URL.
func (t Target) String() string {
	if t.Transport == Unix {
		return "unix://" + t.Address
	}
	return t.Transport + "://" + t.Address
}

// Stream reports whether messages go over a byte stream (and so are
// framed with their length, RFC 5425 octet counting). A unix socket is
// known only once it is dialled.
func (t Target) Stream() bool { return t.Transport == TCP || t.Transport == TLS }

const urlForms = "unix:///dev/log, udp://host:514, tcp://host:514 or tls://host:6514"

// ParseURL reads a --syslog URL.
func ParseURL(s string) (Target, error) {
	scheme, rest, ok := strings.Cut(s, "://")
	if !ok {
		return Target{}, fmt.Errorf("%q is not a syslog URL: use %s", s, urlForms)
	}
	switch scheme {
	case Unix:
		if !strings.HasPrefix(rest, "/") {
			return Target{}, fmt.Errorf("%q names no absolute socket path: use unix:///dev/log (three slashes)", s)
		}
		return Target{Transport: Unix, Address: rest}, nil
	case UDP, TCP, TLS:
	default:
		return Target{}, fmt.Errorf("%q has transport %q: use %s", s, scheme, urlForms)
	}
	u, err := url.Parse(s)
	if err != nil || u.Host == "" || (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.User != nil {
		return Target{}, fmt.Errorf("%q is not %s://host:port: use %s", s, scheme, urlForms)
	}
	host, port, err := net.SplitHostPort(u.Host)
	if err != nil || host == "" {
		return Target{}, fmt.Errorf("%q needs a host and a port, such as %s://127.0.0.1:%s", s, scheme, defaultPort(scheme))
	}
	if p, err := strconv.Atoi(port); err != nil || p <= 0 || p > 65535 {
		return Target{}, fmt.Errorf("%q has no valid port: use 1 to 65535, such as %s", s, defaultPort(scheme))
	}
	return Target{Transport: scheme, Address: net.JoinHostPort(host, port), Host: host}, nil
}

// defaultPort is the port IANA gave the transport: 514 for syslog over
// UDP (RFC 5426) and, by custom, TCP; 6514 for TLS (RFC 5425).
func defaultPort(scheme string) string {
	if scheme == TLS {
		return "6514"
	}
	return "514"
}
