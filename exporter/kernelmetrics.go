package exporter

import (
	"context"
	"fmt"
	"io"
	"math"
	"slices"
	"sort"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/sdk/instrumentation"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/icptrack/icptrack/flow"
	"github.com/icptrack/icptrack/internal/human"
	"github.com/icptrack/icptrack/semconv"
)

// KernelMetrics turns metrics mode's in-kernel counts into the metrics of
// the semantic conventions, with the same names, units and attributes as
// Metrics records in event mode. It is a metric.Producer: hand it to the
// sdk/metric readers (the Prometheus exporter, a periodic OTLP reader, a
// Collector receiver's manual reader). Add is called from the tracer's
// goroutine, Produce from the readers'.
//
// The kernel keeps durations in log2 buckets; ipc.operation.duration's
// explicit buckets get each log2 bucket's count at the bucket's middle, so
// a duration can land one bucket off, and the sum is estimated the same
// way. Receives of end-of-file count as received messages here: the kernel
// counts do not tell them apart.
type KernelMetrics struct {
	mu     sync.Mutex
	start  time.Time
	prev   map[kernelKey]flow.Aggregate
	series map[seriesKey]*kernelSeries
	exes   executables
}

type kernelKey struct {
	pid   uint32
	mech  flow.Mechanism
	op    flow.OpType
	errno string
}

type seriesKey struct {
	exe   string
	mech  flow.Mechanism
	op    flow.OpType
	errno string
}

type kernelSeries struct {
	count, bytes uint64
	hist         [flow.AggregateBuckets]uint64
}

// NewKernelMetrics starts counting from now.
func NewKernelMetrics() *KernelMetrics {
	return &KernelMetrics{
		start:  time.Now(),
		prev:   make(map[kernelKey]flow.Aggregate),
		series: make(map[seriesKey]*kernelSeries),
		exes:   executables{},
	}
}

// Add takes one process's cumulative counts, as the kernel reported them.
func (k *KernelMetrics) Add(a *flow.Aggregate) {
	k.mu.Lock()
	defer k.mu.Unlock()
	key := kernelKey{a.PID, a.Mechanism, a.Op, a.Errno}
	prev, seen := k.prev[key]
	if seen && a.Count < prev.Count {
		seen = false // a new process under a reused pid
	}
	if a.Final {
		delete(k.prev, key)
	} else {
		k.prev[key] = *a
	}
	if seen && a.Count == prev.Count {
		return
	}
	exe := k.executable(a)
	sk := seriesKey{exe, a.Mechanism, a.Op, a.Errno}
	s := k.series[sk]
	if s == nil {
		s = &kernelSeries{}
		k.series[sk] = s
	}
	if !seen {
		prev = flow.Aggregate{}
	}
	s.count += a.Count - prev.Count
	s.bytes += a.Bytes - prev.Bytes
	for i := range s.hist {
		s.hist[i] += a.Hist[i] - prev.Hist[i]
	}
}

func (k *KernelMetrics) executable(a *flow.Aggregate) string {
	op := flow.Operation{Exe: a.Process.Exe, Comm: a.Comm, PID: a.PID}
	if a.PID == flow.Kernel.PID {
		op.Comm = flow.Kernel.Comm
	}
	return k.exes.name(&op)
}

// bucketMiddle is the duration, in seconds, that stands for log2 bucket i.
func bucketMiddle(i int) float64 {
	return math.Ldexp(1.5, i) / 1e9
}

// Produce returns the metrics so far, cumulative.
func (k *KernelMetrics) Produce(context.Context) ([]metricdata.ScopeMetrics, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	now := time.Now()
	keys := make([]seriesKey, 0, len(k.series))
	for sk := range k.series {
		keys = append(keys, sk)
	}
	slices.SortFunc(keys, func(a, b seriesKey) int {
		return strings.Compare(fmt.Sprint(a), fmt.Sprint(b))
	})

	// EAGAIN is not an error: its series shares the successes' attributes.
	durations := map[attribute.Distinct]*metricdata.HistogramDataPoint[float64]{}
	var order []attribute.Distinct
	sent := map[attribute.Set]int64{}
	received := map[attribute.Set]int64{}
	io := map[attribute.Set]int64{}
	for _, sk := range keys {
		s := k.series[sk]
		mech := attribute.String(semconv.AttrIPCMechanism, sk.mech.String())
		exe := attribute.String(semconv.AttrProcessExecutableName, sk.exe)
		attrs := []attribute.KeyValue{mech, attribute.String(semconv.AttrIPCOperationType, sk.op.String()), exe}
		if IsError(sk.errno) {
			attrs = append(attrs, attribute.String(semconv.AttrErrorType, sk.errno))
		}
		set := attribute.NewSet(attrs...)
		dp := durations[set.Equivalent()]
		if dp == nil {
			dp = &metricdata.HistogramDataPoint[float64]{
				Attributes:   set,
				StartTime:    k.start,
				Time:         now,
				Bounds:       DurationBuckets,
				BucketCounts: make([]uint64, len(DurationBuckets)+1),
			}
			durations[set.Equivalent()] = dp
			order = append(order, set.Equivalent())
		}
		dp.Count += s.count
		for i, n := range s.hist {
			if n == 0 {
				continue
			}
			v := bucketMiddle(i)
			dp.BucketCounts[sort.SearchFloat64s(DurationBuckets, v)] += n
			dp.Sum += v * float64(n)
		}
		if sk.errno != "" {
			continue
		}
		switch sk.op {
		case flow.Send:
			sent[attribute.NewSet(mech, exe)] += int64(s.count)
			io[attribute.NewSet(mech, attribute.String(semconv.AttrIPCDirection, semconv.IPCDirectionSend), exe)] += int64(s.bytes)
		case flow.Receive:
			received[attribute.NewSet(mech, exe)] += int64(s.count)
			io[attribute.NewSet(mech, attribute.String(semconv.AttrIPCDirection, semconv.IPCDirectionReceive), exe)] += int64(s.bytes)
		}
	}
	points := make([]metricdata.HistogramDataPoint[float64], 0, len(order))
	for _, d := range order {
		points = append(points, *durations[d])
	}
	sum := func(name, unit, desc string, values map[attribute.Set]int64) metricdata.Metrics {
		s := metricdata.Sum[int64]{Temporality: metricdata.CumulativeTemporality, IsMonotonic: true}
		for set, v := range values {
			s.DataPoints = append(s.DataPoints, metricdata.DataPoint[int64]{Attributes: set, StartTime: k.start, Time: now, Value: v})
		}
		slices.SortFunc(s.DataPoints, func(a, b metricdata.DataPoint[int64]) int {
			return strings.Compare(a.Attributes.Encoded(attribute.DefaultEncoder()), b.Attributes.Encoded(attribute.DefaultEncoder()))
		})
		return metricdata.Metrics{Name: name, Unit: unit, Description: desc, Data: s}
	}
	if len(points) == 0 {
		return nil, nil
	}
	return []metricdata.ScopeMetrics{{
		Scope: instrumentation.Scope{Name: ScopeName, Version: Version()},
		Metrics: []metricdata.Metrics{
			{
				Name: semconv.MetricIPCOperationDuration, Unit: semconv.MetricIPCOperationDurationUnit,
				Description: semconv.MetricIPCOperationDurationDescription,
				Data:        metricdata.Histogram[float64]{Temporality: metricdata.CumulativeTemporality, DataPoints: points},
			},
			sum(semconv.MetricIPCSentMessages, semconv.MetricIPCSentMessagesUnit, semconv.MetricIPCSentMessagesDescription, sent),
			sum(semconv.MetricIPCReceivedMessages, semconv.MetricIPCReceivedMessagesUnit, semconv.MetricIPCReceivedMessagesDescription, received),
			sum(semconv.MetricIPCIO, semconv.MetricIPCIOUnit, semconv.MetricIPCIODescription, io),
		},
	}}, nil
}

// PrintSummary writes metrics mode's summary: per mechanism and
// executable, the operations, bytes, approximate p50 and p99 durations,
// and errors.
func (k *KernelMetrics) PrintSummary(w io.Writer, losses Losses) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	type row struct {
		mech           flow.Mechanism
		exe            string
		ops, errs      uint64
		sent, received uint64
		hist           [flow.AggregateBuckets]uint64
	}
	rows := map[[2]string]*row{}
	var total, bytes uint64
	for sk, s := range k.series {
		key := [2]string{sk.mech.String(), sk.exe}
		r := rows[key]
		if r == nil {
			r = &row{mech: sk.mech, exe: sk.exe}
			rows[key] = r
		}
		r.ops += s.count
		total += s.count
		if IsError(sk.errno) {
			r.errs += s.count
		}
		switch sk.op {
		case flow.Send:
			r.sent += s.bytes
		case flow.Receive:
			r.received += s.bytes
		}
		bytes += s.bytes
		for i, n := range s.hist {
			r.hist[i] += n
		}
	}
	list := make([]*row, 0, len(rows))
	for _, r := range rows {
		list = append(list, r)
	}
	slices.SortFunc(list, func(a, b *row) int {
		if a.mech != b.mech {
			return int(a.mech) - int(b.mech)
		}
		if a.ops != b.ops {
			if a.ops > b.ops {
				return -1
			}
			return 1
		}
		return strings.Compare(a.exe, b.exe)
	})
	fmt.Fprintf(w, "\nicptrack (metrics mode): %d operations, %s moved\n", total, bytesString(int64(bytes)))
	if len(list) > 0 {
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "MECHANISM\tPROCESS\tOPS\tSENT\tRECEIVED\tP50\tP99\tERRORS\t")
		for _, r := range list {
			fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%s\t%s\t%s\t%d\t\n", r.mech, r.exe, r.ops,
				bytesString(int64(r.sent)), bytesString(int64(r.received)),
				histQuantile(r.hist, r.ops, 0.5), histQuantile(r.hist, r.ops, 0.99), r.errs)
		}
		if err := tw.Flush(); err != nil {
			return err
		}
	}
	if losses.Dropped == 0 && losses.Other == 0 {
		_, err := fmt.Fprintln(w, "icptrack: 0 events dropped")
		return err
	}
	_, err := fmt.Fprintf(w, "icptrack: WARNING: %d events dropped (operations not counted: the kernel's map of counts was full), %d other records lost\n",
		losses.Dropped, losses.Other)
	return err
}

// histQuantile is the middle of the log2 bucket that holds quantile q,
// shown as approximate.
func histQuantile(h [flow.AggregateBuckets]uint64, n uint64, q float64) string {
	if n == 0 {
		return "-"
	}
	// Bucket 0 holds durations under 2ns: the kernel's 0 for an operation
	// whose start it did not see (signals). No call takes 1ns, so a row
	// with nothing else had no measured duration.
	if h[0] == n {
		return noDuration
	}
	want := uint64(math.Ceil(q * float64(n)))
	var seen uint64
	for i, c := range h {
		seen += c
		if seen >= want {
			return "~" + human.Duration(time.Duration(bucketMiddle(i)*1e9))
		}
	}
	return "-"
}
