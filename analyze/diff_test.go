package analyze

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/icptrack/icptrack/flow"
)

// run is one generated capture of a small system: its processes get new
// pids and its channels new inodes and temporary paths every run, as a
// real system's do.
type run struct {
	rng  *rand.Rand
	n    int // the run's number, for pids and inodes
	a    *Analyzer
	span time.Duration
}

func newRun(seed uint64, n int) *run {
	return &run{rng: rand.New(rand.NewPCG(seed, uint64(n))), n: n, a: New(Options{}), span: 5 * time.Second}
}

func (r *run) end(comm string, i int) end { return end{uint32(1000*r.n + i), comm} }

// talk adds count messages from → to on a channel at random times, each a
// send and its receive; the receive's latency is lognormal around median.
func (r *run) talk(from, to end, mech flow.Mechanism, ch, endpoint string, count int, size int64, median time.Duration) {
	for range count {
		at := time.Duration(r.rng.Int64N(int64(r.span)))
		lat := time.Duration(float64(median) * math.Exp(r.rng.NormFloat64()*0.5))
		s := op(from, mech, flow.Send, ch, endpoint, at, size)
		s.Peer, s.Duration = to.peer(), lat
		rc := op(to, mech, flow.Receive, ch, endpoint, at+lat, size)
		rc.Peer, rc.Duration = from.peer(), lat
		r.a.Add(s)
		r.a.Add(rc)
	}
}

// The system of TestDiff: A has keep, gone and slow; B has keep, slow
// five times slower, and new.
func diffRuns(seed uint64, keepInB int) (a, b *Analyzer) {
	ra, rb := newRun(seed, 1), newRun(seed, 2)
	for _, r := range []*run{ra, rb} {
		client, server, worker, db := r.end("client", 1), r.end("server", 2), r.end("worker", 3), r.end("db", 4)
		tmp := fmt.Sprintf("/tmp/app%d/app.sock", r.rng.Uint32())
		sock := fmt.Sprintf("unix:%x", r.rng.Uint64())
		keep := 1000
		if r == rb {
			keep = keepInB
		}
		r.talk(client, server, flow.UnixStream, sock, tmp, keep, 64, 5*time.Microsecond)
		slow := 10 * time.Microsecond
		if r == rb {
			slow *= 5
			r.talk(client, db, flow.TCP, "tcp:1", fmt.Sprintf("127.0.0.1:%d->127.0.0.1:5432", 40000+r.rng.IntN(20000)), 300, 100, 20*time.Microsecond)
		} else {
			ino := r.rng.Uint32()
			r.talk(server, worker, flow.Pipe, fmt.Sprintf("pipe:%d", ino), fmt.Sprintf("pipe:[%d]", ino), 300, 8, 3*time.Microsecond)
		}
		r.talk(worker, server, flow.POSIXMQ, fmt.Sprintf("posix_mq:0:19:%d", r.rng.Uint32()), "/jobs", 1000, 13, slow)
	}
	return ra.a, rb.a
}

// Compare finds the channel and pairs that are new and gone and the
// channel five times slower, and calls the channel that only varied
// with noise unchanged: on twenty different pairs of captures.
func TestDiffFindsWhatChangedAndNotTheNoise(t *testing.T) {
	for seed := range uint64(20) {
		a, b := diffRuns(seed, 1000)
		d := Compare(a, b, 0, DefaultRule)
		keys := func(gs []ChannelGroup) (ks []string) {
			for _, g := range gs {
				ks = append(ks, g.Key)
			}
			return ks
		}
		pairs := func(gs []PairGroup) (ps []string) {
			for _, g := range gs {
				ps = append(ps, g.From+"→"+g.To)
			}
			return ps
		}
		if got := keys(d.NewChannels); !slices.Equal(got, []string{"tcp 127.0.0.1:*->127.0.0.1:5432 client,db"}) {
			t.Errorf("seed %d: new channels %q", seed, got)
		}
		if got := keys(d.GoneChannels); !slices.Equal(got, []string{"pipe pipe:[*] server,worker"}) {
			t.Errorf("seed %d: gone channels %q", seed, got)
		}
		if got := pairs(d.NewPairs); !slices.Equal(got, []string{"client→db"}) {
			t.Errorf("seed %d: new pairs %q", seed, got)
		}
		if got := pairs(d.GonePairs); !slices.Equal(got, []string{"server→worker"}) {
			t.Errorf("seed %d: gone pairs %q", seed, got)
		}
		var changes []string
		for _, c := range d.Changes {
			changes = append(changes, c.Key+" "+c.Measure)
			// A p99 rests on the 10 slowest of 1000 messages: it wobbles more.
			if slack := map[string]float64{LatencyP50: 0.5, LatencyP99: 1.5}[c.Measure]; math.Abs(*c.Ratio-5) > slack {
				t.Errorf("seed %d: %s %s moved ×%.2f, want ×5 ± %g", seed, c.Key, c.Measure, *c.Ratio, slack)
			}
		}
		want := []string{"posix_mq /jobs server,worker latency_p50_ns", "posix_mq /jobs server,worker latency_p99_ns"}
		if !slices.Equal(changes, want) {
			t.Errorf("seed %d: changes %q, want only %q", seed, changes, want)
		}
		if d.MatchedChannels != 2 || d.MatchedPairs != 2 || !d.Changed() {
			t.Errorf("seed %d: %d channels and %d pairs matched, want 2 and 2", seed, d.MatchedChannels, d.MatchedPairs)
		}
	}
}

// A capture compared with itself, and one whose rates only varied by
// chance, show no change.
func TestDiffOfTheSameSystemIsNoChange(t *testing.T) {
	a, _ := diffRuns(7, 1000)
	if d := Compare(a, a, 0, DefaultRule); d.Changed() {
		t.Errorf("a capture against itself: %+v", d)
	}
	for seed := range uint64(20) {
		ra, rb := newRun(seed, 1), newRun(seed, 2)
		for _, r := range []*run{ra, rb} {
			r.talk(r.end("client", 1), r.end("server", 2), flow.UnixStream, fmt.Sprint(r.n), "/run/s.sock", 1000, 64, 5*time.Microsecond)
		}
		if d := Compare(ra.a, rb.a, 0, DefaultRule); d.Changed() {
			t.Errorf("seed %d: two runs of the same system differ: %+v", seed, d.Changes)
		}
	}
}

// Twice the messages in the same time is a change of rate, with the
// test's p-value as evidence.
func TestDiffFindsARateThatDoubled(t *testing.T) {
	a, b := diffRuns(3, 2000)
	var got []string
	for _, c := range Compare(a, b, 0, DefaultRule).Changes {
		if c.Mechanism == "unix_stream" {
			got = append(got, c.Measure)
			if math.Abs(*c.Ratio-2) > 0.2 || *c.PValue >= DefaultRule.MaxPValue || c.CountA < 5 {
				t.Errorf("%s: ×%.2f, p=%g over %d intervals", c.Measure, *c.Ratio, *c.PValue, c.CountA)
			}
		}
	}
	if !slices.Equal(got, []string{OperationsPerSecond, BytesPerSecond}) {
		t.Errorf("socket changes %q, want its operations and bytes per second", got)
	}
}

// The Mann–Whitney test's normal approximation, worked by hand:
// x = 1…5 and y = 6…10 give U = 0, mean 12.5, variance 25·11/12, so
// z = (12.5 − 0.5)/4.787 = 2.507 and p = erfc(2.507/√2) = 0.0122.
func TestMannWhitney(t *testing.T) {
	p := mannWhitney([]float64{1, 2, 3, 4, 5}, []float64{6, 7, 8, 9, 10})
	if math.Abs(p-0.01219) > 0.0001 {
		t.Errorf("p = %v, want 0.0122", p)
	}
	if p := mannWhitney([]float64{3, 3, 3}, []float64{3, 3, 3, 3}); p != 1 {
		t.Errorf("all equal: p = %v, want 1", p)
	}
	// Ties: x = 1,2,2 y = 2,3,3. Ranks: 1 | 3 3 3 | 5.5 5.5; Rx = 7,
	// U = 1, mean 4.5, tie term (27−3)+(8−2) = 30, variance
	// 9/12·(7 − 30/30) = 4.5, z = (3.5−0.5)/2.121 = 1.414, p = 0.157.
	if p := mannWhitney([]float64{1, 2, 2}, []float64{2, 3, 3}); math.Abs(p-0.1573) > 0.0005 {
		t.Errorf("with ties: p = %v, want 0.157", p)
	}
}

// The key drops what changes between runs and keeps what does not.
func TestKeyMasksWhatChangesBetweenRuns(t *testing.T) {
	ps := func(names ...string) (out []Process) {
		for i, n := range names {
			out = append(out, Process{uint32(100 + i), n})
		}
		return out
	}
	for _, c := range []struct {
		mech, endpoint string
		processes      []Process
		want           string
	}{
		{"pipe", "pipe:[3065645]", ps("worker", "server"), "pipe pipe:[*] server,worker"},
		{"unix_stream", "/tmp/icptrack-demo3000381666/server.sock", ps("demo-client", "demo-server"), "unix_stream /tmp/icptrack-*/server.sock demo-client,demo-server"},
		{"posix_mq", "/icptrack-demo-28275", ps("w", "s", "w"), "posix_mq /icptrack-demo-* s,w"},
		{"tcp", "127.0.0.1:5432->127.0.0.1:41234", ps("psql", "postgres"), "tcp 127.0.0.1:*->127.0.0.1:5432 postgres,psql"},
		{"tcp", "127.0.0.1:41234->127.0.0.1:5432", ps("postgres", "psql"), "tcp 127.0.0.1:*->127.0.0.1:5432 postgres,psql"},
		{"udp", "[::1]:53->[::1]:50000", ps("dig", ""), "udp [::1]:*->[::1]:53 ?,dig"},
		{"signal", "SIGCHLD", []Process{Kernel, {7, "sh"}}, "signal SIGCHLD kernel,sh"},
	} {
		if got := Key(c.mech, c.endpoint, c.processes); got != c.want {
			t.Errorf("Key(%s, %s) = %q, want %q", c.mech, c.endpoint, got, c.want)
		}
	}
}
