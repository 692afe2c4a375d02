package syslog

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"syscall"
	"time"
)

// conn is one connection to the server.
type conn struct {
	c net.Conn
	// stream: messages are framed with their length (RFC 5425, RFC 6587
	// octet counting); else each is one datagram.
	stream bool
	// closed is closed when the server closed a stream: a syslog server
	// never sends, so any end of reading means the connection is gone,
	// and icptrack learns it before its next write rather than after.
	closed chan struct{}
	buf    []byte
}

// write sends one encoded message, framed for the transport.
func (c *conn) write(msg []byte, timeout time.Duration) error {
	select {
	case <-c.closed:
		return errors.New("the server closed the connection")
	default:
	}
	out := msg
	if c.stream {
		c.buf = strconv.AppendInt(c.buf[:0], int64(len(msg)), 10)
		c.buf = append(c.buf, ' ')
		c.buf = append(c.buf, msg...)
		out = c.buf
	}
	if err := c.c.SetWriteDeadline(time.Now().Add(timeout)); err != nil {
		return err
	}
	_, err := c.c.Write(out)
	return err
}

func (c *conn) close() { c.c.Close() }

// watch reads the stream until it ends, to learn when the server goes.
func (c *conn) watch() {
	defer close(c.closed)
	buf := make([]byte, 512)
	for {
		if _, err := c.c.Read(buf); err != nil {
			return
		}
	}
}

// dialer opens connections to one target.
type dialer struct {
	target  Target
	tls     *tls.Config // for tls://
	dial    func(ctx context.Context, network, address string) (net.Conn, error)
	timeout time.Duration
}

func (d *dialer) connect(ctx context.Context) (*conn, error) {
	ctx, cancel := context.WithTimeout(ctx, d.timeout)
	defer cancel()
	var c *conn
	switch d.target.Transport {
	case Unix:
		// /dev/log is a datagram socket under rsyslog and journald; a
		// stream one (syslog-ng's unix-stream) refuses a datagram
		// connect with EPROTOTYPE.
		var nd net.Dialer
		nc, err := nd.DialContext(ctx, "unixgram", d.target.Address)
		if errors.Is(err, syscall.EPROTOTYPE) {
			nc, err = nd.DialContext(ctx, "unix", d.target.Address)
			if err == nil {
				c = &conn{c: nc, stream: true}
			}
		} else if err == nil {
			c = &conn{c: nc}
		}
		if err != nil {
			return nil, d.explain(err)
		}
	case UDP:
		nc, err := d.dial(ctx, "udp", d.target.Address)
		if err != nil {
			return nil, d.explain(err)
		}
		c = &conn{c: nc}
	case TCP, TLS:
		nc, err := d.dial(ctx, "tcp", d.target.Address)
		if err != nil {
			return nil, d.explain(err)
		}
		if d.target.Transport == TLS {
			tc := tls.Client(nc, d.tls)
			if err := tc.HandshakeContext(ctx); err != nil {
				nc.Close()
				return nil, d.explain(err)
			}
			nc = tc
		}
		c = &conn{c: nc, stream: true}
	default:
		return nil, fmt.Errorf("syslog %s: unknown transport", d.target)
	}
	if c.stream {
		c.closed = make(chan struct{})
		go c.watch()
	}
	return c, nil
}

// CertificateError is a TLS server that icptrack does not trust: a
// mistake in the settings or an impostor, not an outage, so icptrack
// refuses to start rather than retry.
type CertificateError struct {
	Target Target
	Err    error
	Hint   string
}

func (e *CertificateError) Error() string {
	return fmt.Sprintf("syslog %s: the server's certificate was refused: %v: %s", e.Target, e.Err, e.Hint)
}

func (e *CertificateError) Unwrap() error { return e.Err }

// explain says what a failed connection means and what to do.
func (d *dialer) explain(err error) error {
	var unknown x509.UnknownAuthorityError
	var host x509.HostnameError
	var invalid x509.CertificateInvalidError
	switch {
	case errors.As(err, &unknown):
		return &CertificateError{d.target, err, "give the CA that signed it in syslog.ca_file"}
	case errors.As(err, &host):
		return &CertificateError{d.target, err, "connect by a name the certificate holds, or give the server a certificate for " + d.target.Host}
	case errors.As(err, &invalid):
		return &CertificateError{d.target, err, "the certificate has expired, is not yet valid, or is not for a server"}
	case d.target.Transport == TLS && (errors.Is(err, context.DeadlineExceeded) || isRecordHeaderError(err)):
		return fmt.Errorf("syslog %s: no TLS handshake: %v: is the server speaking TLS on this port?", d.target, err)
	case errors.Is(err, os.ErrNotExist):
		return fmt.Errorf("syslog %s: no socket there: %v: is the syslog daemon running?", d.target, err)
	case errors.Is(err, syscall.ECONNREFUSED):
		return fmt.Errorf("syslog %s: connection refused: is the server running and listening there?", d.target)
	}
	return fmt.Errorf("syslog %s: %w", d.target, err)
}

func isRecordHeaderError(err error) bool {
	var rh tls.RecordHeaderError
	return errors.As(err, &rh)
}

// tlsConfig checks the server against ca_file (or the system's roots)
// and the URL's host, and presents cert_file and key_file if given.
func tlsConfig(host, caFile, certFile, keyFile string) (*tls.Config, error) {
	c := &tls.Config{ServerName: host, MinVersion: tls.VersionTLS12}
	if caFile != "" {
		pem, err := os.ReadFile(caFile)
		if err != nil {
			return nil, fmt.Errorf("syslog.ca_file: %v", err)
		}
		c.RootCAs = x509.NewCertPool()
		if !c.RootCAs.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("syslog.ca_file: %s holds no PEM certificate", caFile)
		}
	}
	if (certFile == "") != (keyFile == "") {
		return nil, errors.New("syslog.cert_file and syslog.key_file go together: give both, or neither")
	}
	if certFile != "" {
		cert, err := tls.LoadX509KeyPair(certFile, keyFile)
		if err != nil {
			return nil, fmt.Errorf("syslog.cert_file, syslog.key_file: %v", err)
		}
		c.Certificates = []tls.Certificate{cert}
	}
	return c, nil
}
