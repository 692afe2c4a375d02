package icptrackreceiver

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/icptrack/icptrack/exporter"
	"github.com/icptrack/icptrack/filter"
	"github.com/icptrack/icptrack/flow"
	"github.com/icptrack/icptrack/internal/config"
	"github.com/icptrack/icptrack/internal/selector"
)

// The receiver's modes.
const (
	modeEvents  = "events"
	modeMetrics = "metrics"
)

// maxPayloadBytes is the most payload an operation can carry; the same
// bound as the standalone agent's --payload.
const maxPayloadBytes = 4096

// Config is the receiver's configuration.
type Config struct {
	// Mode is events (every operation: spans, log records and metrics)
	// or metrics (only metrics, counted in the kernel, at a fraction of
	// the cost; traces and logs pipelines then get nothing).
	Mode string `mapstructure:"mode"`
	// Mechanisms to trace: names (pipe, unix_stream, posix_mq, …) or the
	// groups unix, inet, mq, shm and all.
	Mechanisms []string `mapstructure:"mechanisms"`
	// PayloadBytes copies the first bytes of each operation's data into
	// an ipc.payload span event and the log record; 0 turns it off.
	PayloadBytes int `mapstructure:"payload_bytes"`
	// Include selects the processes to trace (and what they fork from
	// then on); empty traces the whole host but the Collector itself.
	Include IncludeConfig `mapstructure:"include"`
	// CausalStitching makes a thread's sends the children of the receive
	// it made before them.
	CausalStitching bool `mapstructure:"causal_stitching"`
	// ServiceName is the service.name rule for traced processes: text
	// with {exe}, {comm} or {container}.
	ServiceName string `mapstructure:"service_name"`
	// Cmdline adds each process's command line to its resource.
	Cmdline bool `mapstructure:"cmdline"`
	// RingBufferSize is the kernel-to-receiver buffer: a power of two
	// such as 16MiB.
	RingBufferSize string `mapstructure:"ring_buffer_size"`
	// DrainInterval is how often the ring buffer is read when it is not
	// filling up.
	DrainInterval time.Duration `mapstructure:"drain_interval"`
	// MetricsInterval is how often the metrics go down the pipeline.
	MetricsInterval time.Duration `mapstructure:"metrics_interval"`
	// Filter keeps only the operations this expression matches (the
	// filter language, README: Filters), after correlation, for every
	// pipeline.
	Filter string `mapstructure:"filter"`
	// QueueSize bounds the batches waiting for each pipeline, while it
	// is slow or refuses with a retryable error; more are dropped and
	// counted.
	QueueSize int `mapstructure:"queue_size"`
	// Coalesce makes the kernel send a run of same-direction operations
	// by one thread on one byte stream, within this long of the first,
	// as one record with their count; 0 sends a record per operation.
	Coalesce time.Duration `mapstructure:"coalesce"`

	// test is set only by this package's tests; no configuration key
	// reaches it. nil: the receiver runs as configured.
	test *testHooks

	// prevent unkeyed literal initialization
	_ struct{}
}

// IncludeConfig names the processes to trace; any match selects.
type IncludeConfig struct {
	PIDs      []int    `mapstructure:"pids"`
	Comms     []string `mapstructure:"comms"`
	Cgroup    string   `mapstructure:"cgroup"`
	Container string   `mapstructure:"container"`
}

func (i IncludeConfig) spec() selector.Spec {
	return selector.Spec{PIDs: i.PIDs, Comms: i.Comms, Cgroup: i.Cgroup, Container: i.Container}
}

// includeKey names a selector field as the configuration does.
func includeKey(field string) string { return "include::" + field }

func createDefaultConfig() *Config {
	return &Config{
		Mode:            modeEvents,
		Mechanisms:      []string{"all"},
		CausalStitching: true,
		ServiceName:     exporter.DefaultServiceName,
		RingBufferSize:  "16MiB",
		DrainInterval:   50 * time.Millisecond,
		MetricsInterval: 10 * time.Second,
		QueueSize:       16,
		Coalesce:        time.Millisecond,
	}
}

// Validate says which key is wrong and why.
func (c *Config) Validate() error {
	var errs []error
	bad := func(key string, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: %s", key, fmt.Sprintf(format, args...)))
	}
	switch c.Mode {
	case modeEvents:
	case modeMetrics:
		if c.PayloadBytes != 0 {
			bad("payload_bytes", "needs mode events: metrics mode sends no data")
		}
	default:
		bad("mode", "%q is not a mode: use events or metrics", c.Mode)
	}
	if _, err := c.mechanisms(); err != nil {
		bad("mechanisms", "%v", err)
	}
	if c.PayloadBytes < 0 || c.PayloadBytes > maxPayloadBytes {
		bad("payload_bytes", "%d is out of range: use 0 (off) to %d", c.PayloadBytes, maxPayloadBytes)
	}
	if err := c.Include.spec().Check(includeKey); err != nil {
		errs = append(errs, err)
	}
	if err := exporter.ValidateServiceName(c.ServiceName); err != nil {
		bad("service_name", "%v", err)
	}
	if n, err := config.ParseSize(c.RingBufferSize); err != nil {
		bad("ring_buffer_size", "%v", err)
	} else if n < os.Getpagesize() || n&(n-1) != 0 {
		bad("ring_buffer_size", "%s is not a power of two of at least %d bytes: try 16MiB", c.RingBufferSize, os.Getpagesize())
	}
	if c.DrainInterval <= 0 {
		bad("drain_interval", "%s must be positive, such as 50ms", c.DrainInterval)
	}
	if c.MetricsInterval <= 0 {
		bad("metrics_interval", "%s must be positive, such as 10s", c.MetricsInterval)
	}
	if c.QueueSize <= 0 {
		bad("queue_size", "%d must be positive", c.QueueSize)
	}
	if c.Coalesce < 0 {
		bad("coalesce", "%s is negative: use a duration such as 1ms, or 0 to send every operation on its own", c.Coalesce)
	}
	if flt, err := c.filter(); err != nil {
		bad("filter", "%v", err)
	} else if flt != nil && c.Mode == modeMetrics {
		bad("filter", "needs mode events: metrics mode counts operations in the kernel, where a filter cannot run")
	} else if flt != nil && flt.UsesPayload() && c.PayloadBytes == 0 {
		bad("filter", "tests payload, which needs payload capture: set payload_bytes, the bytes to capture of each operation (such as 256)")
	}
	return errors.Join(errs...)
}

// filter is the compiled filter, nil when there is none. A mistake is
// shown with a caret under it.
func (c *Config) filter() (*filter.Filter, error) {
	if strings.TrimSpace(c.Filter) == "" {
		return nil, nil
	}
	flt, err := filter.Parse(c.Filter)
	var fe *filter.Error
	if errors.As(err, &fe) {
		return nil, errors.New(fe.Caret())
	}
	return flt, err
}

func (c *Config) mechanisms() (flow.MechanismSet, error) {
	if len(c.Mechanisms) == 0 {
		return 0, fmt.Errorf("name at least one of %s", strings.Join(flow.MechanismNames(), ", "))
	}
	return flow.ParseMechanisms(strings.Join(c.Mechanisms, ","))
}
