package auth

import (
	"bufio"
	"crypto/tls"
	"crypto/x509"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/icptrack/icptrack/internal/testca"
)

// testCA is a certificate authority made for one test, and the files of
// a server certificate it signed for 127.0.0.1.
type testCA struct {
	*testca.CA
	pool *x509.CertPool
	tls  TLSConfig
}

func newTestCA(t *testing.T) *testCA {
	t.Helper()
	ca := &testCA{CA: testca.New(t, "icptrack-test")}
	ca.pool = ca.Pool()
	ca.issue(t)
	return ca
}

// issue (again) writes a server certificate for 127.0.0.1, with a new
// random serial, into the same files.
func (ca *testCA) issue(t *testing.T) {
	t.Helper()
	cert, key := ca.Issue(t, "server", false, "127.0.0.1")
	ca.tls = TLSConfig{CertFile: cert, KeyFile: key}
}

// serve serves a page with secret on ln until the test ends.
func serve(t *testing.T, ln net.Listener) string {
	t.Helper()
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, secret)
	}), ErrorLog: log.New(io.Discard, "", 0)} // handshake errors are what some tests cause
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return ln.Addr().String()
}

func TestTLSListenerServesTLS12AndLaterOnly(t *testing.T) {
	ca := newTestCA(t)
	ln, err := Listen("127.0.0.1:0", ca.tls, false, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	addr := serve(t, ln)
	for _, c := range []struct {
		version uint16
		ok      bool
	}{{tls.VersionTLS11, false}, {tls.VersionTLS12, true}, {tls.VersionTLS13, true}} {
		client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{
			RootCAs: ca.pool, MinVersion: c.version, MaxVersion: c.version,
		}}}
		resp, err := client.Get("https://" + addr + "/")
		if !c.ok {
			if err == nil {
				resp.Body.Close()
				t.Errorf("TLS version %x was served", c.version)
			}
			continue
		}
		if err != nil {
			t.Fatalf("TLS version %x: %v", c.version, err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if string(b) != secret || resp.TLS.PeerCertificates[0].Subject.CommonName != "127.0.0.1" {
			t.Errorf("TLS version %x: %q from certificate %v", c.version, b, resp.TLS.PeerCertificates[0].Subject)
		}
	}
}

func TestPlainHTTPToTheTLSPortServesNothing(t *testing.T) {
	ca := newTestCA(t)
	ln, err := Listen("127.0.0.1:0", ca.tls, false, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	addr := serve(t, ln)
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(5 * time.Second))
	io.WriteString(conn, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
	b, _ := io.ReadAll(bufio.NewReader(conn))
	if strings.Contains(string(b), secret) || strings.Contains(string(b), " 200 ") {
		t.Fatalf("plain HTTP to the TLS port was answered: %q", b)
	}
	// And with an ordinary client.
	resp, err := http.Get("http://" + addr + "/")
	if err == nil {
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode == 200 || strings.Contains(string(body), secret) {
			t.Fatalf("plain HTTP client got %d %q", resp.StatusCode, body)
		}
	}
}

func TestCertificateIsReloadedWhenItsFilesChange(t *testing.T) {
	ca := newTestCA(t)
	ln, err := Listen("127.0.0.1:0", ca.tls, false, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	addr := serve(t, ln)
	serial := func() string {
		conn, err := tls.Dial("tcp", addr, &tls.Config{RootCAs: ca.pool})
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		return conn.ConnectionState().PeerCertificates[0].SerialNumber.String()
	}
	first := serial()
	ca.issue(t)
	renewed := serial()
	if renewed == first {
		t.Errorf("after renewal, serial %s still", first)
	}
	// A broken renewal keeps the previous certificate.
	os.WriteFile(ca.tls.CertFile, []byte("half a certificate"), 0o600)
	if s := serial(); s != renewed {
		t.Errorf("after a broken renewal, serial %s, want %s still", s, renewed)
	}
}

func TestNonLoopbackWithoutTLSIsRefusedUnlessInsecure(t *testing.T) {
	_, err := Listen("0.0.0.0:0", TLSConfig{}, false, false, nil)
	if err == nil || !strings.Contains(err.Error(), "set api.tls.cert_file and api.tls.key_file, or api.insecure: true") {
		t.Fatalf("plain HTTP on 0.0.0.0: %v, want an error saying what to set", err)
	}
	if _, err := Listen(":0", TLSConfig{}, false, false, nil); err == nil {
		t.Fatal("plain HTTP on every address (:0) was allowed")
	}
	core, logs := observer.New(zapcore.WarnLevel)
	ln, err := Listen("0.0.0.0:0", TLSConfig{}, true, false, zap.New(core))
	if err != nil {
		t.Fatal(err)
	}
	ln.Close()
	if logs.Len() != 1 || !strings.Contains(logs.All()[0].Message, "plain HTTP") {
		t.Errorf("insecure gave no warning: %v", logs.All())
	}
	ln, err = Listen("127.0.0.1:0", TLSConfig{}, false, false, nil)
	if err != nil {
		t.Fatalf("plain HTTP on loopback: %v", err)
	}
	ln.Close()
}

func TestOpenAPIServesLoopbackOnly(t *testing.T) {
	ca := newTestCA(t)
	for _, addr := range []string{"0.0.0.0:0", ":0", "[::]:0"} {
		_, err := Listen(addr, ca.tls, true, true, nil)
		if err == nil || !strings.Contains(err.Error(), "serves loopback only") {
			t.Errorf("open API on %s, even with TLS and insecure: %v", addr, err)
		}
	}
	for _, addr := range []string{"127.0.0.1:0", "localhost:0"} {
		ln, err := Listen(addr, TLSConfig{}, false, true, nil)
		if err != nil {
			t.Errorf("open API on %s: %v", addr, err)
			continue
		}
		ln.Close()
	}
}

func TestBadTLSFilesAreRefused(t *testing.T) {
	ca := newTestCA(t)
	if _, err := Listen("127.0.0.1:0", TLSConfig{CertFile: ca.tls.CertFile}, false, false, nil); err == nil || !strings.Contains(err.Error(), "needs both") {
		t.Errorf("certificate without key: %v", err)
	}
	os.Chmod(ca.tls.KeyFile, 0o644)
	if _, err := Listen("127.0.0.1:0", ca.tls, false, false, nil); err == nil || !strings.Contains(err.Error(), "chmod 600") {
		t.Errorf("world-readable key: %v", err)
	}
	os.Chmod(ca.tls.KeyFile, 0o600)
	os.WriteFile(ca.tls.CertFile, []byte("junk"), 0o600)
	if _, err := Listen("127.0.0.1:0", ca.tls, false, false, nil); err == nil || !strings.Contains(err.Error(), "PEM certificate") {
		t.Errorf("junk certificate: %v", err)
	}
}

// TestGuardedAPIOverTLS puts the pieces together as the server does:
// Listen, Headers and Require, with a real client over the network.
func TestGuardedAPIOverTLS(t *testing.T) {
	ca := newTestCA(t)
	f := newFixture(t, -1)
	f.a.now = time.Now
	ln, err := Listen("127.0.0.1:0", ca.tls, false, f.a.Open(), nil)
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: Headers(guarded(f.a, ScopeRead)), ErrorLog: log.New(io.Discard, "", 0)}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: ca.pool}, ForceAttemptHTTP2: true}}
	get := func(authorization string) (*http.Response, string) {
		req, _ := http.NewRequest("GET", "https://"+ln.Addr().String()+"/api/v1/operations", nil)
		if authorization != "" {
			req.Header.Set("Authorization", authorization)
		}
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp, string(b)
	}
	resp, body := get(bearer(f.tok["read"]))
	if resp.StatusCode != 200 || body != secret+" for read" || resp.ProtoMajor != 2 || resp.Header.Get("Cache-Control") != "no-store" {
		t.Errorf("right token: %s %d %q, Cache-Control %q", resp.Proto, resp.StatusCode, body, resp.Header.Get("Cache-Control"))
	}
	resp, body = get(basic("alice", "wrong"))
	if resp.StatusCode != 401 || strings.Contains(body, secret) || resp.Header.Get("WWW-Authenticate") != Challenge || resp.Header.Get("Content-Security-Policy") != CSP {
		t.Errorf("wrong password: %d %q %v", resp.StatusCode, body, resp.Header)
	}
	// A header folded onto two lines (obsolete line folding) is one
	// header joined with a space (RFC 9112 5.2), here not a credential.
	conn, err := tls.Dial("tcp", ln.Addr().String(), &tls.Config{RootCAs: ca.pool, NextProtos: []string{"http/1.1"}})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(5 * time.Second))
	io.WriteString(conn, "GET /api/v1/operations HTTP/1.1\r\nHost: x\r\nConnection: close\r\nAuthorization: Bearer x\r\n "+f.tok["read"]+"\r\n\r\n")
	raw, _ := io.ReadAll(conn)
	if !strings.HasPrefix(string(raw), "HTTP/1.1 401 ") || strings.Contains(string(raw), secret) {
		t.Errorf("a folded header: %q", raw)
	}
}
