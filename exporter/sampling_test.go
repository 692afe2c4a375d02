package exporter

import (
	"math"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"

	"github.com/icptrack/icptrack/flow"
	"github.com/icptrack/icptrack/semconv"
)

// The encodings of the specification's table of 1-in-N probabilities at
// the default precision (4 digits), and its worked example of 1%.
func TestThresholdEncodingFollowsTheSpecification(t *testing.T) {
	cases := []struct {
		p    float64
		want string
	}{
		{1, "0"},
		{0.5, "8"},
		{1.0 / 3, "aaab"},
		{0.25, "c"},
		{0.2, "cccd"},
		{0.125, "e"},
		{0.1, "e666"},
		{0.0625, "f"},
		{0.01, "fd70a"},
		{0.001, "ffbe77"},
		{0.0001, "fff9724"},
		{0.00001, "ffff583a"},
		{0.000001, "ffffef39"},
	}
	for _, c := range cases {
		if got := thresholdFor(c.p).th(); got != c.want {
			t.Errorf("probability %v: th:%s, want th:%s", c.p, got, c.want)
		}
	}
	// "the rejection threshold with 5 digits of precision would be
	// 0xfd70a400000000"
	if th := threshold(0xfd70a400000000); th.th() != "fd70a4" || th.traceState() != "ot=th:fd70a4" {
		t.Errorf("threshold 0xfd70a400000000 encodes as %q", th.traceState())
	}
	if p := thresholdFor(0.25).probability(); p != 0.25 {
		t.Errorf("th:c is probability %v, want 0.25", p)
	}
}

func traceWithRandomness(r uint64) pcommon.TraceID {
	var id pcommon.TraceID
	id[0] = 0xab // the high bytes play no part
	for i := range 7 {
		id[15-i] = byte(r >> (8 * i))
	}
	return id
}

// A trace is kept when its id's low 56 bits are at least the threshold.
func TestDecisionIsRandomnessAtLeastThreshold(t *testing.T) {
	th := thresholdFor(0.25) // 0xc0000000000000
	if !th.keeps(traceWithRandomness(0xc0000000000000)) || th.keeps(traceWithRandomness(0xbfffffffffffff)) {
		t.Error("randomness equal to the threshold must be kept, one below it rejected")
	}
	if !threshold(0).keeps(traceWithRandomness(0)) {
		t.Error("th:0 must keep every trace")
	}
	id := traceWithRandomness(0xc0000000000000)
	id[8] = 0xff // byte 8 is not part of the randomness
	if randomness(id) != 0xc0000000000000 {
		t.Errorf("randomness %x: byte 8 of the trace id was read", randomness(id))
	}
}

// Independent traces (sends of unrelated threads): the fraction exported
// is close to the ratio, every span says so in its tracestate and
// flags, and exported + sampled out = every operation.
func TestSampledFractionIsTheRatio(t *testing.T) {
	const n, ratio = 40000, 0.25
	c := newSpanCollector(t, func(o *SpanOptions) { o.SampleRatio = ratio; o.CausalStitching = false })
	for i := range n {
		c.add(op(process(uint32(100+i%50), "w"), flow.Pipe, flow.Send, "write", "pipe:7", "pipe:[7]", 5))
	}
	s := c.all()
	st := c.spans.Stats()
	if st.Spans+st.SampledOut != n || int(st.Spans) != len(s) || c.spans.SampledOut() != st.SampledOut {
		t.Fatalf("%d operations: %d spans exported (%d arrived), %d sampled out", n, st.Spans, len(s), st.SampledOut)
	}
	// Binomial: 3 standard deviations is about 0.65% here.
	sd := math.Sqrt(ratio * (1 - ratio) / n)
	if got := float64(st.Spans) / n; math.Abs(got-ratio) > 3*sd {
		t.Errorf("exported fraction %.4f, want %.2f ± %.4f", got, ratio, 3*sd)
	}
	for _, m := range s {
		if ts := m.span.TraceState().AsRaw(); ts != "ot=th:c" {
			t.Fatalf("tracestate %q, want ot=th:c", ts)
		}
		if m.span.Flags() != traceFlagSampled|traceFlagRandom {
			t.Fatalf("flags %#x, want sampled and random", m.span.Flags())
		}
		if !thresholdFor(ratio).keeps(m.span.TraceID()) {
			t.Fatal("a span whose trace id is below the threshold was exported")
		}
	}
}

func TestRatioOneKeepsEverythingAndSaysThZero(t *testing.T) {
	c := newSpanCollector(t, nil)
	for range 100 {
		c.add(op(process(10, "w"), flow.Pipe, flow.Send, "write", "pipe:7", "pipe:[7]", 5))
	}
	s := c.all()
	if len(s) != 100 || c.spans.Stats().SampledOut != 0 {
		t.Fatalf("%d of 100 exported", len(s))
	}
	for _, m := range s {
		if ts := m.span.TraceState().AsRaw(); ts != "ot=th:0" {
			t.Fatalf("tracestate %q, want ot=th:0", ts)
		}
	}
}

// A request that crosses three processes (client → server → worker →
// server → client) is exported whole or not at all, even when the
// sampler's threshold changes in the middle of it; the spans of a trace
// carry the threshold it was decided with.
func TestStitchedTraceGetsOneDecisionAcrossAThresholdChange(t *testing.T) {
	c := newSpanCollector(t, func(o *SpanOptions) { o.SampleRatio = 0.5 })
	cl, sv, wk := process(10, "client"), process(20, "server"), process(30, "worker")
	type step struct {
		who  flow.Operation
		o    flow.OpType
		mech flow.Mechanism
		from int
	}
	steps := []step{
		{cl, flow.Send, flow.UnixStream, -1},
		{sv, flow.Receive, flow.UnixStream, 0},
		{sv, flow.Send, flow.Pipe, -1},
		{wk, flow.Receive, flow.Pipe, 2},
		{wk, flow.Send, flow.POSIXMQ, -1},
		{sv, flow.Receive, flow.POSIXMQ, 4},
		{sv, flow.Send, flow.UnixStream, -1},
		{cl, flow.Receive, flow.UnixStream, 6},
	}
	low, high := thresholdFor(0.5), thresholdFor(0.1)
	const requests = 4000
	reqs := make([][]flow.OpID, requests)
	for r := range reqs {
		c.spans.th = low
		for i, st := range steps {
			if i == 3 && r%2 == 0 {
				// The cap (or anything) raises the threshold mid-request.
				c.spans.th = high
			}
			o := op(st.who, st.mech, st.o, "io", "ch", "ch", 8)
			if st.from >= 0 {
				o.Links = []flow.OpID{reqs[r][st.from]}
			}
			reqs[r] = append(reqs[r], c.add(o))
		}
	}
	s := c.all()
	kept := 0
	for r, req := range reqs {
		n := 0
		for _, id := range req {
			if _, ok := s[id]; ok {
				n++
			}
		}
		if n != 0 && n != len(req) {
			t.Fatalf("request %d: %d of its %d spans exported", r, n, len(req))
		}
		if n == 0 {
			continue
		}
		kept++
		first := s[req[0]].span
		for i, id := range req {
			sp := s[id].span
			if sp.TraceID() != first.TraceID() || sp.TraceState().AsRaw() != "ot=th:8" {
				t.Fatalf("request %d step %d: trace %v tracestate %q, want the first step's trace with ot=th:8",
					r, i, sp.TraceID(), sp.TraceState().AsRaw())
			}
			if i > 0 && sp.ParentSpanID() != s[req[i-1]].span.SpanID() {
				t.Fatalf("request %d step %d: the parent chain is broken", r, i)
			}
		}
	}
	sd := math.Sqrt(0.25 / requests)
	if got := float64(kept) / requests; math.Abs(got-0.5) > 3*sd {
		t.Errorf("%.3f of the requests exported, want 0.5 ± %.3f", got, 3*sd)
	}
	st := c.spans.Stats()
	if st.Spans+st.SampledOut != requests*uint64(len(steps)) || st.Spans != uint64(kept*len(steps)) {
		t.Errorf("stats %+v for %d requests, %d kept", st, requests, kept)
	}
}

// A receive that delivered sends of several traces starts a trace of its
// own; it links only to sends that were exported.
func TestLinksOnlyToExportedSends(t *testing.T) {
	c := newSpanCollector(t, func(o *SpanOptions) { o.CausalStitching = false; o.SampleRatio = 0.5 })
	var sends []flow.OpID
	for i := range 64 {
		sends = append(sends, c.add(op(process(uint32(100+i), "w"), flow.Pipe, flow.Send, "write", "pipe:7", "pipe:[7]", 5)))
	}
	var receives []flow.OpID
	for i := 0; i < len(sends); i += 4 {
		r := op(process(20, "r"), flow.Pipe, flow.Receive, "read", "pipe:7", "pipe:[7]", 20)
		r.Links = sends[i : i+4]
		receives = append(receives, c.add(r))
	}
	s := c.all()
	links := 0
	for _, id := range receives {
		m, ok := s[id]
		if !ok {
			continue
		}
		for i := 0; i < m.span.Links().Len(); i++ {
			l := m.span.Links().At(i)
			links++
			found := false
			for _, sid := range sends {
				if x, ok := s[sid]; ok && x.span.SpanID() == l.SpanID() && x.span.TraceID() == l.TraceID() {
					found = true
				}
			}
			if !found {
				t.Fatalf("receive %d links to a span that was not exported", id)
			}
		}
	}
	if links == 0 {
		t.Fatal("no links at all: the test proves nothing")
	}
}

// Under a flood of independent operations the cap holds the exported
// rate near its maximum, and the rate recovers when the flood ends.
func TestCapHoldsTheExportedRateUnderAFlood(t *testing.T) {
	const maxRate = 5000.0
	now := time.Unix(1700000000, 0)
	c := newSpanCollector(t, func(o *SpanOptions) { o.MaxSpansPerSecond = maxRate; o.CausalStitching = false })
	c.spans.clock = func() time.Time { return now }
	run := func(rate float64, d time.Duration) (exported, offered uint64) {
		before := c.spans.Stats()
		step := time.Duration(float64(time.Second) / rate)
		for end := now.Add(d); now.Before(end); now = now.Add(step) {
			o := op(process(10, "w"), flow.Pipe, flow.Send, "write", "pipe:7", "pipe:[7]", 5)
			o.Time = now
			c.add(o)
		}
		after := c.spans.Stats()
		return after.Spans - before.Spans, after.Spans + after.SampledOut - before.Spans - before.SampledOut
	}
	// Quiet: everything goes out.
	if e, o := run(1000, 2*time.Second); e != o {
		t.Errorf("below the cap: %d of %d exported", e, o)
	}
	// A flood at 100 times the cap, ten seconds long.
	e, o := run(100*maxRate, 10*time.Second)
	t.Logf("flood: %d of %d exported (%.0f spans/s)", e, o, float64(e)/10)
	if rate := float64(e) / 10; rate > 1.1*maxRate || rate < 0.8*maxRate {
		t.Errorf("flood: %.0f spans/s exported, want about %.0f", rate, maxRate)
	}
	if st := c.spans.Stats(); st.SampledOut != o-e || st.SampledOut == 0 {
		t.Errorf("flood: %d sampled out, want %d", st.SampledOut, o-e)
	}
	if p := c.spans.Probability(); p > 0.02 {
		t.Errorf("probability %v during the flood, want about 0.01", p)
	}
	// Quiet again: within a second everything goes out again.
	run(1000, time.Second)
	if e, o := run(1000, time.Second); e != o {
		t.Errorf("after the flood: %d of %d exported", e, o)
	}
}

// A sender whose queue fills lowers the cap below its maximum.
func TestCapBacksOffWhileTheQueueFills(t *testing.T) {
	now := time.Unix(1700000000, 0)
	fill := 0.9
	c := newSpanCollector(t, func(o *SpanOptions) {
		o.MaxSpansPerSecond = 10000
		o.CausalStitching = false
		o.QueueFill = func() float64 { return fill }
	})
	c.spans.clock = func() time.Time { return now }
	count := func(d time.Duration) uint64 {
		before := c.spans.Stats().Spans
		for end := now.Add(d); now.Before(end); now = now.Add(10 * time.Microsecond) { // 100k/s
			o := op(process(10, "w"), flow.Pipe, flow.Send, "write", "pipe:7", "pipe:[7]", 5)
			c.add(o)
		}
		return c.spans.Stats().Spans - before
	}
	count(time.Second)
	if full := count(time.Second); full > 5000 {
		t.Errorf("queue 90%% full: %d spans in a second, want well under the cap of 10000", full)
	}
	fill = 0
	count(3 * time.Second)
	if drained := count(time.Second); drained < 8000 || drained > 11000 {
		t.Errorf("queue drained: %d spans in a second, want about 10000", drained)
	}
}

func TestCoalescedRecordCarriesItsOperationCount(t *testing.T) {
	c := newSpanCollector(t, nil)
	p := process(10, "w")
	one := c.add(op(p, flow.Pipe, flow.Send, "write", "pipe:7", "pipe:[7]", 5))
	burst := op(p, flow.Pipe, flow.Send, "write", "pipe:7", "pipe:[7]", 320)
	burst.Count = 64
	many := c.add(burst)
	s := c.all()
	if got := str(t, s[one].span.Attributes(), semconv.AttrIPCOperationCount); got != "<absent>" {
		t.Errorf("a single operation has %s=%s", semconv.AttrIPCOperationCount, got)
	}
	if got := str(t, s[many].span.Attributes(), semconv.AttrIPCOperationCount); got != "64" {
		t.Errorf("a record of 64 operations has %s=%s", semconv.AttrIPCOperationCount, got)
	}
}
