package auth

import (
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"sync"

	"go.uber.org/zap"

	"github.com/icptrack/icptrack/api/auth/credential"
)

// TLSConfig is api.tls: the server's certificate and key, PEM files.
type TLSConfig struct {
	CertFile string
	KeyFile  string
}

// Listen opens the API's listener by the policy in README "API
// security": TLS 1.2 or later when a certificate is given; plain HTTP only
// on loopback unless insecure (and then a warning); and with no
// credentials (open), loopback only whatever else is set.
func Listen(addr string, tlsCfg TLSConfig, insecure, open bool, log *zap.Logger) (net.Listener, error) {
	if log == nil {
		log = zap.NewNop()
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, fmt.Errorf("API address %q is not host:port: use an address such as 127.0.0.1:9470", addr)
	}
	loopback := IsLoopback(host)
	useTLS := tlsCfg.CertFile != "" || tlsCfg.KeyFile != ""
	switch {
	case useTLS && (tlsCfg.CertFile == "" || tlsCfg.KeyFile == ""):
		return nil, errors.New("API TLS needs both api.tls.cert_file and api.tls.key_file")
	case open && !loopback:
		return nil, fmt.Errorf("the API has no credentials, so it serves loopback only: listen on 127.0.0.1:%s, or add a token to api.tokens (icptrack token new) or a user to api.users", port)
	case !useTLS && !loopback && !insecure:
		return nil, fmt.Errorf("the API on %s would send credentials and data in clear: set api.tls.cert_file and api.tls.key_file, or api.insecure: true to serve plain HTTP anyway, or listen on 127.0.0.1", addr)
	}
	var cert *certificate
	if useTLS {
		if cert, err = loadCertificate(tlsCfg, log); err != nil {
			return nil, err
		}
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("API: %w", err)
	}
	if !useTLS {
		if !loopback {
			log.Warn("the API serves plain HTTP on a non-loopback address (api.insecure): credentials and data cross the network in clear", zap.String("address", ln.Addr().String()))
		}
		return ln, nil
	}
	return tls.NewListener(ln, &tls.Config{
		MinVersion:     tls.VersionTLS12,
		NextProtos:     []string{"h2", "http/1.1"},
		GetCertificate: cert.get,
	}), nil
}

// IsLoopback reports whether host (an IP address or "localhost") is
// loopback. A name other than localhost is not: what it resolves to may
// change after the check.
func IsLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// certificate is the server's key pair, read again when either file
// changes, so that a renewed certificate is served without a restart.
type certificate struct {
	cfg  TLSConfig
	log  *zap.Logger
	mu   sync.Mutex
	pair *tls.Certificate
	seen [2]os.FileInfo // cert, key, when last read
}

func loadCertificate(cfg TLSConfig, log *zap.Logger) (*certificate, error) {
	c := &certificate{cfg: cfg, log: log}
	if err := c.load(); err != nil {
		return nil, err
	}
	return c, nil
}

// load reads the key pair, refusing a key file any user may read.
func (c *certificate) load() error {
	certInfo, err := os.Stat(c.cfg.CertFile)
	if err != nil {
		return fmt.Errorf("API TLS certificate: %w", err)
	}
	keyInfo, err := credential.CheckKeyFile(c.cfg.KeyFile)
	if err != nil {
		return err
	}
	pair, err := tls.LoadX509KeyPair(c.cfg.CertFile, c.cfg.KeyFile)
	if err != nil {
		return fmt.Errorf("API TLS: %w (api.tls.cert_file and key_file must be a PEM certificate and its key)", err)
	}
	c.pair, c.seen = &pair, [2]os.FileInfo{certInfo, keyInfo}
	return nil
}

func (c *certificate) get(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if changed(c.cfg.CertFile, c.seen[0]) || changed(c.cfg.KeyFile, c.seen[1]) {
		if err := c.load(); err != nil {
			// Half-written files during a renewal: keep serving the old
			// pair, and try again when the files change again.
			c.seen = [2]os.FileInfo{stat(c.cfg.CertFile, c.seen[0]), stat(c.cfg.KeyFile, c.seen[1])}
			c.log.Warn("API TLS certificate not reloaded; serving the previous one", zap.Error(err))
		} else {
			c.log.Info("API TLS certificate reloaded", zap.String("cert_file", c.cfg.CertFile))
		}
	}
	return c.pair, nil
}

func stat(path string, old os.FileInfo) os.FileInfo {
	if info, err := os.Stat(path); err == nil {
		return info
	}
	return old
}

func changed(path string, seen os.FileInfo) bool {
	info, err := os.Stat(path)
	// A renewal tool that renames a new file over the old one may keep
	// its time and size (coarse timestamps): the file itself changed.
	return err == nil && (!os.SameFile(info, seen) || !info.ModTime().Equal(seen.ModTime()) || info.Size() != seen.Size())
}
