package exporter

import (
	"context"
	"errors"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/icptrack/icptrack/internal/promtest"
)

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// sends records n pipe writes of 10 bytes by "w".
func sends(m *Metrics, n int) {
	for _, op := range reloadOps(1, n) {
		op.Bytes = 10
		m.Record(op)
	}
}

func scrape(t *testing.T, addr string) promtest.Scrape {
	t.Helper()
	s, err := promtest.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func newTestMeterProvider(t *testing.T, o MetricOutputs) (*MeterProvider, *Metrics) {
	t.Helper()
	mp, err := NewMeterProvider(o)
	if err != nil {
		t.Fatal(err)
	}
	m, err := NewMetrics(mp, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = mp.Shutdown(context.Background()); _ = m.Close() })
	return mp, m
}

// Moving /metrics to another address carries the counts on: the new
// address shows every operation, counted before and after, and the old
// one is closed.
func TestMetricsMoveToAnotherAddressWithoutAReset(t *testing.T) {
	a, b := freeAddr(t), freeAddr(t)
	mp, m := newTestMeterProvider(t, MetricOutputs{Prometheus: a})
	sends(m, 30)
	before := scrape(t, a)
	if got := before.Sum("ipc_sent_messages_total", `ipc_mechanism="pipe"`); got != 30 {
		t.Fatalf("ipc_sent_messages_total %v before the move, want 30", got)
	}
	next, err := mp.Prepare(MetricOutputs{Prometheus: b, Attributes: map[string]string{"deployment.environment.name": "test"}})
	if err != nil {
		t.Fatal(err)
	}
	mp.Use(next)
	sends(m, 12)
	after := scrape(t, b)
	if got := after.Sum("ipc_sent_messages_total", `ipc_mechanism="pipe"`); got != 42 {
		t.Errorf("ipc_sent_messages_total %v at the new address, want 42", got)
	}
	if got := after.Sum("ipc_operation_duration_seconds_count"); got != 42 {
		t.Errorf("ipc_operation_duration_seconds_count %v at the new address, want 42: the histogram restarted", got)
	}
	if got := after.Sum("target_info", `deployment_environment_name="test"`); got != 1 {
		t.Errorf("target_info does not carry the new resource attribute: %v", got)
	}
	if d := before.Decreased(after); len(d) > 0 {
		t.Errorf("counters went back across the move: %v", d)
	}
	mp.retiring.Wait()
	if _, err := promtest.Get("http://" + a + "/metrics"); err == nil {
		t.Errorf("the old address %s still serves", a)
	}
	if got := mp.PrometheusAddr().String(); got != b {
		t.Errorf("PrometheusAddr %s, want %s", got, b)
	}
}

// New outputs on the address already served keep its listener: scrapes
// taken all through the swap succeed, and no counter ever goes back.
func TestMetricsOnTheSameAddressServeThroughTheSwap(t *testing.T) {
	a := freeAddr(t)
	mp, m := newTestMeterProvider(t, MetricOutputs{Prometheus: a})
	sends(m, 5)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var failures []string
	var last promtest.Scrape
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			default:
			}
			s, err := promtest.Get("http://" + a + "/metrics")
			if err != nil {
				failures = append(failures, err.Error())
				continue
			}
			if last != nil {
				failures = append(failures, last.Decreased(s)...)
			}
			last = s
		}
	}()
	for i := range 20 {
		next, err := mp.Prepare(MetricOutputs{Prometheus: a, Interval: time.Duration(i+1) * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		mp.Use(next)
		time.Sleep(5 * time.Millisecond)
	}
	close(stop)
	wg.Wait()
	if len(failures) > 0 {
		t.Errorf("scrapes through 20 swaps on one address: %s", strings.Join(failures, "; "))
	}
	if got := scrape(t, a).Sum("ipc_sent_messages_total"); got != 5 {
		t.Errorf("ipc_sent_messages_total %v after the swaps, want 5", got)
	}
}

// An address that cannot be bound is an error, and the outputs in use
// stay as they were.
func TestMetricsStayWhenTheNewAddressIsTaken(t *testing.T) {
	a := freeAddr(t)
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	mp, m := newTestMeterProvider(t, MetricOutputs{Prometheus: a})
	sends(m, 3)
	if _, err := mp.Prepare(MetricOutputs{Prometheus: taken.Addr().String()}); err == nil || !strings.Contains(err.Error(), "choose a free host:port") {
		t.Fatalf("Prepare on a taken port: %v", err)
	}
	if got := scrape(t, a).Sum("ipc_sent_messages_total"); got != 3 {
		t.Errorf("ipc_sent_messages_total %v at the address in use, want 3", got)
	}
}

// Spans a reload puts in take every operation after it, the old ones
// every operation before; the old ones' last batch is flushed before
// RetireSpans runs; the spans sink's count goes on, even across a reload
// that removes the spans and one that adds them back.
func TestReloadSwapsRemovesAndAddsTheSpans(t *testing.T) {
	type got struct {
		mu    sync.Mutex
		spans int
	}
	sink := func(g *got) func(body []byte, n int) {
		return func(_ []byte, n int) { g.mu.Lock(); g.spans += n; g.mu.Unlock() }
	}
	var a, b, c got
	p := NewPipeline(Outputs{Spans: NewEncodedSpans(DefaultSpanOptions(), sink(&a), nil)})
	for _, op := range reloadOps(1, 10) {
		p.operation(op)
	}
	var retiredWith int
	retire := func() error {
		a.mu.Lock()
		defer a.mu.Unlock()
		retiredWith = a.spans
		return errors.New("closing A")
	}
	var failures []string
	report := func(name string, err error) { failures = append(failures, name+": "+err.Error()) }
	p.Retire(p.Reload(Reload{Spans: NewEncodedSpans(DefaultSpanOptions(), sink(&b), nil), RetireSpans: retire}), report)
	for _, op := range reloadOps(11, 5) {
		p.operation(op)
	}
	p.Retire(p.Reload(Reload{Remove: []string{"spans"}}), report)
	for _, op := range reloadOps(16, 3) {
		p.operation(op)
	}
	if n := len(p.SinkStats()); n != 0 {
		t.Errorf("%d sinks after the spans were removed", n)
	}
	p.Retire(p.Reload(Reload{Spans: NewEncodedSpans(DefaultSpanOptions(), sink(&c), nil)}), report)
	for _, op := range reloadOps(19, 2) {
		p.operation(op)
	}
	if err := p.Finish(); err != nil {
		t.Fatal(err)
	}
	if a.spans != 10 || b.spans != 5 || c.spans != 2 || retiredWith != 10 {
		t.Errorf("spans A %d (%d when retired), B %d, C %d: want 10 (10), 5, 2", a.spans, retiredWith, b.spans, c.spans)
	}
	if len(failures) != 1 || failures[0] != "spans: closing A" {
		t.Errorf("retiring reported %v, want A's close", failures)
	}
	if st := p.SinkStats(); len(st) != 1 || st[0].Name != "spans" || st[0].Written != 17 {
		t.Errorf("sink stats %+v, want spans written 17 (10, 5, then 2: the 3 while removed are not)", st)
	}
}

// Metrics a reload adds where there were none count from then on.
func TestReloadAddsMetrics(t *testing.T) {
	p := NewPipeline(Outputs{Summary: NewSummary()})
	p.operation(reloadOps(1, 1)[0])
	m, reader := newTestMetrics(t, nil)
	p.Reload(Reload{Metrics: m})
	for _, op := range reloadOps(2, 4) {
		op.Bytes = 1
		p.operation(op)
	}
	var names []string
	for _, s := range p.SinkStats() {
		names = append(names, s.Name)
	}
	if strings.Join(names, ",") != "summary,metrics" {
		t.Errorf("sinks %v, want summary then metrics", names)
	}
	var sent int64
	for _, n := range sums(t, collect(t, reader)["ipc.sent.messages"]) {
		sent += n
	}
	if sent != 4 {
		t.Errorf("ipc.sent.messages %d, want the 4 sends after metrics were added", sent)
	}
}
