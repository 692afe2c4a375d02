//go:build linux

package icptrackreceiver

import (
	"context"
	"encoding/base64"
	"fmt"
	"regexp"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/pipeline"
	"go.opentelemetry.io/collector/receiver"
	"go.opentelemetry.io/collector/receiver/receivertest"

	"github.com/icptrack/icptrack/receiver/icptrackreceiver/internal/metadata"
	"github.com/icptrack/icptrack/semconv"
)

// What one generated item is, for CheckConsumeContract, which follows
// each item by the test_id attribute of the spans, log records and data
// points that carry it, and wants each accepted once or dropped for good:
//
//   - traces and logs: one operation. The generator has the helper send
//     datagrams whose payload is a marker it chose ("icp-000042"), and
//     expects two operations of each: "icp-000042/send" and
//     "icp-000042/receive". The test hooks read the marker from the
//     payload the kernel captured, and the operation type, from each
//     span and log record. An operation that is not one of the
//     generator's gets an id the generator never made, and fails the
//     check, as does one the receiver loses.
//
//   - metrics: one report, that is one collection of the receiver's
//     metrics. A data point is not an operation's: it aggregates all the
//     operations of its attribute set since the receiver started
//     (cumulative), and the next report carries it again, updated. An
//     operation's id on it would be in every later report, accepted many
//     times, and the points of an operation recorded just after a report
//     would be in none. What the receiver hands on as a unit, and what a
//     refusal retries or drops, is the report: so each report is an item,
//     and every data point in it carries the report's id. The generator
//     makes its IPC and then has the receiver report at once (the
//     periodic reports are off: metrics_interval is an hour), under an id
//     it chose. That the reports really count the generator's operations
//     is checked besides the contract: when no report was refused, the
//     last one counts exactly the datagrams sent and received.

const (
	// generateCount is how many times the checker calls Generate per
	// scenario; each call makes exchangesPerCall round trips.
	generateCount    = 100
	exchangesPerCall = 2
)

var marker = regexp.MustCompile(`^icp-[0-9]{6}$`)

// contractConfig traces the helper's datagrams, with their payload.
func contractConfig(hooks *testHooks) *Config {
	cfg := createDefaultConfig()
	cfg.Mechanisms = []string{"unix_dgram"}
	cfg.Include.Comms = []string{helperComm}
	cfg.PayloadBytes = 32
	cfg.Coalesce = 0 // one operation per datagram, whatever the kernel does
	cfg.MetricsInterval = time.Hour
	// Room for every batch of a scenario: a batch dropped for a full queue
	// is counted, but the consumer never sees it, and the checker counts
	// it as lost. That is the one loss the contract leaves to receivers
	// whose source cannot be slowed, and is tested in queue_test.go.
	cfg.QueueSize = generateCount + 16
	// Short waits between retries: the checker refuses half the batches
	// and gives the receiver 5s after the last Generate.
	hooks.retry = backoff{initial: time.Millisecond, max: 20 * time.Millisecond}
	// Small batches, so that the checker's decisions, one per batch,
	// mix within a scenario: with the default, the generator's
	// operations would all go in one or two batches.
	hooks.batch = 8
	cfg.test = hooks
	return cfg
}

func TestConsumeContractTraces(t *testing.T) {
	needsBPF(t)
	g := newIPCGenerator(t, pipeline.SignalTraces)
	cfg := contractConfig(&testHooks{traces: stampSpans})
	g.run(NewFactory(), cfg)
}

func TestConsumeContractLogs(t *testing.T) {
	needsBPF(t)
	g := newIPCGenerator(t, pipeline.SignalLogs)
	cfg := contractConfig(&testHooks{logs: stampLogRecords})
	g.run(NewFactory(), cfg)
}

func TestConsumeContractMetrics(t *testing.T) {
	needsBPF(t)
	g := newIPCGenerator(t, pipeline.SignalMetrics)
	cfg := contractConfig(&testHooks{metrics: g.stampReport})
	rec := &reports{}
	g.run(rec.factory(), cfg)

	// Besides the contract: the reports count the generator's datagrams.
	require.Len(t, rec.scenarios, 4, "one receiver per scenario of the checker")
	exact := 0
	for n, s := range rec.scenarios {
		want := int64(g.exchanged[n])
		sent, received := s.counts()
		if sent > want || received > want {
			t.Errorf("scenario %d: reports count %d datagrams sent and %d received, the helper sent %d", n, sent, received, want)
		}
		if s.refusals == 0 {
			exact++
			if sent != want || received != want {
				t.Errorf("scenario %d accepted every report: the last counts %d datagrams sent and %d received, want %d",
					n, sent, received, want)
			}
		}
	}
	require.Positive(t, exact, "no scenario accepted every report: the counts were not checked exactly")
}

// ipcGenerator is the checker's generator: real datagrams through the
// helper, traced by the receiver under test.
type ipcGenerator struct {
	t      *testing.T
	signal pipeline.Signal
	bin    string
	cfg    *Config
	helper *ipcHelper
	next   atomic.Int64
	// exchanges counts the round trips of the scenario running;
	// exchanged keeps the count of each scenario that ended.
	exchanges atomic.Int64
	exchanged []int64
	// report is the id of the report being made; reportMu makes one at
	// a time.
	reportMu sync.Mutex
	report   atomic.Pointer[string]
	unasked  atomic.Int64
}

func newIPCGenerator(t *testing.T, signal pipeline.Signal) *ipcGenerator {
	return &ipcGenerator{t: t, signal: signal, bin: helperBinary(t)}
}

func (g *ipcGenerator) run(f receiver.Factory, cfg *Config) {
	g.cfg = cfg
	receivertest.CheckConsumeContract(receivertest.CheckConsumeContractParams{
		T:             g.t,
		Factory:       f,
		Signal:        g.signal,
		Config:        cfg,
		Generator:     g,
		GenerateCount: generateCount,
	})
}

// Start starts the helper; the checker has started the receiver, which
// selects it when it starts.
func (g *ipcGenerator) Start() {
	h, err := startIPCHelper(g.bin)
	require.NoError(g.t, err)
	g.helper = h
	g.exchanges.Store(0)
}

func (g *ipcGenerator) Stop() {
	require.NoError(g.t, g.helper.stop())
	g.exchanged = append(g.exchanged, g.exchanges.Load())
}

func (g *ipcGenerator) Generate() []receivertest.UniqueIDAttrVal {
	var ids []receivertest.UniqueIDAttrVal
	for range exchangesPerCall {
		m := fmt.Sprintf("icp-%06d", g.next.Add(1))
		require.NoError(g.t, g.helper.exchange(m))
		g.exchanges.Add(1)
		ids = append(ids, receivertest.UniqueIDAttrVal(m+"/send"), receivertest.UniqueIDAttrVal(m+"/receive"))
	}
	if g.signal != pipeline.SignalMetrics {
		return ids
	}
	id := fmt.Sprintf("report-%06d", g.next.Add(1))
	g.reportMu.Lock()
	defer g.reportMu.Unlock()
	run := runningOf(g.cfg)
	require.NotNil(g.t, run, "the receiver is not running")
	g.report.Store(&id)
	run.collector.collect()
	g.report.Store(nil)
	return []receivertest.UniqueIDAttrVal{receivertest.UniqueIDAttrVal(id)}
}

// stampReport puts the id of the report being made on every data point.
// A report nobody asked for (the last one, at shutdown, after the
// checker has done its accounting) gets an id of its own.
func (g *ipcGenerator) stampReport(md pmetric.Metrics) {
	id := fmt.Sprintf("unasked-report-%d", g.unasked.Add(1))
	if p := g.report.Load(); p != nil {
		id = *p
	}
	forEachDataPoint(md, func(attrs pcommon.Map) { attrs.PutStr(receivertest.UniqueIDAttrName, id) })
}

// runningOf is the started instance of cfg, or nil.
func runningOf(cfg *Config) *running {
	instances.Lock()
	defer instances.Unlock()
	i := instances.m[cfg]
	if i == nil {
		return nil
	}
	i.mu.Lock()
	defer i.mu.Unlock()
	return i.run
}

// operationTestID is "<marker>/<operation type>" for the generator's
// operations, and for anything else an id that says what it was.
func operationTestID(payload []byte, op string, id string) string {
	if marker.Match(payload) {
		return string(payload) + "/" + op
	}
	return fmt.Sprintf("not-generated:%s:%s:%q", id, op, payload)
}

func stampSpans(td ptrace.Traces) {
	rss := td.ResourceSpans()
	for i := 0; i < rss.Len(); i++ {
		sss := rss.At(i).ScopeSpans()
		for j := 0; j < sss.Len(); j++ {
			spans := sss.At(j).Spans()
			for k := 0; k < spans.Len(); k++ {
				s := spans.At(k)
				var payload []byte
				for e := 0; e < s.Events().Len(); e++ {
					if ev := s.Events().At(e); ev.Name() == semconv.EventIPCPayload {
						v, _ := ev.Attributes().Get(semconv.AttrIPCPayloadContent)
						payload, _ = base64.StdEncoding.DecodeString(v.Str())
					}
				}
				op, _ := s.Attributes().Get(semconv.AttrIPCOperationType)
				s.Attributes().PutStr(receivertest.UniqueIDAttrName, operationTestID(payload, op.Str(), s.SpanID().String()))
			}
		}
	}
}

func stampLogRecords(ld plog.Logs) {
	rls := ld.ResourceLogs()
	for i := 0; i < rls.Len(); i++ {
		sls := rls.At(i).ScopeLogs()
		for j := 0; j < sls.Len(); j++ {
			records := sls.At(j).LogRecords()
			for k := 0; k < records.Len(); k++ {
				a := records.At(k).Attributes()
				p, _ := a.Get("payload")
				payload, _ := base64.StdEncoding.DecodeString(p.Str())
				op, _ := a.Get("op")
				id, _ := a.Get("id")
				a.PutStr(receivertest.UniqueIDAttrName, operationTestID(payload, op.Str(), id.Str()))
			}
		}
	}
}

func forEachDataPoint(md pmetric.Metrics, f func(pcommon.Map)) {
	rms := md.ResourceMetrics()
	for i := 0; i < rms.Len(); i++ {
		sms := rms.At(i).ScopeMetrics()
		for j := 0; j < sms.Len(); j++ {
			ms := sms.At(j).Metrics()
			for k := 0; k < ms.Len(); k++ {
				m := ms.At(k)
				switch m.Type() {
				case pmetric.MetricTypeGauge:
					for p := 0; p < m.Gauge().DataPoints().Len(); p++ {
						f(m.Gauge().DataPoints().At(p).Attributes())
					}
				case pmetric.MetricTypeSum:
					for p := 0; p < m.Sum().DataPoints().Len(); p++ {
						f(m.Sum().DataPoints().At(p).Attributes())
					}
				case pmetric.MetricTypeHistogram:
					for p := 0; p < m.Histogram().DataPoints().Len(); p++ {
						f(m.Histogram().DataPoints().At(p).Attributes())
					}
				case pmetric.MetricTypeExponentialHistogram:
					for p := 0; p < m.ExponentialHistogram().DataPoints().Len(); p++ {
						f(m.ExponentialHistogram().DataPoints().At(p).Attributes())
					}
				case pmetric.MetricTypeSummary:
					for p := 0; p < m.Summary().DataPoints().Len(); p++ {
						f(m.Summary().DataPoints().At(p).Attributes())
					}
				}
			}
		}
	}
}

// reports sees, for each receiver the checker creates (one per
// scenario), the reports its consumer accepted and whether it refused
// any.
type reports struct {
	mu        sync.Mutex
	scenarios []*scenarioReports
}

type scenarioReports struct {
	mu       sync.Mutex
	accepted []pmetric.Metrics
	refusals int
	next     consumer.Metrics
}

func (s *scenarioReports) ConsumeMetrics(ctx context.Context, md pmetric.Metrics) error {
	err := s.next.ConsumeMetrics(ctx, md)
	s.mu.Lock()
	defer s.mu.Unlock()
	if err != nil {
		s.refusals++
	} else {
		s.accepted = append(s.accepted, md)
	}
	return err
}

func (s *scenarioReports) Capabilities() consumer.Capabilities { return s.next.Capabilities() }

// counts are the datagrams the last accepted report counts as sent and
// as received.
func (s *scenarioReports) counts() (sent, received int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.accepted) == 0 {
		return 0, 0
	}
	md := s.accepted[len(s.accepted)-1]
	rms := md.ResourceMetrics()
	for i := 0; i < rms.Len(); i++ {
		sms := rms.At(i).ScopeMetrics()
		for j := 0; j < sms.Len(); j++ {
			ms := sms.At(j).Metrics()
			for k := 0; k < ms.Len(); k++ {
				m := ms.At(k)
				var into *int64
				switch m.Name() {
				case semconv.MetricIPCSentMessages:
					into = &sent
				case semconv.MetricIPCReceivedMessages:
					into = &received
				default:
					continue
				}
				for p := 0; p < m.Sum().DataPoints().Len(); p++ {
					dp := m.Sum().DataPoints().At(p)
					if mech, _ := dp.Attributes().Get(semconv.AttrIPCMechanism); mech.Str() == "unix_dgram" {
						*into += dp.IntValue()
					}
				}
			}
		}
	}
	return sent, received
}

// factory is the receiver's, with each metrics consumer seen by r.
func (r *reports) factory() receiver.Factory {
	return receiver.NewFactory(metadata.Type,
		func() component.Config { return createDefaultConfig() },
		receiver.WithMetrics(func(ctx context.Context, set receiver.Settings, cfg component.Config, next consumer.Metrics) (receiver.Metrics, error) {
			s := &scenarioReports{next: next}
			r.mu.Lock()
			r.scenarios = append(r.scenarios, s)
			r.mu.Unlock()
			return createMetrics(ctx, set, cfg, s)
		}, metadata.MetricsStability))
}
