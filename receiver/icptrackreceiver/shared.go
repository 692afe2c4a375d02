package icptrackreceiver

import (
	"context"
	"sync"
	"sync/atomic"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/component/componentstatus"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/receiver"
)

// One receiver in a Collector's configuration may feed a traces, a
// metrics and a logs pipeline. The Collector creates a component for each
// pipeline, with the same *Config; they share one instance, and so one
// set of BPF programs, reference-counted: the first Start loads and
// attaches them, the last Shutdown detaches and frees them.

var instances = struct {
	sync.Mutex
	m map[*Config]*instance
}{m: make(map[*Config]*instance)}

// starts counts the times BPF programs were loaded, for tests.
var starts atomic.Int64

// instance is what the pipelines of one receiver share.
type instance struct {
	cfg *Config
	set receiver.Settings

	mu      sync.Mutex
	traces  consumer.Traces
	metrics consumer.Metrics
	logs    consumer.Logs
	members int // components created and not shut down
	started int // components started and not shut down
	run     *running
}

// member is one pipeline's component.
type member struct {
	inst    *instance
	started bool
	done    bool
}

// join finds or makes cfg's instance, lets add register a consumer, and
// returns a new member of it.
func join(cfg *Config, set receiver.Settings, add func(*instance)) *member {
	instances.Lock()
	defer instances.Unlock()
	inst := instances.m[cfg]
	if inst == nil {
		inst = &instance{cfg: cfg, set: set}
		instances.m[cfg] = inst
	}
	inst.mu.Lock()
	defer inst.mu.Unlock()
	add(inst)
	inst.members++
	return &member{inst: inst}
}

// Start starts the shared instance if it is the first to.
func (m *member) Start(ctx context.Context, host component.Host) error {
	i := m.inst
	i.mu.Lock()
	defer i.mu.Unlock()
	if m.started || m.done {
		return nil
	}
	if i.started == 0 {
		run, err := i.start(ctx, host)
		if err != nil {
			return err
		}
		starts.Add(1)
		i.run = run
	}
	i.started++
	m.started = true
	if err := i.run.unavailable(); err != nil {
		// Running, without some mechanisms: degraded, not failed.
		componentstatus.ReportStatus(host, componentstatus.NewRecoverableErrorEvent(err))
	}
	return nil
}

// Shutdown stops the shared instance if it is the last to, and forgets
// it once every member is gone.
func (m *member) Shutdown(ctx context.Context) error {
	i := m.inst
	instances.Lock()
	defer instances.Unlock()
	i.mu.Lock()
	defer i.mu.Unlock()
	if m.done {
		return nil
	}
	m.done = true
	var err error
	if m.started {
		m.started = false
		if i.started--; i.started == 0 && i.run != nil {
			err = i.run.stop(ctx)
			i.run = nil
		}
	}
	if i.members--; i.members == 0 && instances.m[i.cfg] == i {
		delete(instances.m, i.cfg)
	}
	return err
}
