package exporter

import (
	"strings"
	"testing"
	"time"
)

func TestParseEndpoint(t *testing.T) {
	for _, ok := range []string{"http://localhost:4318", "https://collector.example:4317", "localhost:4317", "[::1]:4317", "http://10.0.0.1:4318/otlp"} {
		if _, err := ParseEndpoint(ok); err != nil {
			t.Errorf("%s: %v", ok, err)
		}
	}
	for _, bad := range []string{"localhost", "ftp://host:21", "http://:4318", "http://host:99999", "http://host:port", "", "::::"} {
		_, err := ParseEndpoint(bad)
		if err == nil {
			t.Errorf("%q accepted", bad)
			continue
		}
		if !strings.Contains(err.Error(), "use a URL such as") {
			t.Errorf("%q: error does not say what to do: %v", bad, err)
		}
	}
}

func env(vars map[string]string) func(string) string {
	return func(k string) string { return vars[k] }
}

// Where each signal goes, by protocol and endpoint, as the OTLP exporter
// specification has it.
func TestTargets(t *testing.T) {
	cases := []struct {
		cfg             OTLPConfig
		traces, metrics string
		protocol        string
		tls             bool
	}{
		{OTLPConfig{Endpoint: "http://localhost:4318"}, "http://localhost:4318/v1/traces", "http://localhost:4318/v1/metrics", ProtocolHTTP, false},
		{OTLPConfig{Endpoint: "http://localhost:4317"}, "http://localhost:4317", "http://localhost:4317", ProtocolGRPC, false},
		{OTLPConfig{Endpoint: "https://gw:443/otlp/"}, "https://gw:443/otlp/v1/traces", "https://gw:443/otlp/v1/metrics", ProtocolHTTP, true},
		{OTLPConfig{Endpoint: "gw.example:4317", Protocol: ProtocolGRPC}, "https://gw.example:4317", "https://gw.example:4317", ProtocolGRPC, true},
		{OTLPConfig{Endpoint: "gw.example:4317", Insecure: true}, "http://gw.example:4317", "http://gw.example:4317", ProtocolGRPC, false},
		{OTLPConfig{Endpoint: "127.0.0.1:9999", Protocol: ProtocolHTTP}, "http://127.0.0.1:9999/v1/traces", "http://127.0.0.1:9999/v1/metrics", ProtocolHTTP, false},
		{OTLPConfig{Endpoint: "http://a:4318", TracesEndpoint: "http://b:4318/custom"}, "http://b:4318/custom", "http://a:4318/v1/metrics", ProtocolHTTP, false},
	}
	for _, tc := range cases {
		tr, err := tc.cfg.target("traces")
		if err != nil {
			t.Errorf("%+v: %v", tc.cfg, err)
			continue
		}
		mt, _ := tc.cfg.target("metrics")
		if tr.url.String() != tc.traces || mt.url.String() != tc.metrics || tr.protocol != tc.protocol || (tr.tls != nil) != tc.tls {
			t.Errorf("%+v: traces %s metrics %s %s tls=%v; want %s %s %s tls=%v",
				tc.cfg, tr.url, mt.url, tr.protocol, tr.tls != nil, tc.traces, tc.metrics, tc.protocol, tc.tls)
		}
	}
}

func TestEnvironmentIsHonoured(t *testing.T) {
	c, err := OTLPConfig{}.WithEnv(env(map[string]string{
		"OTEL_EXPORTER_OTLP_ENDPOINT":        "http://collector:4318",
		"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://traces:4318/v1/traces",
		"OTEL_EXPORTER_OTLP_HEADERS":         "authorization=Bearer%20abc,x-tenant=acme",
		"OTEL_EXPORTER_OTLP_TIMEOUT":         "2500",
		"OTEL_EXPORTER_OTLP_COMPRESSION":     "none",
	}))
	if err != nil {
		t.Fatal(err)
	}
	if !c.Enabled() || c.Endpoint != "http://collector:4318" || c.TracesEndpoint != "http://traces:4318/v1/traces" ||
		c.Headers["authorization"] != "Bearer abc" || c.Headers["x-tenant"] != "acme" || c.Timeout != 2500*time.Millisecond || c.Compression != "none" {
		t.Errorf("%+v", c)
	}
	// A setting wins over the variables.
	c, err = OTLPConfig{Endpoint: "http://mine:4318", Protocol: ProtocolHTTP}.WithEnv(env(map[string]string{
		"OTEL_EXPORTER_OTLP_ENDPOINT": "http://theirs:4317", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://theirs:4318", "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc",
	}))
	if err != nil || c.Endpoint != "http://mine:4318" || c.TracesEndpoint != "" || c.Protocol != ProtocolHTTP {
		t.Errorf("%+v %v", c, err)
	}
	if c, _ := (OTLPConfig{}).WithEnv(env(nil)); c.Enabled() {
		t.Error("enabled with nothing configured")
	}
	for vars, what := range map[string]string{
		"OTEL_EXPORTER_OTLP_ENDPOINT=nohost":      "not an OTLP endpoint",
		"OTEL_EXPORTER_OTLP_PROTOCOL=http/json":   "not supported",
		"OTEL_EXPORTER_OTLP_TIMEOUT=10s":          "milliseconds",
		"OTEL_EXPORTER_OTLP_HEADERS=novalue":      "key=value",
		"OTEL_EXPORTER_OTLP_INSECURE=perhaps":     "true or false",
		"OTEL_EXPORTER_OTLP_COMPRESSION=brotli":   "gzip or none",
		"OTEL_EXPORTER_OTLP_CERTIFICATE=/nowhere": "certificate",
	} {
		k, v, _ := strings.Cut(vars, "=")
		_, err := OTLPConfig{Endpoint: "http://ok:4318"}.WithEnv(env(map[string]string{k: v}))
		if k == "OTEL_EXPORTER_OTLP_ENDPOINT" {
			_, err = OTLPConfig{}.WithEnv(env(map[string]string{k: v}))
		}
		if err == nil || !strings.Contains(err.Error(), what) {
			t.Errorf("%s: error %v, want one that mentions %q", vars, err, what)
		}
	}
}
