package exporter

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"
)

// OTLP protocols.
const (
	ProtocolGRPC = "grpc"
	ProtocolHTTP = "http/protobuf"
)

// OTLPConfig says where and how to send OTLP data. Fields left empty are
// taken from the standard OTEL_EXPORTER_OTLP_* variables by WithEnv.
type OTLPConfig struct {
	// Endpoint is the backend: a URL (http://localhost:4318, https://…)
	// or host:port. Over HTTP, /v1/traces and /v1/metrics are appended
	// to its path.
	Endpoint string
	// TracesEndpoint and MetricsEndpoint, when set, are used as they are
	// for one signal (OTEL_EXPORTER_OTLP_TRACES_ENDPOINT, …).
	TracesEndpoint, MetricsEndpoint string
	// Protocol is grpc or http/protobuf. When empty: grpc for port 4317,
	// http/protobuf otherwise.
	Protocol string
	Headers  map[string]string
	// Insecure allows plain text to a host:port endpoint that is not on
	// this machine. (http:// URLs and loopback addresses are plain text
	// anyway; https:// is always TLS.)
	Insecure bool
	// Certificate is a PEM file of CA certificates to trust for TLS.
	Certificate string
	// Compression is gzip or none.
	Compression string
	// Timeout bounds each export request.
	Timeout time.Duration
	// QueueSize is the batches that may wait to be sent; more are dropped
	// and counted.
	QueueSize int
	// RetryMaxElapsed is how long a batch is retried before it is given up
	// (and counted dropped).
	RetryMaxElapsed time.Duration
}

// Enabled reports whether there is anywhere to send to.
func (c OTLPConfig) Enabled() bool {
	return c.Endpoint != "" || c.TracesEndpoint != "" || c.MetricsEndpoint != ""
}

// DefaultOTLPConfig are the defaults that no variable or setting changed.
func DefaultOTLPConfig() OTLPConfig {
	return OTLPConfig{Compression: "none", Timeout: 10 * time.Second, QueueSize: 16, RetryMaxElapsed: time.Minute}
}

// orDefaults fills unset fields with DefaultOTLPConfig's.
func (c OTLPConfig) orDefaults() OTLPConfig {
	d := DefaultOTLPConfig()
	if c.Compression == "" {
		c.Compression = d.Compression
	}
	if c.Timeout <= 0 {
		c.Timeout = d.Timeout
	}
	if c.QueueSize <= 0 {
		c.QueueSize = d.QueueSize
	}
	if c.RetryMaxElapsed <= 0 {
		c.RetryMaxElapsed = d.RetryMaxElapsed
	}
	return c
}

// WithEnv fills what c leaves unset from the OTEL_EXPORTER_OTLP_*
// variables, read with getenv (os.Getenv).
func (c OTLPConfig) WithEnv(getenv func(string) string) (OTLPConfig, error) {
	pick := func(cur *string, names ...string) {
		for _, n := range names {
			if *cur == "" {
				*cur = strings.TrimSpace(getenv(n))
			}
		}
	}
	// A setting for both signals (--otlp-endpoint, the config file) wins
	// over any variable.
	if c.Endpoint == "" {
		pick(&c.TracesEndpoint, "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
		pick(&c.MetricsEndpoint, "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT")
		pick(&c.Endpoint, "OTEL_EXPORTER_OTLP_ENDPOINT")
	}
	pick(&c.Protocol, "OTEL_EXPORTER_OTLP_PROTOCOL", "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL")
	pick(&c.Certificate, "OTEL_EXPORTER_OTLP_CERTIFICATE")
	pick(&c.Compression, "OTEL_EXPORTER_OTLP_COMPRESSION")
	if h := getenv("OTEL_EXPORTER_OTLP_HEADERS"); h != "" && c.Headers == nil {
		hs, err := ParseHeaders(h)
		if err != nil {
			return c, fmt.Errorf("OTEL_EXPORTER_OTLP_HEADERS: %w", err)
		}
		c.Headers = hs
	}
	if v := getenv("OTEL_EXPORTER_OTLP_INSECURE"); v != "" && !c.Insecure {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return c, fmt.Errorf("OTEL_EXPORTER_OTLP_INSECURE=%q: use true or false", v)
		}
		c.Insecure = b
	}
	if v := getenv("OTEL_EXPORTER_OTLP_TIMEOUT"); v != "" && c.Timeout == 0 {
		ms, err := strconv.Atoi(v)
		if err != nil || ms <= 0 {
			return c, fmt.Errorf("OTEL_EXPORTER_OTLP_TIMEOUT=%q: use milliseconds, such as 10000", v)
		}
		c.Timeout = time.Duration(ms) * time.Millisecond
	}
	return c, c.Validate()
}

// Validate checks the endpoint, protocol and compression.
func (c OTLPConfig) Validate() error {
	for _, e := range []string{c.Endpoint, c.TracesEndpoint, c.MetricsEndpoint} {
		if e == "" {
			continue
		}
		if _, err := ParseEndpoint(e); err != nil {
			return err
		}
	}
	switch c.Protocol {
	case "", ProtocolGRPC, ProtocolHTTP:
	default:
		return fmt.Errorf("OTLP protocol %q is not supported: use %s or %s", c.Protocol, ProtocolGRPC, ProtocolHTTP)
	}
	switch c.Compression {
	case "", "gzip", "none":
	default:
		return fmt.Errorf("OTLP compression %q is not supported: use gzip or none", c.Compression)
	}
	if c.Certificate != "" {
		if _, err := os.Stat(c.Certificate); err != nil {
			return fmt.Errorf("OTLP certificate: %v", err)
		}
	}
	return nil
}

// ParseEndpoint reads an OTLP endpoint: an http or https URL, or
// host:port (whose scheme is left empty).
func ParseEndpoint(s string) (*url.URL, error) {
	bad := func(why string) error {
		return fmt.Errorf("%q is not an OTLP endpoint (%s): use a URL such as http://localhost:4318 or https://collector:4317, or host:port", s, why)
	}
	var u *url.URL
	if !strings.Contains(s, "://") {
		host, port, err := net.SplitHostPort(s)
		if err != nil {
			return nil, bad("no scheme, and not host:port")
		}
		u = &url.URL{Host: net.JoinHostPort(host, port)}
	} else {
		var err error
		if u, err = url.Parse(s); err != nil {
			return nil, bad(err.Error())
		}
		if u.Scheme != "http" && u.Scheme != "https" {
			return nil, bad("the scheme must be http or https")
		}
	}
	if u.Hostname() == "" {
		return nil, bad("no host")
	}
	if p := u.Port(); p != "" {
		if n, err := strconv.Atoi(p); err != nil || n < 1 || n > 65535 {
			return nil, bad("the port must be a number from 1 to 65535")
		}
	}
	return u, nil
}

// ParseHeaders reads OTLP headers as OTEL_EXPORTER_OTLP_HEADERS spells
// them: key=value pairs separated by commas, values URL-encoded.
func ParseHeaders(s string) (map[string]string, error) {
	h := make(map[string]string)
	for _, kv := range strings.Split(s, ",") {
		if strings.TrimSpace(kv) == "" {
			continue
		}
		k, v, ok := strings.Cut(kv, "=")
		k = strings.TrimSpace(k)
		if !ok || k == "" {
			return nil, fmt.Errorf("%q is not key=value", kv)
		}
		dv, err := url.QueryUnescape(strings.TrimSpace(v))
		if err != nil {
			return nil, fmt.Errorf("header %s: %v", k, err)
		}
		h[k] = dv
	}
	return h, nil
}

// otlpTarget is one signal's destination, resolved.
type otlpTarget struct {
	protocol string
	// url is the full URL for HTTP, and scheme://host:port for gRPC.
	url    *url.URL
	tls    *tls.Config // nil for plain text
	config OTLPConfig
}

// target resolves where signal ("traces" or "metrics") goes.
func (c OTLPConfig) target(signal string) (*otlpTarget, error) {
	raw, exact := c.Endpoint, false
	switch {
	case signal == "traces" && c.TracesEndpoint != "":
		raw, exact = c.TracesEndpoint, true
	case signal == "metrics" && c.MetricsEndpoint != "":
		raw, exact = c.MetricsEndpoint, true
	}
	if raw == "" {
		return nil, fmt.Errorf("no OTLP endpoint for %s", signal)
	}
	u, err := ParseEndpoint(raw)
	if err != nil {
		return nil, err
	}
	c = c.orDefaults()
	t := &otlpTarget{protocol: c.Protocol, config: c}
	if t.protocol == "" {
		t.protocol = ProtocolHTTP
		if u.Port() == "4317" {
			t.protocol = ProtocolGRPC
		}
	}
	secure := u.Scheme == "https" || (u.Scheme == "" && !c.Insecure && !loopback(u.Hostname()))
	if u.Scheme == "" {
		u.Scheme = "http"
		if secure {
			u.Scheme = "https"
		}
	}
	if secure {
		t.tls = &tls.Config{MinVersion: tls.VersionTLS12}
		if c.Certificate != "" {
			pem, err := os.ReadFile(c.Certificate)
			if err != nil {
				return nil, fmt.Errorf("OTLP certificate: %v", err)
			}
			pool := x509.NewCertPool()
			if !pool.AppendCertsFromPEM(pem) {
				return nil, fmt.Errorf("OTLP certificate %s holds no PEM certificate", c.Certificate)
			}
			t.tls.RootCAs = pool
		}
	}
	if t.protocol == ProtocolHTTP && !exact {
		u.Path = strings.TrimSuffix(u.Path, "/") + "/v1/" + signal
	}
	if t.protocol == ProtocolGRPC {
		u.Path = ""
	}
	t.url = u
	return t, nil
}

func loopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// Describe is the endpoint and protocol signal goes to, for logs and
// messages.
func (c OTLPConfig) Describe(signal string) string {
	t, err := c.target(signal)
	if err != nil {
		return "nowhere"
	}
	return t.url.String() + " (" + t.protocol + ")"
}
