//go:build linux

package icptrackreceiver

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/icptrack/icptrack/internal/kerneltest"

	"github.com/cilium/ebpf"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/receiver/receivertest"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/icptrack/icptrack/receiver/icptrackreceiver/internal/metadata"
	"github.com/icptrack/icptrack/receiver/icptrackreceiver/internal/metadatatest"
	"github.com/icptrack/icptrack/semconv"
)

// needsBPF skips a test that loads BPF when not root (fails it in CI).
func needsBPF(t *testing.T) { kerneltest.NeedsRoot(t, "this test") }

// buildDemo builds the bundled demo as demo-client with its other parts
// beside it, and returns demo-client's path.
func buildDemo(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	client := filepath.Join(dir, "demo-client")
	if out, err := exec.Command("go", "build", "-o", client, "github.com/icptrack/icptrack/examples/demo").CombinedOutput(); err != nil {
		t.Fatalf("build the demo: %v\n%s", err, out)
	}
	for _, p := range []string{"demo-server", "demo-worker"} {
		require.NoError(t, os.Link(client, filepath.Join(dir, p)))
	}
	return client
}

// icptrackPrograms counts the BPF programs of icptrack's loaded in the
// kernel (the kernel keeps 15 characters of their names).
func icptrackPrograms(t *testing.T) int {
	t.Helper()
	n := 0
	var id ebpf.ProgramID
	for {
		next, err := ebpf.ProgramGetNextID(id)
		if errors.Is(err, os.ErrNotExist) {
			return n
		}
		require.NoError(t, err)
		id = next
		p, err := ebpf.NewProgramFromID(id)
		if err != nil {
			continue // gone meanwhile
		}
		if info, err := p.Info(); err == nil {
			for _, prefix := range []string{"sys_enter", "sys_exit", "sock_send_lengt", "sock_recv_lengt", "sk_data_ready",
				"sched_process_", "task_rename", "signal_generate", "signal_deliver", "sched_switch"} {
				if strings.HasPrefix(info.Name, prefix) {
					n++
					break
				}
			}
		}
		p.Close()
	}
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// A traces, a metrics and a logs pipeline on one receiver share one set of
// BPF programs; the demo's requests come out of all three; shutting the
// last pipeline down detaches everything.
func TestPipelinesShareOneInstance(t *testing.T) {
	needsBPF(t)
	client := buildDemo(t)
	// The kernel frees programs some time after their last user closes
	// them: those of a test that just ended may still be counted. Start
	// from a count that has stopped changing.
	before := icptrackPrograms(t)
	waitFor(t, "the count of loaded programs to settle", func() bool {
		time.Sleep(250 * time.Millisecond)
		n := icptrackPrograms(t)
		settled := n == before
		before = n
		return settled
	})

	cfg := createDefaultConfig()
	cfg.Include.Comms = []string{"demo-client", "demo-server", "demo-worker"}
	cfg.MetricsInterval = 200 * time.Millisecond
	require.NoError(t, cfg.Validate())
	f := NewFactory()
	tel := componenttest.NewTelemetry()
	defer func() { require.NoError(t, tel.Shutdown(context.Background())) }()
	set := metadatatest.NewSettings(tel)
	traces, metrics, logs := new(consumertest.TracesSink), new(consumertest.MetricsSink), new(consumertest.LogsSink)
	tr, err := f.CreateTraces(context.Background(), set, cfg, traces)
	require.NoError(t, err)
	mr, err := f.CreateMetrics(context.Background(), set, cfg, metrics)
	require.NoError(t, err)
	lr, err := f.CreateLogs(context.Background(), set, cfg, logs)
	require.NoError(t, err)

	loads := starts.Load()
	host := componenttest.NewNopHost()
	for _, c := range []component.Component{tr, mr, lr} {
		require.NoError(t, c.Start(context.Background(), host))
	}
	if got := starts.Load() - loads; got != 1 {
		t.Fatalf("three pipelines loaded the BPF programs %d times, want once", got)
	}
	attached := icptrackPrograms(t)
	if attached <= before {
		t.Fatalf("%d icptrack programs in the kernel after start, %d before", attached, before)
	}

	out, err := exec.Command(client, "--requests", "3").CombinedOutput()
	require.NoError(t, err, string(out))

	waitFor(t, "a request's trace across the three processes", func() bool { return requestTraces(traces.AllTraces()) >= 3 })
	waitFor(t, "log records of the demo", func() bool { return logs.LogRecordCount() > 0 })
	waitFor(t, "ipc.io from the demo", func() bool { return ioBytes(metrics.AllMetrics())["posix_mq"] > 0 })

	// Self-metrics go through the Collector's own telemetry, next to the
	// receiver's standard ones.
	processed, err := tel.GetMetric("otelcol_icptrack.events.processed")
	require.NoError(t, err)
	if v := processed.Data.(metricdata.Sum[int64]).DataPoints[0].Value; v <= 0 {
		t.Errorf("otelcol_icptrack.events.processed = %d", v)
	}
	dropped, err := tel.GetMetric("otelcol_icptrack.events.dropped")
	require.NoError(t, err)
	if n := len(dropped.Data.(metricdata.Sum[int64]).DataPoints); n != 2 {
		t.Errorf("otelcol_icptrack.events.dropped has %d series, want ring_buffer and export_queue", n)
	}
	accepted, err := tel.GetMetric("otelcol_receiver_accepted_spans")
	require.NoError(t, err, "the receiver's standard telemetry")
	if v := accepted.Data.(metricdata.Sum[int64]).DataPoints[0].Value; v <= 0 {
		t.Errorf("otelcol_receiver_accepted_spans = %d", v)
	}

	// Shutting down one pipeline leaves the others running.
	require.NoError(t, tr.Shutdown(context.Background()))
	if n := icptrackPrograms(t); n != attached {
		t.Fatalf("after the first shutdown %d programs, want all %d still attached", n, attached)
	}
	require.NoError(t, mr.Shutdown(context.Background()))
	require.NoError(t, lr.Shutdown(context.Background()))
	waitFor(t, "the programs to be freed", func() bool { return icptrackPrograms(t) <= before })

	io := ioBytes(metrics.AllMetrics())
	for _, mech := range []string{"pipe", "unix_stream", "posix_mq"} {
		if io[mech] <= 0 {
			t.Errorf("no ipc.io for %s: %v", mech, io)
		}
	}
	rec := logs.AllLogs()[0].ResourceLogs().At(0).ScopeLogs().At(0).LogRecords().At(0)
	for _, k := range []string{"id", "pid", "mechanism", "op", "channel", "bytes"} {
		if _, ok := rec.Attributes().Get(k); !ok {
			t.Errorf("log record has no %s: %v", k, rec.Attributes().AsRaw())
		}
	}
	instances.Lock()
	left := len(instances.m)
	instances.Unlock()
	if left != 0 {
		t.Errorf("%d shared instances left after every pipeline shut down", left)
	}
}

// requestTraces counts the traces in which a reply the client read goes
// back, parent by parent, through the server and the worker to the
// client's request.
func requestTraces(batches []ptrace.Traces) int {
	type node struct {
		service string
		parent  pcommon.SpanID
		kind    ptrace.SpanKind
	}
	spans := map[pcommon.SpanID]node{}
	var replies []pcommon.SpanID
	for _, td := range batches {
		for i := 0; i < td.ResourceSpans().Len(); i++ {
			rs := td.ResourceSpans().At(i)
			svc, _ := rs.Resource().Attributes().Get(semconv.AttrServiceName)
			ss := rs.ScopeSpans().At(0).Spans()
			for j := 0; j < ss.Len(); j++ {
				s := ss.At(j)
				spans[s.SpanID()] = node{svc.Str(), s.ParentSpanID(), s.Kind()}
				if svc.Str() == "demo-client" && s.Kind() == ptrace.SpanKindConsumer && !s.ParentSpanID().IsEmpty() {
					replies = append(replies, s.SpanID())
				}
			}
		}
	}
	n := 0
	for _, r := range replies {
		var path []string
		for id := r; !id.IsEmpty(); id = spans[id].parent {
			s, ok := spans[id]
			if !ok {
				break
			}
			path = append(path, s.service)
		}
		// reply: client ← server ← server ← worker ← worker ← server ← server ← client
		if len(path) == 8 && path[0] == "demo-client" && path[7] == "demo-client" && path[3] == "demo-worker" {
			n++
		}
	}
	return n
}

// ioBytes sums the last ipc.io values per mechanism.
func ioBytes(batches []pmetric.Metrics) map[string]int64 {
	out := map[string]int64{}
	for _, md := range batches {
		rms := md.ResourceMetrics()
		for i := 0; i < rms.Len(); i++ {
			sms := rms.At(i).ScopeMetrics()
			for j := 0; j < sms.Len(); j++ {
				ms := sms.At(j).Metrics()
				for k := 0; k < ms.Len(); k++ {
					m := ms.At(k)
					if m.Name() != semconv.MetricIPCIO {
						continue
					}
					sums := map[string]int64{}
					for p := 0; p < m.Sum().DataPoints().Len(); p++ {
						dp := m.Sum().DataPoints().At(p)
						mech, _ := dp.Attributes().Get(semconv.AttrIPCMechanism)
						sums[mech.Str()] += dp.IntValue()
					}
					for mech, v := range sums {
						out[mech] = v // cumulative: the latest batch wins
					}
				}
			}
		}
	}
	return out
}

// Starting with a selector that names nothing on this host says so.
func TestStartReportsABadSelector(t *testing.T) {
	needsBPF(t)
	cfg := createDefaultConfig()
	cfg.Include.PIDs = []int{999999999}
	r, err := NewFactory().CreateTraces(context.Background(), receivertest.NewNopSettings(metadata.Type), cfg, consumertest.NewNop())
	require.NoError(t, err)
	err = r.Start(context.Background(), componenttest.NewNopHost())
	require.ErrorContains(t, err, "include::pids 999999999: no such process")
	require.NoError(t, r.Shutdown(context.Background()))
}

// In metrics mode the kernel counts and the metrics pipeline gets the same
// metrics as in event mode.
func TestMetricsMode(t *testing.T) {
	needsBPF(t)
	client := buildDemo(t)
	cfg := createDefaultConfig()
	cfg.Mode = modeMetrics
	cfg.Include.Comms = []string{"demo-client", "demo-server", "demo-worker"}
	cfg.MetricsInterval = 200 * time.Millisecond
	require.NoError(t, cfg.Validate())
	metrics := new(consumertest.MetricsSink)
	r, err := NewFactory().CreateMetrics(context.Background(), receivertest.NewNopSettings(metadata.Type), cfg, metrics)
	require.NoError(t, err)
	require.NoError(t, r.Start(context.Background(), componenttest.NewNopHost()))
	out, err := exec.Command(client, "--requests", "5").CombinedOutput()
	require.NoError(t, err, string(out))
	waitFor(t, "ipc.io from the kernel's counts", func() bool {
		io := ioBytes(metrics.AllMetrics())
		return io["posix_mq"] > 0 && io["pipe"] > 0 && io["unix_stream"] > 0
	})
	require.NoError(t, r.Shutdown(context.Background()))
}
