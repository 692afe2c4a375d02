package exporter

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/icptrack/icptrack/flow"
	"github.com/icptrack/icptrack/semconv"
)

func aggregate(pid uint32, exe string, mech flow.Mechanism, op flow.OpType, errno string, count, bytes uint64, bucket int) *flow.Aggregate {
	a := &flow.Aggregate{PID: pid, Comm: exe, Process: flow.Process{Exe: "/usr/bin/" + exe}, Mechanism: mech, Op: op, Errno: errno, Count: count, Bytes: bytes}
	a.Hist[bucket] = count
	return a
}

func produced(t *testing.T, k *KernelMetrics) map[string]metricdata.Metrics {
	t.Helper()
	sms, err := k.Produce(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]metricdata.Metrics{}
	for _, sm := range sms {
		if sm.Scope.Name != ScopeName {
			t.Errorf("scope %q", sm.Scope.Name)
		}
		for _, m := range sm.Metrics {
			out[m.Name] = m
		}
	}
	return out
}

// The kernel's cumulative counts per process become the metrics of event
// mode: deltas add up per executable, a reused pid starts again, a
// process's final report is its last.
func TestKernelMetrics(t *testing.T) {
	k := NewKernelMetrics()
	// Two processes of one executable, read twice.
	k.Add(aggregate(10, "app", flow.Pipe, flow.Send, "", 100, 6400, 11)) // ~3µs
	k.Add(aggregate(11, "app", flow.Pipe, flow.Send, "", 50, 3200, 11))
	k.Add(aggregate(10, "app", flow.Pipe, flow.Send, "", 150, 9600, 11))
	fin := aggregate(11, "app", flow.Pipe, flow.Send, "", 70, 4480, 11)
	fin.Final = true
	k.Add(fin)
	// pid 11 reused by another process of the same program.
	k.Add(aggregate(11, "app", flow.Pipe, flow.Send, "", 5, 320, 11))
	// Receives, would-blocks and failures.
	k.Add(aggregate(20, "sink", flow.Pipe, flow.Receive, "", 40, 9600, 20)) // ~1.5ms
	k.Add(aggregate(20, "sink", flow.Pipe, flow.Receive, "EAGAIN", 7, 0, 9))
	k.Add(aggregate(10, "app", flow.Pipe, flow.Send, "EPIPE", 2, 0, 12))

	got := produced(t, k)
	if s := sums(t, got[semconv.MetricIPCSentMessages]); s["[ipc.mechanism=pipe process.executable.name=app]"] != 150+70+5 {
		t.Errorf("sent %v, want 225", s)
	}
	if s := sums(t, got[semconv.MetricIPCReceivedMessages]); s["[ipc.mechanism=pipe process.executable.name=sink]"] != 40 {
		t.Errorf("received %v, want 40 (would-blocks are not messages)", s)
	}
	io := sums(t, got[semconv.MetricIPCIO])
	if io["[ipc.direction=send ipc.mechanism=pipe process.executable.name=app]"] != 9600+4480+320 ||
		io["[ipc.direction=receive ipc.mechanism=pipe process.executable.name=sink]"] != 9600 {
		t.Errorf("io %v", io)
	}
	h := got[semconv.MetricIPCOperationDuration].Data.(metricdata.Histogram[float64])
	counts := map[string]metricdata.HistogramDataPoint[float64]{}
	for _, p := range h.DataPoints {
		counts[attrsString(p.Attributes)] = p
	}
	send := counts["[ipc.mechanism=pipe ipc.operation.type=send process.executable.name=app]"]
	if send.Count != 225 || send.BucketCounts[2] != 225 { // 3µs: (2.5µs, 5µs]
		t.Errorf("send durations: count %d buckets %v", send.Count, send.BucketCounts)
	}
	recv := counts["[ipc.mechanism=pipe ipc.operation.type=receive process.executable.name=sink]"]
	if recv.Count != 47 {
		t.Errorf("receive durations hold %d, want 40 and the 7 would-blocks under the same attributes", recv.Count)
	}
	if e := counts["[error.type=EPIPE ipc.mechanism=pipe ipc.operation.type=send process.executable.name=app]"]; e.Count != 2 {
		t.Errorf("EPIPE durations: %d", e.Count)
	}

	var out bytes.Buffer
	if err := k.PrintSummary(&out, Losses{}); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"metrics mode): 274 operations", "pipe", "app", "227", "~3.07µs", "0 events dropped"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("summary does not say %q:\n%s", want, out.String())
		}
	}
}

// Metrics mode counts a signal's duration as 0, the kernel's word for not
// measured: its row shows no durations rather than ~1ns.
func TestKernelSummaryShowsNoDurationForSignals(t *testing.T) {
	k := NewKernelMetrics()
	k.Add(aggregate(10, "app", flow.Signal, flow.Send, "", 3, 0, 0))
	k.Add(aggregate(11, "sink", flow.Signal, flow.Receive, "", 3, 0, 0))
	k.Add(aggregate(10, "app", flow.Pipe, flow.Send, "", 5, 320, 11))
	var out bytes.Buffer
	if err := k.PrintSummary(&out, Losses{}); err != nil {
		t.Fatal(err)
	}
	rows := 0
	for _, l := range strings.Split(out.String(), "\n") {
		f := strings.Fields(l)
		if len(f) != 8 || f[0] == "MECHANISM" {
			continue
		}
		rows++
		if want := f[0] == "signal"; (f[5] == "—" && f[6] == "—") != want {
			t.Errorf("%s row P50 %s P99 %s, want — for signals only\n%s", f[0], f[5], f[6], out.String())
		}
	}
	if rows != 3 {
		t.Errorf("%d rows, want 3:\n%s", rows, out.String())
	}
}
