package exporter

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"

	"github.com/icptrack/icptrack/flow"
	"github.com/icptrack/icptrack/semconv"
)

// DurationBuckets are ipc.operation.duration's bucket bounds in seconds:
// 1µs to 5s, about three to a decade.
var DurationBuckets = []float64{
	1e-6, 2.5e-6, 5e-6, 1e-5, 2.5e-5, 5e-5, 1e-4, 2.5e-4, 5e-4,
	1e-3, 2.5e-3, 5e-3, 1e-2, 2.5e-2, 5e-2, 0.1, 0.25, 0.5, 1, 2.5, 5,
}

// MaxExecutables bounds the distinct process.executable.name values on
// metrics; operations of executables beyond it are counted under
// OtherExecutable, so cardinality stays bounded whatever runs.
const MaxExecutables = 256

// OtherExecutable is the executable name metrics use past MaxExecutables.
const OtherExecutable = "_other"

// SelfStats are icptrack's own counters, read when metrics are collected.
type SelfStats struct {
	Processed         uint64 // operations read from the kernel
	RingBufferDropped uint64 // operations the kernel could not hand over
	ExportDropped     uint64 // spans the export queue or backend lost
	Sinks             []NamedSinkStats
}

// Metrics records operations as the ipc.* metrics of the semantic
// conventions. Record is not safe for concurrent use: call it from the
// goroutine that emits operations. Collection (Observe's results, the
// self-metrics) may run on any goroutine.
//
// The message and byte counters are observable: Record adds to counters
// of its own, and collection reads them. A synchronous SDK counter costs
// an attribute-set check and a lookup on every Add, and at hundreds of
// thousands of operations a second two of those per operation were a
// tenth of icptrack's time. Only the duration histogram goes through
// the SDK for each operation.
type Metrics struct {
	duration       metric.Float64Histogram
	sent, received metric.Int64ObservableCounter
	io             metric.Int64ObservableCounter

	sets map[metricKey]*opSets
	exes executables
	// counted are the sets with counters, for the collection callback;
	// Record appends, collection reads, under mu.
	mu      sync.Mutex
	counted []*opSets

	backlog, attachments [flow.MechanismCount]atomic.Int64
	// observed is set once Observe has run: until then (and in metrics
	// mode, where nothing correlates channels) backlog and attachments
	// are unknown, and not reported as zero.
	observed atomic.Bool
	reg      metric.Registration
}

type metricKey struct {
	mech    flow.Mechanism
	op      flow.OpType
	exe     string
	errType string
}

// opSets are the prepared attribute options for one metricKey, and its
// message and byte counts when it counts any (sends and receives that
// did not fail).
type opSets struct {
	record []metric.RecordOption

	counter         metric.Int64ObservableCounter // sent or received
	countSet, ioSet metric.ObserveOption
	messages, bytes atomic.Int64
}

// NewMetrics creates the instruments on mp. self, when not nil, is called
// at each collection for the self-metrics; it must be safe to call from
// any goroutine.
func NewMetrics(mp metric.MeterProvider, self func() SelfStats) (*Metrics, error) {
	meter := mp.Meter(ScopeName, metric.WithInstrumentationVersion(Version()))
	m := &Metrics{sets: make(map[metricKey]*opSets), exes: executables{}}
	var err error
	if m.duration, err = meter.Float64Histogram(semconv.MetricIPCOperationDuration,
		metric.WithUnit(semconv.MetricIPCOperationDurationUnit),
		metric.WithDescription(semconv.MetricIPCOperationDurationDescription),
		metric.WithExplicitBucketBoundaries(DurationBuckets...)); err != nil {
		return nil, err
	}
	if m.sent, err = meter.Int64ObservableCounter(semconv.MetricIPCSentMessages,
		metric.WithUnit(semconv.MetricIPCSentMessagesUnit),
		metric.WithDescription(semconv.MetricIPCSentMessagesDescription)); err != nil {
		return nil, err
	}
	if m.received, err = meter.Int64ObservableCounter(semconv.MetricIPCReceivedMessages,
		metric.WithUnit(semconv.MetricIPCReceivedMessagesUnit),
		metric.WithDescription(semconv.MetricIPCReceivedMessagesDescription)); err != nil {
		return nil, err
	}
	if m.io, err = meter.Int64ObservableCounter(semconv.MetricIPCIO,
		metric.WithUnit(semconv.MetricIPCIOUnit),
		metric.WithDescription(semconv.MetricIPCIODescription)); err != nil {
		return nil, err
	}
	backlog, err := meter.Int64ObservableGauge(semconv.MetricIPCChannelBacklog,
		metric.WithUnit(semconv.MetricIPCChannelBacklogUnit),
		metric.WithDescription(semconv.MetricIPCChannelBacklogDescription))
	if err != nil {
		return nil, err
	}
	attachments, err := meter.Int64ObservableUpDownCounter(semconv.MetricIPCShmAttachments,
		metric.WithUnit(semconv.MetricIPCShmAttachmentsUnit),
		metric.WithDescription(semconv.MetricIPCShmAttachmentsDescription))
	if err != nil {
		return nil, err
	}
	processed, err := meter.Int64ObservableCounter(semconv.MetricIcptrackEventsProcessed,
		metric.WithUnit(semconv.MetricIcptrackEventsProcessedUnit),
		metric.WithDescription(semconv.MetricIcptrackEventsProcessedDescription))
	if err != nil {
		return nil, err
	}
	dropped, err := meter.Int64ObservableCounter(semconv.MetricIcptrackEventsDropped,
		metric.WithUnit(semconv.MetricIcptrackEventsDroppedUnit),
		metric.WithDescription(semconv.MetricIcptrackEventsDroppedDescription))
	if err != nil {
		return nil, err
	}

	sinkWritten, err := meter.Int64ObservableCounter(semconv.MetricIcptrackSinkWritten,
		metric.WithUnit(semconv.MetricIcptrackSinkWrittenUnit),
		metric.WithDescription(semconv.MetricIcptrackSinkWrittenDescription))
	if err != nil {
		return nil, err
	}
	sinkDropped, err := meter.Int64ObservableCounter(semconv.MetricIcptrackSinkDropped,
		metric.WithUnit(semconv.MetricIcptrackSinkDroppedUnit),
		metric.WithDescription(semconv.MetricIcptrackSinkDroppedDescription))
	if err != nil {
		return nil, err
	}
	sinkLagging, err := meter.Int64ObservableGauge(semconv.MetricIcptrackSinkLagging,
		metric.WithUnit(semconv.MetricIcptrackSinkLaggingUnit),
		metric.WithDescription(semconv.MetricIcptrackSinkLaggingDescription))
	if err != nil {
		return nil, err
	}

	var mechSets [flow.MechanismCount]metric.ObserveOption
	for mech := flow.Mechanism(1); int(mech) < flow.MechanismCount; mech++ {
		mechSets[mech] = metric.WithAttributeSet(attribute.NewSet(attribute.String(semconv.AttrIPCMechanism, mech.String())))
	}
	ringBuffer := metric.WithAttributeSet(attribute.NewSet(attribute.String(semconv.AttrIPCDropReason, semconv.IPCDropReasonRingBuffer)))
	exportQueue := metric.WithAttributeSet(attribute.NewSet(attribute.String(semconv.AttrIPCDropReason, semconv.IPCDropReasonExportQueue)))
	m.reg, err = meter.RegisterCallback(func(_ context.Context, o metric.Observer) error {
		m.mu.Lock()
		counted := m.counted
		m.mu.Unlock()
		for _, s := range counted {
			if n := s.messages.Load(); n > 0 {
				o.ObserveInt64(s.counter, n, s.countSet)
			}
			if n := s.bytes.Load(); n > 0 {
				o.ObserveInt64(m.io, n, s.ioSet)
			}
		}
		for mech := flow.Mechanism(1); int(mech) < flow.MechanismCount && m.observed.Load(); mech++ {
			if shm(mech) {
				o.ObserveInt64(attachments, m.attachments[mech].Load(), mechSets[mech])
			} else if mech != flow.Signal {
				o.ObserveInt64(backlog, m.backlog[mech].Load(), mechSets[mech])
			}
		}
		if self != nil {
			s := self()
			o.ObserveInt64(processed, int64(s.Processed))
			o.ObserveInt64(dropped, int64(s.RingBufferDropped), ringBuffer)
			o.ObserveInt64(dropped, int64(s.ExportDropped), exportQueue)
			for _, k := range s.Sinks {
				set := metric.WithAttributeSet(attribute.NewSet(attribute.String(semconv.AttrIPCSinkName, k.Name)))
				o.ObserveInt64(sinkWritten, int64(k.Written), set)
				o.ObserveInt64(sinkDropped, int64(k.Dropped), set)
				o.ObserveInt64(sinkLagging, int64(k.Lagging), set)
			}
		}
		return nil
	}, m.sent, m.received, m.io, backlog, attachments, processed, dropped, sinkWritten, sinkDropped, sinkLagging)
	if err != nil {
		return nil, err
	}
	return m, nil
}

func shm(m flow.Mechanism) bool {
	return m == flow.SysVShm || m == flow.POSIXShm || m == flow.Memfd
}

// Record counts one operation.
func (m *Metrics) Record(op *flow.Operation) {
	sets := m.setsFor(op)
	n := op.Ops()
	d := OpDuration(op).Seconds()
	// A coalesced run: each of its operations at their mean time in the
	// call, so that the histogram counts operations, not records.
	for range n {
		m.duration.Record(context.Background(), d, sets.record...)
	}
	if op.Error != "" {
		return
	}
	switch op.Op {
	case flow.Send:
	case flow.Receive:
		if op.Bytes == 0 && !message(op.Mechanism) {
			return // end of file
		}
	default:
		return
	}
	sets.messages.Add(n)
	if op.Bytes > 0 {
		sets.bytes.Add(op.Bytes)
	}
}

// OpDuration is how long one of the operations op stands for took: its
// duration, or for a coalesced run the mean time its operations spent in
// their calls.
func OpDuration(op *flow.Operation) time.Duration {
	if op.Count > 1 {
		return op.Busy / time.Duration(op.Count)
	}
	return op.Duration
}

// message reports whether the mechanism moves messages, which may be
// empty, rather than bytes.
func message(mech flow.Mechanism) bool {
	switch mech {
	case flow.Pipe, flow.FIFO, flow.UnixStream, flow.TCP:
		return false
	}
	return true
}

// Observe takes the correlator's backlog and attachments for the next
// collection. Call it from the goroutine that owns the correlator, now
// and then: it walks every channel.
func (m *Metrics) Observe(c *flow.Correlator) {
	backlog, attachments := c.Backlog(), c.Attachments()
	for i := range backlog {
		m.backlog[i].Store(backlog[i])
		m.attachments[i].Store(attachments[i])
	}
	m.observed.Store(true)
}

func (m *Metrics) setsFor(op *flow.Operation) *opSets {
	errType := ""
	if IsError(op.Error) {
		errType = op.Error
	}
	k := metricKey{mech: op.Mechanism, op: op.Op, exe: m.exes.name(op), errType: errType}
	if s, ok := m.sets[k]; ok {
		return s
	}
	mech := attribute.String(semconv.AttrIPCMechanism, op.Mechanism.String())
	exe := attribute.String(semconv.AttrProcessExecutableName, k.exe)
	dur := []attribute.KeyValue{mech, attribute.String(semconv.AttrIPCOperationType, op.Op.String()), exe}
	if errType != "" {
		dur = append(dur, attribute.String(semconv.AttrErrorType, errType))
	}
	s := &opSets{record: []metric.RecordOption{metric.WithAttributeSet(attribute.NewSet(dur...))}}
	if op.Op == flow.Send || op.Op == flow.Receive {
		dir := semconv.IPCDirectionSend
		if op.Op == flow.Receive {
			dir = semconv.IPCDirectionReceive
		}
		s.counter = m.sent
		if op.Op == flow.Receive {
			s.counter = m.received
		}
		s.countSet = metric.WithAttributeSet(attribute.NewSet(mech, exe))
		s.ioSet = metric.WithAttributeSet(attribute.NewSet(mech, attribute.String(semconv.AttrIPCDirection, dir), exe))
		if errType == "" {
			m.mu.Lock()
			m.counted = append(m.counted, s)
			m.mu.Unlock()
		}
	}
	m.sets[k] = s
	return s
}

// executables caps the distinct process.executable.name values metrics
// carry at MaxExecutables; the rest are counted as OtherExecutable.
type executables map[string]string

// name is op's process.executable.name, or OtherExecutable past the cap.
func (e executables) name(op *flow.Operation) string {
	name := ExecutableName(op)
	if n, ok := e[name]; ok {
		return n
	}
	if len(e) >= MaxExecutables {
		return OtherExecutable
	}
	e[name] = name
	return name
}

// Close stops the observations.
func (m *Metrics) Close() error { return m.reg.Unregister() }
