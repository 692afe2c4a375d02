package analyze

import (
	"cmp"
	"math"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/icptrack/icptrack/flow"
)

var (
	client = end{100, "client"}
	server = end{200, "server"}
	worker = end{300, "worker"}
)

// Operations are counted in the interval their start falls in, clock
// aligned; a coalesced record counts as its operations.
func TestRatesPerInterval(t *testing.T) {
	const w = 100 * time.Millisecond
	rng := rand.New(rand.NewPCG(1, 2))
	var ops []*flow.Operation
	for i := range 300 {
		at := time.Duration(rng.Int64N(int64(2 * time.Second)))
		o := op(client, flow.Pipe, flow.Send, "pipe:1", "pipe:[1]", at, 10)
		if i%7 == 0 { // a coalesced run of 4 writes
			o.Count, o.Bytes, o.Busy = 4, 40, 4*time.Microsecond
		}
		ops = append(ops, o)
	}
	// Expected, bucketed here from the clock: bucket = floor(unix ns / w).
	first := slices.MinFunc(ops, func(a, b *flow.Operation) int { return a.Time.Compare(b.Time) })
	last := slices.MaxFunc(ops, func(a, b *flow.Operation) int { return a.Time.Compare(b.Time) })
	base := first.Time.UnixNano() / int64(w)
	n := int(last.Time.UnixNano()/int64(w) - base + 1)
	wantOps, wantBytes := make([]int64, n), make([]int64, n)
	var total int64
	for _, o := range ops {
		i := o.Time.UnixNano()/int64(w) - base
		wantOps[i] += o.Ops()
		wantBytes[i] += o.Bytes
		total += o.Ops()
	}

	r := analyzeOps(Options{Interval: w}, ops...)
	if r.Intervals.WidthNS != int64(w) || r.Intervals.Count != n || !r.Intervals.Start.Equal(time.Unix(0, base*int64(w))) {
		t.Fatalf("intervals %+v, want %d of %s from %s", r.Intervals, n, w, time.Unix(0, base*int64(w)).UTC())
	}
	c := r.Channel("pipe:1")
	if !slices.Equal(c.PerInterval.Operations, wantOps) || !slices.Equal(c.PerInterval.SentBytes, wantBytes) {
		t.Errorf("per interval\n ops %v\nwant %v\n bytes %v\nwant %v", c.PerInterval.Operations, wantOps, c.PerInterval.SentBytes, wantBytes)
	}
	if c.Operations != total || c.Records != 300 || r.Operations != total {
		t.Errorf("operations %d (records %d), report %d; want %d in 300 records", c.Operations, c.Records, r.Operations, total)
	}
	peak := float64(slices.Max(wantOps)) / w.Seconds()
	if c.PeakOperationsPerSecond != peak {
		t.Errorf("peak %v/s, want %v/s", c.PeakOperationsPerSecond, peak)
	}
	span := last.Time.Add(last.Duration).Sub(first.Time).Seconds()
	if got, want := c.OperationsPerSecond, float64(total)/span; math.Abs(got-want) > 1e-9*want {
		t.Errorf("mean rate %v/s, want %v/s", got, want)
	}
}

// A capture read out of order (a receive logged after the sends that
// started after it) is bucketed as if it were in order.
func TestRatesDoNotDependOnOrder(t *testing.T) {
	var ops []*flow.Operation
	for i := range 50 {
		ops = append(ops, op(server, flow.POSIXMQ, flow.Receive, "q", "/q", time.Duration(i)*37*time.Millisecond, 5))
	}
	inOrder := analyzeOps(Options{Interval: 100 * time.Millisecond}, ops...)
	slices.Reverse(ops)
	reversed := analyzeOps(Options{Interval: 100 * time.Millisecond}, ops...)
	if !slices.Equal(inOrder.Channels[0].PerInterval.Operations, reversed.Channels[0].PerInterval.Operations) ||
		inOrder.Intervals != reversed.Intervals {
		t.Errorf("in order %v %+v, reversed %v %+v", inOrder.Channels[0].PerInterval.Operations, inOrder.Intervals,
			reversed.Channels[0].PerInterval.Operations, reversed.Intervals)
	}
}

// A long capture with no --interval keeps at most 1000 buckets while it is
// read, and the report picks the shortest documented interval that gives
// at most 100; nothing is lost on the way.
func TestLongCaptureIsBoundedAndLosesNothing(t *testing.T) {
	a := New(Options{})
	var total int64
	const span = 2 * time.Hour
	for at := time.Duration(0); at < span; at += 700 * time.Millisecond {
		a.Add(op(client, flow.UnixStream, flow.Send, "u", "/s", at, 3))
		total++
	}
	for _, f := range a.flows {
		if len(f.series.ops) > maxBuckets {
			t.Errorf("a series holds %d buckets, want at most %d", len(f.series.ops), maxBuckets)
		}
	}
	// The README's ladder, from 1ms: the first with at most 100
	// intervals over 2 hours (plus the partial ones at the ends) is 2m.
	if got := a.DefaultInterval(); got != 2*time.Minute {
		t.Errorf("default interval %s, want 2m0s", got)
	}
	r := a.Report()
	var sum int64
	for _, n := range r.Channels[0].PerInterval.Operations {
		sum += n
	}
	if sum != total || r.Intervals.Count > 100 {
		t.Errorf("%d operations in %d intervals, want %d in at most 100", sum, r.Intervals.Count, total)
	}
	// An interval that was asked for is kept, unless it would take more
	// than 100 000 buckets: 1ms over 150s doubles once.
	fixed := New(Options{Interval: time.Millisecond})
	for at := time.Duration(0); at <= 150*time.Second; at += time.Second {
		fixed.Add(op(client, flow.UnixStream, flow.Send, "u", "/s", at, 3))
	}
	if r := fixed.Report(); r.Intervals.Width() != 2*time.Millisecond || r.Channels[0].Operations != 151 {
		t.Errorf("1ms over 150s: %s intervals, %d operations; want 2ms and 151", r.Intervals.Width(), r.Channels[0].Operations)
	}
	if r := New(Options{Interval: 250 * time.Millisecond}).Report(); r.Intervals.Width() != 250*time.Millisecond {
		t.Errorf("--interval 250ms: %s", r.Intervals.Width())
	}
	// A short capture gets fine intervals.
	short := analyzeOps(Options{}, op(client, flow.Pipe, flow.Send, "p", "p", 0, 1), op(client, flow.Pipe, flow.Send, "p", "p", 42*time.Millisecond, 1))
	if short.Intervals.Width() != time.Millisecond || short.Intervals.Count < 42 {
		t.Errorf("42ms capture: %+v, want 1ms intervals", short.Intervals)
	}
}

// Percentiles of message sizes and latencies are within the sketch's 1%
// of the exact ones, computed here from every operation, with coalesced
// records counted as their operations at the record's mean.
func TestPercentilesWithinSketchAccuracy(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	var ops []*flow.Operation
	var sizes, latencies []float64
	var bytes, sized int64
	for i := range 5000 {
		size := int64(1 + rng.IntN(4096))
		lat := time.Duration(math.Exp(rng.NormFloat64()*1.5 + 9)) // lognormal around 8µs
		o := op(client, flow.UnixStream, flow.Send, "u", "/s", time.Duration(i)*time.Millisecond, size)
		o.Duration = lat
		n := 1
		if i%10 == 0 { // coalesced: 5 writes of size each, lat each
			n = 5
			o.Count, o.Bytes, o.Busy, o.Duration = 5, 5*size, 5*lat, 40*lat
		}
		for range n {
			sizes = append(sizes, float64(size))
			latencies = append(latencies, float64(lat))
		}
		bytes += o.Bytes
		sized += int64(n)
		ops = append(ops, o)
	}
	// Failures and empty reads are not messages; a call whose start was
	// not seen has no latency.
	ops = append(ops, with(op(client, flow.UnixStream, flow.Receive, "u", "/s", 0, 0), func(o *flow.Operation) { o.Error = "EAGAIN" }))
	ops = append(ops, with(op(client, flow.UnixStream, flow.Receive, "u", "/s", 0, 0), func(o *flow.Operation) { o.StartUnknown, o.Duration = true, 0 }))
	ops = append(ops, with(op(client, flow.UnixStream, flow.Receive, "u", "/s", 0, 0), func(o *flow.Operation) { o.Duration = 0 }))
	latencies = append(latencies, float64(time.Microsecond)) // the EAGAIN's

	c := analyzeOps(Options{}, ops...).Channels[0]
	exact := func(v []float64, q float64) float64 {
		s := slices.Sorted(slices.Values(v))
		return s[int(q*float64(len(s)-1))]
	}
	within := func(what string, got, want, slack float64) {
		t.Helper()
		if math.Abs(got-want) > 0.01*want+slack {
			t.Errorf("%s = %v, want %v within 1%%", what, got, want)
		}
	}
	if c.MessageSize.Count != sized || c.Latency.Count != int64(len(latencies)) {
		t.Fatalf("sizes over %d operations, latencies over %d; want %d and %d", c.MessageSize.Count, c.Latency.Count, sized, len(latencies))
	}
	within("mean size", c.MessageSize.Mean, float64(bytes)/float64(sized), 1e-9)
	within("p50 size", c.MessageSize.P50, exact(sizes, 0.5), 0.5) // rounded to a byte
	within("p99 size", c.MessageSize.P99, exact(sizes, 0.99), 0.5)
	within("p50 latency", float64(c.Latency.P50NS), exact(latencies, 0.5), 1)
	within("p90 latency", float64(c.Latency.P90NS), exact(latencies, 0.9), 1)
	within("p99 latency", float64(c.Latency.P99NS), exact(latencies, 0.99), 1)
	if want := slices.Max(latencies); c.Latency.MaxNS != int64(want) {
		t.Errorf("max latency %d, want %v", c.Latency.MaxNS, want)
	}
}

// Blocked time adds up the durations of the calls that waited (a call
// whose start was not seen waited for its whole Duration); errors are
// counted by errno, in operations.
func TestBlockedTimeAndErrors(t *testing.T) {
	var ops []*flow.Operation
	var blockedFor time.Duration
	var blocked int64
	errs := map[string]int64{}
	for i := range 200 {
		o := op(worker, flow.Pipe, flow.Receive, "p", "pipe:[9]", time.Duration(i)*time.Millisecond, 8)
		o.Duration = time.Duration(1+i%13) * 10 * time.Microsecond
		if i%3 == 0 {
			o.Blocked = true
			if i%6 == 0 {
				o.StartUnknown = true
			}
			blocked++
			blockedFor += o.Duration
		}
		switch i % 5 {
		case 1:
			o.Error, o.Bytes = "EAGAIN", 0
			errs["EAGAIN"]++
		case 2:
			if i%4 == 2 {
				o.Error, o.Bytes = "EPIPE", 0
				errs["EPIPE"]++
			}
		}
		ops = append(ops, o)
	}
	s := analyzeOps(Options{}, ops...).Channels[0]
	if s.Blocked.Operations != blocked || s.Blocked.TimeNS != int64(blockedFor) {
		t.Errorf("blocked %+v, want %d operations for %s", s.Blocked, blocked, blockedFor)
	}
	if len(s.Errors) != len(errs) || s.Errors["EAGAIN"] != errs["EAGAIN"] || s.Errors["EPIPE"] != errs["EPIPE"] {
		t.Errorf("errors %v, want %v", s.Errors, errs)
	}
}

// Pairs come from the peers that operations name, and an operation that
// names none is placed with the one process its channel pairs it with.
func TestPairsFromPeers(t *testing.T) {
	sock, pipe := "unix:1-2", "pipe:7"
	ops := []*flow.Operation{
		// client ⇄ server on a socket; the client's first write was made
		// before the server was known, and an EAGAIN names no one.
		op(client, flow.UnixStream, flow.Send, sock, "/run/s.sock", 0, 8),
		with(op(server, flow.UnixStream, flow.Receive, sock, "/run/s.sock", 1*time.Millisecond, 8), func(o *flow.Operation) { o.Peer = client.peer() }),
		with(op(server, flow.UnixStream, flow.Send, sock, "/run/s.sock", 2*time.Millisecond, 13), func(o *flow.Operation) { o.Peer = client.peer() }),
		with(op(client, flow.UnixStream, flow.Receive, sock, "/run/s.sock", 3*time.Millisecond, 13), func(o *flow.Operation) { o.Peer = server.peer() }),
		with(op(client, flow.UnixStream, flow.Receive, sock, "/run/s.sock", 4*time.Millisecond, 0), func(o *flow.Operation) { o.Error = "EAGAIN" }),
		// server → worker on a pipe, and the worker's end of file, which
		// names no one, placed with the server.
		with(op(server, flow.Pipe, flow.Send, pipe, "pipe:[7]", 5*time.Millisecond, 8), func(o *flow.Operation) { o.Peer = worker.peer() }),
		with(op(worker, flow.Pipe, flow.Receive, pipe, "pipe:[7]", 6*time.Millisecond, 8), func(o *flow.Operation) { o.Peer = server.peer() }),
		op(worker, flow.Pipe, flow.Receive, pipe, "pipe:[7]", 7*time.Millisecond, 0),
		// Two writers into one FIFO: a read that names neither is unpaired.
		with(op(worker, flow.FIFO, flow.Receive, "fifo:1", "/tmp/f", 8*time.Millisecond, 4), func(o *flow.Operation) { o.Peer = client.peer() }),
		with(op(worker, flow.FIFO, flow.Receive, "fifo:1", "/tmp/f", 9*time.Millisecond, 4), func(o *flow.Operation) { o.Peer = server.peer() }),
		op(worker, flow.FIFO, flow.Receive, "fifo:1", "/tmp/f", 10*time.Millisecond, 4),
		// A signal from the kernel; a queue's creation is in no pair.
		with(op(end{0, "kernel"}, flow.Signal, flow.Send, "sig:1", "SIGCHLD", 11*time.Millisecond, 0), func(o *flow.Operation) { o.Peer = server.peer() }),
		with(op(server, flow.Signal, flow.Receive, "sig:1", "SIGCHLD", 12*time.Millisecond, 0), func(o *flow.Operation) { o.Peer = flow.Kernel }),
		op(server, flow.POSIXMQ, flow.Create, "mq:1", "/q", 13*time.Millisecond, 0),
	}
	r := analyzeOps(Options{}, ops...)
	type pair struct {
		from, to      string
		ops, sent, rx int64
	}
	var got []pair
	for _, p := range r.Pairs {
		got = append(got, pair{p.From.String(), p.To.String(), p.Operations, p.SentBytes, p.ReceivedBytes})
	}
	want := []pair{
		{"client[100]", "server[200]", 2, 8, 8},   // the write without a peer, and its read
		{"server[200]", "client[100]", 3, 13, 13}, // with the client's EAGAIN
		{"server[200]", "worker[300]", 4, 8, 12},  // the pipe with its end of file, and the fifo
		{"kernel", "server[200]", 2, 0, 0},
		{"client[100]", "worker[300]", 1, 0, 4},
	}
	byName := func(a, b pair) int { return cmp.Or(cmp.Compare(a.from, b.from), cmp.Compare(a.to, b.to)) }
	slices.SortFunc(got, byName)
	slices.SortFunc(want, byName)
	if !slices.Equal(got, want) {
		t.Errorf("pairs\n%v\nwant\n%v", got, want)
	}
	if c := r.Channel("fifo:1"); c.Unpaired != 1 || len(c.Processes) != 3 {
		t.Errorf("fifo: %d unpaired, processes %v; want 1 and all three", c.Unpaired, c.Processes)
	}
	if c := r.Channel(sock); c.Unpaired != 0 || c.Errors["EAGAIN"] != 1 {
		t.Errorf("socket: %d unpaired, errors %v", c.Unpaired, c.Errors)
	}
	var lines []string
	for _, l := range r.Map {
		lines = append(lines, linkText(l)+" "+l.Mechanism)
	}
	wantLines := []string{
		"client[100] ⇄ server[200] unix_stream",
		"server[200] → worker[300] pipe",
		"kernel → server[200] signal",
		"client[100] → worker[300] fifo",
		"server[200] → worker[300] fifo",
	}
	if !slices.Equal(lines, wantLines) {
		t.Errorf("map\n%q\nwant\n%q", lines, wantLines)
	}
}

// Top talkers rank processes by the bytes they sent and received, and by
// their operations; --top bounds the lists.
func TestTopTalkersOrder(t *testing.T) {
	// Process i makes i+1 sends of (10-i)² bytes: the orders by bytes
	// and by operations differ.
	var ops []*flow.Operation
	type talker struct {
		p          Process
		channel    string
		ops, bytes int64
	}
	var talkers []talker
	for i := range 6 {
		e := end{uint32(1000 + i), "p"}
		size := int64((10 - i) * (10 - i))
		for j := range i + 1 {
			ops = append(ops, op(e, flow.UDP, flow.Send, "udp:"+string(rune('a'+i)), "127.0.0.1:9", time.Duration(j)*time.Millisecond, size))
		}
		talkers = append(talkers, talker{Process{e.pid, e.comm}, "udp:" + string(rune('a'+i)), int64(i + 1), int64(i+1) * size})
	}
	r := analyzeOps(Options{Top: 4}, ops...)
	byBytes := slices.Clone(talkers)
	slices.SortFunc(byBytes, func(a, b talker) int { return int(b.bytes - a.bytes) })
	byOps := slices.Clone(talkers)
	slices.SortFunc(byOps, func(a, b talker) int { return int(b.ops - a.ops) })
	var wantBytes, wantOps []Process
	for i := range 4 {
		wantBytes = append(wantBytes, byBytes[i].p)
		wantOps = append(wantOps, byOps[i].p)
	}
	if !slices.Equal(r.Top.TalkersByBytes, wantBytes) || !slices.Equal(r.Top.TalkersByOperations, wantOps) {
		t.Errorf("by bytes %v, want %v\nby operations %v, want %v", r.Top.TalkersByBytes, wantBytes, r.Top.TalkersByOperations, wantOps)
	}
	if !slices.Equal(wantBytes, []Process{{1003, "p"}, {1002, "p"}, {1004, "p"}, {1001, "p"}}) {
		t.Fatalf("the test's own order by bytes is %v", wantBytes) // (i+1)(10-i)²: 196, 192, 180, 162
	}
	if len(r.Top.BusiestByOperations) != 4 || r.Top.BusiestByOperations[0] != byOps[0].channel || r.Top.BusiestByBytes[0] != byBytes[0].channel {
		t.Errorf("busiest channels %v by operations, %v by bytes", r.Top.BusiestByOperations, r.Top.BusiestByBytes)
	}
}

// Add's cost per operation, on a capture that cycles over a few
// channels as the demo's does.
func BenchmarkAdd(b *testing.B) {
	var ops []*flow.Operation
	for i := range 1024 {
		e := []end{client, server, worker}[i%3]
		o := op(e, flow.UnixStream, []flow.OpType{flow.Send, flow.Receive}[i%2], "u"+string(rune('a'+i%5)), "/s", time.Duration(i)*time.Microsecond, 64)
		o.Peer = []end{server, worker, client}[i%3].peer()
		ops = append(ops, o)
	}
	a := New(Options{})
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		o := ops[i%len(ops)]
		o.Time = t0.Add(time.Duration(i) * time.Microsecond)
		a.Add(o)
	}
}
