// Package config reads the standalone agent's YAML configuration file:
// the same settings as icptrack's flags, checked key by key so that a
// mistake is reported with the file, line and key that are wrong.
package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/icptrack/icptrack/exporter"
	"github.com/icptrack/icptrack/filter"
	"github.com/icptrack/icptrack/flow"
)

// DefaultPath is read when no --config is given and it exists.
const DefaultPath = "/etc/icptrack/config.yaml"

// File is a parsed configuration file. Only the keys in Keys were set;
// the others hold zero values.
type File struct {
	Path string
	Keys map[string]bool

	Mode               string
	Mechanisms         string
	Filter             string
	Payload            int
	Events             string
	Format             string
	Cmdline            bool
	RingBuffer         string
	MemoryLimit        string
	DrainInterval      time.Duration
	Coalesce           time.Duration
	LogLevel           string
	ServiceName        string
	CausalStitching    bool
	ResourceAttributes map[string]string
	Prometheus         string
	OTLP               exporter.OTLPConfig
	OTLPSignals        []string
	MetricsInterval    time.Duration
	BatchSize          int
	BatchTimeout       time.Duration
	TraceSampleRatio   float64
	MaxSpansPerSecond  float64
	Trace              Trace
	Syslog             Syslog
	Database           Database
	Store              Store
	API                API
}

// Trace holds the settings only icptrack trace uses.
type Trace struct {
	PIDs      []int
	Comms     []string
	Cgroup    string
	Container string
	Duration  time.Duration
}

// Database holds the database output's settings (--database). The
// exporter/postgres package checks them in full; the file checks what it
// can without a PostgreSQL client, which the Collector receiver, that
// reads this package too, does not need.
type Database struct {
	URL          string
	TablePrefix  string
	BatchSize    int
	BatchTimeout time.Duration
	Queue        int
}

// tablePrefix is exporter/postgres's rule for a table prefix (a test
// there keeps the two the same).
var tablePrefix = regexp.MustCompile(`^[a-z_][a-z0-9_]{0,39}$`)

// Has reports whether the file set key (dotted: "otlp.endpoint").
func (f *File) Has(key string) bool { return f != nil && f.Keys[key] }

// Error is a mistake in a configuration file.
type Error struct {
	Path string
	Line int
	Key  string
	Err  error
}

func (e *Error) Error() string {
	if e.Key == "" {
		return fmt.Sprintf("%s:%d: %v", e.Path, e.Line, e.Err)
	}
	return fmt.Sprintf("%s:%d: %s: %v", e.Path, e.Line, e.Key, e.Err)
}

func (e *Error) Unwrap() error { return e.Err }

// setter reads one key's value into f.
type setter func(f *File, n *yaml.Node) error

// keys are the settings, by dotted key. A key whose prefix ends in a dot
// is a section.
var keys = map[string]setter{
	"mechanisms": func(f *File, n *yaml.Node) error {
		var names []string
		switch n.Kind {
		case yaml.ScalarNode:
			names = []string{n.Value}
		case yaml.SequenceNode:
			if err := n.Decode(&names); err != nil {
				return errors.New("must be a list of mechanism names")
			}
		default:
			return errors.New("must be a list of mechanism names, or one comma-separated string")
		}
		joined := strings.Join(names, ",")
		if _, err := flow.ParseMechanisms(joined); err != nil {
			return err
		}
		f.Mechanisms = joined
		return nil
	},
	"filter": func(f *File, n *yaml.Node) error {
		if err := scalar(n, &f.Filter); err != nil {
			return err
		}
		_, err := filter.Parse(f.Filter)
		return err
	},
	"mode":    oneOf(func(f *File) *string { return &f.Mode }, "events", "metrics"),
	"payload": intIn(func(f *File) *int { return &f.Payload }, 0, 4096),
	"events":  str(func(f *File) *string { return &f.Events }),
	"format": oneOf(func(f *File) *string { return &f.Format },
		"jsonl", "csv", "text", "otlp-json", "otlp-proto"),
	"cmdline":        boolean(func(f *File) *bool { return &f.Cmdline }),
	"ring_buffer":    size(func(f *File) *string { return &f.RingBuffer }),
	"drain_interval": duration(func(f *File) *time.Duration { return &f.DrainInterval }),
	"coalesce": func(f *File, n *yaml.Node) error {
		d, err := time.ParseDuration(n.Value)
		if n.Kind != yaml.ScalarNode || err != nil || d < 0 {
			return fmt.Errorf("%q is not a coalescing window: use 0 (a record per operation) or a duration such as 1ms", n.Value)
		}
		f.Coalesce = d
		return nil
	},
	"memory_limit": func(f *File, n *yaml.Node) error {
		if err := scalar(n, &f.MemoryLimit); err != nil {
			return err
		}
		if f.MemoryLimit == "0" {
			return nil
		}
		_, err := ParseSize(f.MemoryLimit)
		return err
	},
	"log_level": oneOf(func(f *File) *string { return &f.LogLevel },
		"debug", "info", "warn", "error"),
	"service_name": func(f *File, n *yaml.Node) error {
		if err := scalar(n, &f.ServiceName); err != nil {
			return err
		}
		return exporter.ValidateServiceName(f.ServiceName)
	},
	"causal_stitching": boolean(func(f *File) *bool { return &f.CausalStitching }),
	"trace_sample_ratio": func(f *File, n *yaml.Node) error {
		v, err := number(n)
		if err != nil {
			return err
		}
		if err := exporter.CheckSampleRatio(v); err != nil {
			return err
		}
		f.TraceSampleRatio = v
		return nil
	},
	"max_spans_per_second": func(f *File, n *yaml.Node) error {
		v, err := number(n)
		if err != nil {
			return err
		}
		if err := exporter.CheckMaxSpansPerSecond(v); err != nil {
			return err
		}
		f.MaxSpansPerSecond = v
		return nil
	},
	"resource_attributes": stringMap(func(f *File) *map[string]string { return &f.ResourceAttributes }),
	"prometheus": func(f *File, n *yaml.Node) error {
		if err := scalar(n, &f.Prometheus); err != nil {
			return err
		}
		return CheckListenAddress(f.Prometheus)
	},
	"otlp.endpoint": func(f *File, n *yaml.Node) error {
		if err := scalar(n, &f.OTLP.Endpoint); err != nil {
			return err
		}
		_, err := exporter.ParseEndpoint(f.OTLP.Endpoint)
		return err
	},
	"otlp.protocol": oneOf(func(f *File) *string { return &f.OTLP.Protocol },
		exporter.ProtocolGRPC, exporter.ProtocolHTTP),
	"otlp.signals": func(f *File, n *yaml.Node) error {
		if n.Kind != yaml.SequenceNode || n.Decode(&f.OTLPSignals) != nil || len(f.OTLPSignals) == 0 {
			return errors.New("must be a list: [traces], [metrics] or [traces, metrics]")
		}
		for _, s := range f.OTLPSignals {
			if s != "traces" && s != "metrics" {
				return fmt.Errorf("%q is not a signal: use traces or metrics", s)
			}
		}
		return nil
	},
	"otlp.headers":     stringMap(func(f *File) *map[string]string { return &f.OTLP.Headers }),
	"otlp.insecure":    boolean(func(f *File) *bool { return &f.OTLP.Insecure }),
	"otlp.certificate": str(func(f *File) *string { return &f.OTLP.Certificate }),
	"otlp.compression": oneOf(func(f *File) *string { return &f.OTLP.Compression },
		"gzip", "none"),
	"otlp.timeout":           duration(func(f *File) *time.Duration { return &f.OTLP.Timeout }),
	"otlp.queue_size":        intIn(func(f *File) *int { return &f.OTLP.QueueSize }, 1, 1<<16),
	"otlp.retry_max_elapsed": duration(func(f *File) *time.Duration { return &f.OTLP.RetryMaxElapsed }),
	"otlp.metrics_interval":  duration(func(f *File) *time.Duration { return &f.MetricsInterval }),
	"otlp.batch_size":        intIn(func(f *File) *int { return &f.BatchSize }, 1, 1<<16),
	"otlp.batch_timeout":     duration(func(f *File) *time.Duration { return &f.BatchTimeout }),
	"trace.pids": func(f *File, n *yaml.Node) error {
		if n.Kind != yaml.SequenceNode || n.Decode(&f.Trace.PIDs) != nil {
			return errors.New("must be a list of process ids, such as [1234, 5678]")
		}
		for _, p := range f.Trace.PIDs {
			if p <= 0 {
				return fmt.Errorf("%d is not a process id", p)
			}
		}
		return nil
	},
	"trace.comms": func(f *File, n *yaml.Node) error {
		if n.Kind != yaml.SequenceNode || n.Decode(&f.Trace.Comms) != nil {
			return errors.New("must be a list of process names, such as [nginx, redis-server]")
		}
		return nil
	},
	"database.url": func(f *File, n *yaml.Node) error {
		if err := scalar(n, &f.Database.URL); err != nil {
			return err
		}
		// The value is not quoted: it may hold a password.
		u := f.Database.URL
		if _, err := url.Parse(u); err != nil || !strings.HasPrefix(u, "postgres://") && !strings.HasPrefix(u, "postgresql://") {
			return errors.New("is not a PostgreSQL URL: use postgres://USER@HOST:PORT/DATABASE (the password from PGPASSWORD or ~/.pgpass)")
		}
		return nil
	},
	"database.table_prefix": func(f *File, n *yaml.Node) error {
		if err := scalar(n, &f.Database.TablePrefix); err != nil {
			return err
		}
		if !tablePrefix.MatchString(f.Database.TablePrefix) {
			return fmt.Errorf("%q is not a table prefix: use up to 40 lower-case letters, digits and underscores, not starting with a digit, such as icptrack_", n.Value)
		}
		return nil
	},
	"database.batch_size":    intIn(func(f *File) *int { return &f.Database.BatchSize }, 1, 1<<16),
	"database.batch_timeout": duration(func(f *File) *time.Duration { return &f.Database.BatchTimeout }),
	"database.queue":         intIn(func(f *File) *int { return &f.Database.Queue }, 1, 1<<24),
	"trace.cgroup":           str(func(f *File) *string { return &f.Trace.Cgroup }),
	"trace.container":        str(func(f *File) *string { return &f.Trace.Container }),
	"trace.duration":         duration(func(f *File) *time.Duration { return &f.Trace.Duration }),
}

// Keys lists every key a file may set, sorted.
func Keys() []string {
	out := make([]string, 0, len(keys))
	for k := range keys {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// Load reads the file at path.
func Load(path string) (*File, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("cannot read the configuration file: %w", err)
	}
	return Parse(path, b)
}

// Parse reads a configuration file's contents; path names it in errors.
func Parse(path string, b []byte) (*File, error) {
	f := &File{Path: path, Keys: make(map[string]bool)}
	dec := yaml.NewDecoder(bytes.NewReader(b))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return f, nil // empty: nothing set
		}
		return nil, fmt.Errorf("%s: %v", path, err)
	}
	if len(doc.Content) == 0 {
		return f, nil
	}
	root := doc.Content[0]
	if root.Kind != yaml.MappingNode {
		return nil, &Error{Path: path, Line: root.Line, Err: errors.New("the file must be a mapping of settings, such as \"otlp:\\n  endpoint: http://localhost:4318\"")}
	}
	if err := f.walk(root, ""); err != nil {
		return nil, err
	}
	return f, nil
}

// valueLine is the file's line of err in value v: v's own, or for a
// filter, the line of the filter the error is on.
func valueLine(v *yaml.Node, err error) int {
	if le := (*lineError)(nil); errors.As(err, &le) {
		return le.line
	}
	var fe *filter.Error
	if !errors.As(err, &fe) {
		return v.Line
	}
	line := v.Line + fe.Line - 1
	if v.Style&(yaml.LiteralStyle|yaml.FoldedStyle) != 0 {
		line++ // the text starts on the line after | or >
	}
	return line
}

func (f *File) walk(m *yaml.Node, prefix string) error {
	for i := 0; i+1 < len(m.Content); i += 2 {
		k, v := m.Content[i], m.Content[i+1]
		key := prefix + k.Value
		if set, ok := keys[key]; ok {
			if f.Keys[key] {
				return &Error{Path: f.Path, Line: k.Line, Key: key, Err: errors.New("is set twice")}
			}
			if err := set(f, v); err != nil {
				return &Error{Path: f.Path, Line: valueLine(v, err), Key: key, Err: err}
			}
			f.Keys[key] = true
			continue
		}
		if section(key) {
			if v.Kind != yaml.MappingNode {
				return &Error{Path: f.Path, Line: v.Line, Key: key, Err: fmt.Errorf("is a section: give it keys (%s)", strings.Join(under(key), ", "))}
			}
			if err := f.walk(v, key+"."); err != nil {
				return err
			}
			continue
		}
		return &Error{Path: f.Path, Line: k.Line, Key: key, Err: unknown(prefix, k.Value)}
	}
	return nil
}

// section reports whether key has keys under it.
func section(key string) bool {
	for k := range keys {
		if strings.HasPrefix(k, key+".") {
			return true
		}
	}
	return false
}

// under lists the keys directly in section (or at the top, for "").
func under(section string) []string {
	p := ""
	if section != "" {
		p = section + "."
	}
	seen := map[string]bool{}
	var out []string
	for k := range keys {
		if rest, ok := strings.CutPrefix(k, p); ok {
			name, _, _ := strings.Cut(rest, ".")
			if !seen[name] {
				seen[name] = true
				out = append(out, name)
			}
		}
	}
	sort.Strings(out)
	return out
}

func unknown(prefix, name string) error {
	valid := under(strings.TrimSuffix(prefix, "."))
	msg := "is not a setting"
	if s := closest(name, valid); s != "" {
		msg += fmt.Sprintf(": did you mean %s?", prefix+s)
	}
	return fmt.Errorf("%s; valid keys here are %s", msg, strings.Join(valid, ", "))
}

// closest is the valid name within two edits of name, if there is one.
func closest(name string, valid []string) string {
	best, bestD := "", 3
	for _, v := range valid {
		if d := editDistance(name, v); d < bestD {
			best, bestD = v, d
		}
	}
	return best
}

func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

func scalar(n *yaml.Node, out *string) error {
	if n.Kind != yaml.ScalarNode {
		return errors.New("must be a single value, not a list or a mapping")
	}
	*out = n.Value
	return nil
}

func str(field func(*File) *string) setter {
	return func(f *File, n *yaml.Node) error { return scalar(n, field(f)) }
}

func oneOf(field func(*File) *string, valid ...string) setter {
	return func(f *File, n *yaml.Node) error {
		var v string
		if err := scalar(n, &v); err != nil {
			return err
		}
		for _, ok := range valid {
			if v == ok {
				*field(f) = v
				return nil
			}
		}
		return fmt.Errorf("%q is not one of %s", v, strings.Join(valid, ", "))
	}
}

func boolean(field func(*File) *bool) setter {
	return func(f *File, n *yaml.Node) error {
		if n.Kind != yaml.ScalarNode || n.Decode(field(f)) != nil {
			return fmt.Errorf("%q is not true or false", n.Value)
		}
		return nil
	}
}

func intIn(field func(*File) *int, lo, hi int) setter {
	return func(f *File, n *yaml.Node) error {
		v, err := strconv.Atoi(n.Value)
		if n.Kind != yaml.ScalarNode || err != nil {
			return fmt.Errorf("%q is not a whole number", n.Value)
		}
		if v < lo || v > hi {
			return fmt.Errorf("%d is out of range: use %d to %d", v, lo, hi)
		}
		*field(f) = v
		return nil
	}
}

// number reads a decimal number, such as 0.25 or 20000.
func number(n *yaml.Node) (float64, error) {
	v, err := strconv.ParseFloat(n.Value, 64)
	if n.Kind != yaml.ScalarNode || err != nil {
		return 0, fmt.Errorf("%q is not a number", n.Value)
	}
	return v, nil
}

func duration(field func(*File) *time.Duration) setter {
	return func(f *File, n *yaml.Node) error {
		d, err := time.ParseDuration(n.Value)
		if n.Kind != yaml.ScalarNode || err != nil {
			return fmt.Errorf("%q is not a duration: use a number with a unit, such as 10s, 500ms or 1m", n.Value)
		}
		if d <= 0 {
			return fmt.Errorf("%s must be positive", n.Value)
		}
		*field(f) = d
		return nil
	}
}

func size(field func(*File) *string) setter {
	return func(f *File, n *yaml.Node) error {
		if err := scalar(n, field(f)); err != nil {
			return err
		}
		_, err := ParseSize(n.Value)
		return err
	}
}

func stringMap(field func(*File) *map[string]string) setter {
	return func(f *File, n *yaml.Node) error {
		if n.Kind != yaml.MappingNode || n.Decode(field(f)) != nil {
			return errors.New("must be a mapping of names to values")
		}
		return nil
	}
}

// ParseSize reads a byte size of at most 2 GiB: 4096, 64K, 64KiB, 16M,
// 16MiB, 1G, 1GiB (ParseBytes, bounded for what is held in memory).
func ParseSize(s string) (int, error) {
	v, err := ParseBytes(s)
	if err != nil || v > 1<<31 {
		return 0, fmt.Errorf("%q is not a size: use bytes or a number with K, M or G (KiB, MiB, GiB)", s)
	}
	return int(v), nil
}

// CheckListenAddress checks a host:port to serve on.
func CheckListenAddress(addr string) error {
	i := strings.LastIndex(addr, ":")
	if i < 0 {
		return fmt.Errorf("%q is not host:port: use an address such as 127.0.0.1:9464 or :9464", addr)
	}
	if p, err := strconv.Atoi(addr[i+1:]); err != nil || p < 0 || p > 65535 {
		return fmt.Errorf("%q has no valid port: use an address such as 127.0.0.1:9464 or :9464", addr)
	}
	return nil
}
