package config

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

const full = `# every setting
mode: events
mechanisms: [pipe, unix, posix_mq]
filter: comm glob "nginx*" and bytes > 4KiB
payload: 64
events: /var/log/icptrack/events.jsonl
format: otlp-proto
cmdline: true
ring_buffer: 32MiB
memory_limit: 200MiB
drain_interval: 20ms
coalesce: 5ms
log_level: info
service_name: "{exe}-{container}"
causal_stitching: false
trace_sample_ratio: 0.25
max_spans_per_second: 5000
resource_attributes:
  deployment.environment.name: staging
prometheus: 127.0.0.1:9464
otlp:
  endpoint: http://collector:4318
  protocol: http/protobuf
  signals: [traces]
  headers:
    authorization: Bearer abc
  insecure: true
  compression: none
  timeout: 3s
  queue_size: 16
  retry_max_elapsed: 2m
  metrics_interval: 15s
  batch_size: 256
  batch_timeout: 100ms
database:
  url: postgres://icptrack@db:5432/ipc?sslmode=require
  table_prefix: host1_
  batch_size: 500
  batch_timeout: 2s
  queue: 20000
trace:
  pids: [1, 2]
  comms: [nginx]
  cgroup: system.slice/app.service
  duration: 1h
syslog:
  url: tls://logs.example:6514
  filter: error and error != EAGAIN
  facility: local3
  rate_limit: 50
  ca_file: /etc/icptrack/syslog-ca.pem
  cert_file: /etc/icptrack/agent.pem
  key_file: /etc/icptrack/agent-key.pem
store:
  dir: /var/lib/icptrack/store
  key_file: /etc/icptrack/keyring
  segment_size: 32MiB
  segment_age: 30m
  max_size: 10GiB
  max_age: 30d
api:
  address: 127.0.0.1:9470
  window: 50000
  max_streams: 8
  insecure: true
  rate_limit: 5
  tls: {cert_file: /etc/icptrack/api.pem}
  tokens:
    - {name: grafana, hash: "sha256:e69f145108b57eeb996d8986c093342ecea465c6863d393debac2b8253e23730", scopes: [read], expires: 2027-01-01T00:00:00Z}
  users:
    - {name: alice, hash: "$2b$10$N9qo8uLOickgx2ZMRZoMyeIjZAgcfl7p92ldGxad68LJZdL17lhWy", scopes: [read, admin]}
`

func TestLoadEverySetting(t *testing.T) {
	f, err := Parse("icptrack.yaml", []byte(full))
	if err != nil {
		t.Fatal(err)
	}
	// All but otlp.certificate, trace.container and api.tls.key_file
	// (whose file must exist: apiauth_test.go).
	if len(f.Keys) != len(Keys())-3 {
		t.Errorf("%d keys set, want %d", len(f.Keys), len(Keys())-3)
	}
	if f.Format != "otlp-proto" {
		t.Errorf("format %q", f.Format)
	}
	switch {
	case f.Mechanisms != "pipe,unix,posix_mq", f.Filter != `comm glob "nginx*" and bytes > 4KiB`, f.Payload != 64, !f.Cmdline, f.RingBuffer != "32MiB", f.MemoryLimit != "200MiB",
		f.DrainInterval != 20*time.Millisecond, f.Coalesce != 5*time.Millisecond, f.LogLevel != "info", f.ServiceName != "{exe}-{container}", f.CausalStitching,
		f.ResourceAttributes["deployment.environment.name"] != "staging", f.Prometheus != "127.0.0.1:9464",
		f.TraceSampleRatio != 0.25, f.MaxSpansPerSecond != 5000:
		t.Errorf("top-level settings: %+v", f)
	}
	o := f.OTLP
	switch {
	case o.Endpoint != "http://collector:4318", o.Protocol != "http/protobuf", o.Headers["authorization"] != "Bearer abc",
		!o.Insecure, o.Compression != "none", o.Timeout != 3*time.Second, o.QueueSize != 16, o.RetryMaxElapsed != 2*time.Minute,
		f.MetricsInterval != 15*time.Second, f.BatchSize != 256, f.BatchTimeout != 100*time.Millisecond,
		len(f.OTLPSignals) != 1 || f.OTLPSignals[0] != "traces":
		t.Errorf("otlp settings: %+v", o)
	}
	if d := f.Database; d.URL != "postgres://icptrack@db:5432/ipc?sslmode=require" || d.TablePrefix != "host1_" ||
		d.BatchSize != 500 || d.BatchTimeout != 2*time.Second || d.Queue != 20000 {
		t.Errorf("database settings: %+v", d)
	}
	tr := f.Trace
	if len(tr.PIDs) != 2 || tr.Comms[0] != "nginx" || tr.Cgroup != "system.slice/app.service" || tr.Duration != time.Hour {
		t.Errorf("trace settings: %+v", tr)
	}
	if f.Syslog != (Syslog{URL: "tls://logs.example:6514", Filter: "error and error != EAGAIN", Facility: "local3", RateLimit: 50,
		CAFile: "/etc/icptrack/syslog-ca.pem", CertFile: "/etc/icptrack/agent.pem", KeyFile: "/etc/icptrack/agent-key.pem"}) {
		t.Errorf("syslog settings: %+v", f.Syslog)
	}
	if a := f.API; a.Address != "127.0.0.1:9470" || a.Window != 50000 || a.MaxStreams != 8 || !a.Auth.Insecure || a.Auth.RateLimit != 5 ||
		a.Auth.CertFile != "/etc/icptrack/api.pem" || len(a.Auth.Tokens) != 1 || a.Auth.Tokens[0].Name != "grafana" ||
		len(a.Auth.Users) != 1 || a.Auth.Users[0].Scopes[1] != "admin" {
		t.Errorf("api settings: %+v", f.API)
	}
	if !f.Has("otlp.endpoint") || f.Has("trace.container") {
		t.Error("Has is wrong")
	}
}

// Every mistake names the file, the line and the key, and says what would
// be right.
func TestMistakesNameFileLineAndKey(t *testing.T) {
	cases := []struct {
		yaml string
		line int
		key  string
		says []string
	}{
		{"payload: 8\notlp:\n  endpont: http://x:4318\n", 3, "otlp.endpont", []string{"did you mean otlp.endpoint", "valid keys here are"}},
		{"pyload: 8\n", 1, "pyload", []string{"did you mean payload"}},
		{"mode: fast\n", 1, "mode", []string{"events, metrics"}},
		{"format: xml\n", 1, "format", []string{"jsonl, csv, text, otlp-json, otlp-proto"}},
		{"drain_interval: 10 sec\n", 1, "drain_interval", []string{`"10 sec" is not a duration`, "10s"}},
		{"otlp:\n  timeout: -1s\n", 2, "otlp.timeout", []string{"positive"}},
		{"otlp:\n  endpoint: localhost\n", 2, "otlp.endpoint", []string{"not an OTLP endpoint", "http://localhost:4318"}},
		{"otlp:\n  endpoint: ftp://x:21\n", 2, "otlp.endpoint", []string{"http or https"}},
		{"otlp:\n  protocol: http/json\n", 2, "otlp.protocol", []string{"grpc, http/protobuf"}},
		{"mechanisms: [pipe, telepathy]\n", 1, "mechanisms", []string{"telepathy", "posix_mq"}},
		{"payload: lots\n", 1, "payload", []string{"whole number"}},
		{"payload: 99999\n", 1, "payload", []string{"0 to 4096"}},
		{"ring_buffer: huge\n", 1, "ring_buffer", []string{"not a size"}},
		{"memory_limit: plenty\n", 1, "memory_limit", []string{"not a size"}},
		{"cmdline: maybe\n", 1, "cmdline", []string{"true or false"}},
		{"otlp: http://x:4318\n", 1, "otlp", []string{"is a section", "endpoint"}},
		{"log_level: loud\n", 1, "log_level", []string{"debug, info, warn, error"}},
		{"service_name: \"{pid}\"\n", 1, "service_name", []string{"placeholder"}},
		{"prometheus: 9464\n", 1, "prometheus", []string{"host:port"}},
		{"trace:\n  pids: [0]\n", 2, "trace.pids", []string{"not a process id"}},
		{"payload: 1\npayload: 2\n", 2, "payload", []string{"twice"}},
		{"otlp:\n  signals: [logs]\n", 2, "otlp.signals", []string{"traces or metrics"}},
		{"trace_sample_ratio: 0\n", 1, "trace_sample_ratio", []string{"above 0 and at most 1"}},
		{"trace_sample_ratio: 10%\n", 1, "trace_sample_ratio", []string{"not a number"}},
		{"trace_sample_ratio: 1.5\n", 1, "trace_sample_ratio", []string{"at most 1"}},
		{"max_spans_per_second: -5\n", 1, "max_spans_per_second", []string{"0 for no cap"}},
		{"payload: 8\nfilter: mechanism == unix_stram\n", 2, "filter", []string{"unknown mechanism", "did you mean unix_stream"}},
		{"syslog: tcp://x:514\n", 1, "syslog", []string{"is a section", "url"}},
		{"syslog:\n  url: tcp://logs\n", 2, "syslog.url", []string{"needs a host and a port"}},
		{"syslog:\n  url: syslog.example:514\n", 2, "syslog.url", []string{"unix:///dev/log", "tls://host:6514"}},
		{"syslog:\n  facility: kernel\n", 2, "syslog.facility", []string{"local0"}},
		{"syslog:\n  rate_limit: -1\n", 2, "syslog.rate_limit", []string{"0 for no limit"}},
		{"syslog:\n  url: udp://h:514\n  filter: |\n    error and\n    eror == EPIPE\n", 5, "syslog.filter", []string{"did you mean error"}},
		{"database:\n  url: mysql://root:s3cret@db/x\n", 2, "database.url", []string{"not a PostgreSQL URL", "postgres://USER@HOST:PORT/DATABASE"}},
		{"database:\n  table_prefix: Drop Table\n", 2, "database.table_prefix", []string{"lower-case letters"}},
		{"database:\n  batch_size: 0\n", 2, "database.batch_size", []string{"1 to 65536"}},
		{"database: postgres://db/x\n", 1, "database", []string{"is a section", "url"}},
		// A filter over several lines: the line of its mistake.
		{"payload: 8\nfilter: |\n  pid == 1 and\n  cmm == x\n", 4, "filter", []string{`unknown field "cmm"`, "did you mean comm"}},
	}
	for _, tc := range cases {
		_, err := Parse("/etc/icptrack/config.yaml", []byte(tc.yaml))
		var ce *Error
		if !errors.As(err, &ce) {
			t.Errorf("%q: error %v, want a config.Error", tc.yaml, err)
			continue
		}
		if ce.Line != tc.line || ce.Key != tc.key || ce.Path != "/etc/icptrack/config.yaml" {
			t.Errorf("%q: %s:%d key %s, want line %d key %s", tc.yaml, ce.Path, ce.Line, ce.Key, tc.line, tc.key)
		}
		msg := err.Error()
		if strings.Contains(msg, "s3cret") {
			t.Errorf("%q: %q shows the password", tc.yaml, msg)
		}
		if !strings.HasPrefix(msg, "/etc/icptrack/config.yaml:") {
			t.Errorf("%q: %q does not start with the file", tc.yaml, msg)
		}
		for _, s := range tc.says {
			if !strings.Contains(msg, s) {
				t.Errorf("%q: %q does not say %q", tc.yaml, msg, s)
			}
		}
	}
}

func TestNotAMappingOrNotYAML(t *testing.T) {
	if _, err := Parse("c.yaml", []byte("- a\n- b\n")); err == nil || !strings.Contains(err.Error(), "c.yaml:1") {
		t.Errorf("a list at the top: %v", err)
	}
	if _, err := Parse("c.yaml", []byte("a: [\n")); err == nil || !strings.Contains(err.Error(), "c.yaml") {
		t.Errorf("broken YAML: %v", err)
	}
	if f, err := Parse("c.yaml", nil); err != nil || len(f.Keys) != 0 {
		t.Errorf("an empty file: %v", err)
	}
}

func TestLoadMissingFile(t *testing.T) {
	_, err := Load(filepath.Join(t.TempDir(), "none.yaml"))
	if err == nil || !errors.Is(err, os.ErrNotExist) && !strings.Contains(err.Error(), "no such file") {
		t.Errorf("missing file: %v", err)
	}
}

func FuzzParse(f *testing.F) {
	f.Add([]byte(full))
	f.Add([]byte("otlp:\n  endpoint: [a]\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		_, _ = Parse("fuzz.yaml", b)
	})
}

func FuzzParseSize(f *testing.F) {
	for _, s := range []string{"4096", "64K", "16MiB", "1G", "0", "-1", "9999999999G", "MiB", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		n, err := ParseSize(s)
		if err == nil && n <= 0 {
			t.Fatalf("ParseSize(%q) = %d without an error", s, n)
		}
	})
}

func TestStoreSettings(t *testing.T) {
	f, err := Parse("icptrack.yaml", []byte(full))
	if err != nil {
		t.Fatal(err)
	}
	want := Store{Dir: "/var/lib/icptrack/store", KeyFile: "/etc/icptrack/keyring", SegmentSize: 32 << 20,
		SegmentAge: 30 * time.Minute, MaxSize: 10 << 30, MaxAge: 30 * 24 * time.Hour}
	if f.Store != want {
		t.Errorf("store: %+v, want %+v", f.Store, want)
	}
	for _, c := range []struct{ yaml, want string }{
		{"store:\n  max_size: 10 gigs\n", `store.max_size: "10 gigs" is not a size`},
		{"store:\n  segment_size: 100\n", "store.segment_size: 100 is too small"},
		{"store:\n  max_age: forever\n", `store.max_age: "forever" is not an age: use a duration such as 1h, 30d or 2w`},
		{"store:\n  segment_age: -1h\n", "is not an age"},
		{"store:\n  dri: /x\n", "did you mean store.dir?"},
	} {
		_, err := Parse("c.yaml", []byte(c.yaml))
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%q: %v, want %q", c.yaml, err, c.want)
		}
	}
}
