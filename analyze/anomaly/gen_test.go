package anomaly

import (
	"math"
	"math/rand/v2"
	"slices"
	"strconv"
	"time"

	"github.com/icptrack/icptrack/flow"
)

// A generated capture of a small system, like examples/demo: for each
// request, a client writes to a server over a unix socket, the server
// hands it to a worker over a pipe, the worker answers on a POSIX queue
// and the server replies. Around it, the noise of real traffic, all drawn
// from a seeded generator:
//   - requests arrive as a Poisson process whose rate drifts ±15% over the
//     minute, so counts per second vary as real ones do;
//   - call times are log-normal (σ 0.4) and 1% of calls are preempted,
//     taking 10 to 50 times longer;
//   - the server's first read of a request fails with EAGAIN four times in
//     five (a non-blocking socket, as Go's runtime uses);
//   - the worker's reads block until the next request; now and then one
//     fails with EINTR;
//   - the queue's depth is usually 0 or 1 and sometimes 2 or 3, when the
//     server is slow to take an answer;
//   - a supervisor sends the worker SIGHUP about every 5 seconds; the
//     client gets a SIGURG from itself about every 2;
//   - 5% of operations reach the log up to 200ms late.
// Pids, inodes, the socket's temporary directory and the queue's name
// (which carries the server's pid) differ with the seed, as between runs.

// plant is an anomaly to plant in a generated capture, from the time at.
type plant int

const (
	plantNothing plant = iota
	plantNewPair
	plantNewChannel
	plantBurst
	plantBigMessages
	plantSlowSends
	plantEPIPE
	plantSignalStorm
	plantQueueGrowth
)

const (
	genLength  = 60 * time.Second
	genPlantAt = 40 * time.Second
	genRate    = 40.0 // requests per second
)

type generator struct {
	rng   *rand.Rand
	t0    time.Time
	plant plant
	ops   []*flow.Operation
	id    flow.OpID

	client, server, worker, supervisor, intruder flow.Peer
	sock, sockChannel, queue, queueChannel       string
	pipe, pipeChannel                            string
	depth                                        int64
}

// stuckAt is how many answers the server has left in the queue at t
// (plantQueueGrowth).
func (g *generator) stuckAt(t time.Duration) int64 {
	if g.plant != plantQueueGrowth || t < genPlantAt-5*time.Second {
		return 0
	}
	return int64((t-genPlantAt+5*time.Second)/time.Second) + 1
}

// generate makes the capture for seed with p planted, in the order
// operations reach the event log.
func generate(seed uint64, p plant) []*flow.Operation {
	g := &generator{rng: rand.New(rand.NewPCG(seed, 0x1c97)), plant: p}
	g.t0 = time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC).Add(time.Duration(seed) * time.Hour)
	pid := uint32(1000 + g.rng.IntN(30000))
	g.client = flow.Peer{PID: pid, Comm: "shop-client"}
	g.server = flow.Peer{PID: pid + 7, Comm: "shop-server"}
	g.worker = flow.Peer{PID: pid + 12, Comm: "shop-worker"}
	g.supervisor = flow.Peer{PID: pid - 300, Comm: "supervisor"}
	g.intruder = flow.Peer{PID: pid + 40, Comm: "intruder"}
	g.sock = "/tmp/shop" + strconv.Itoa(g.rng.IntN(1e9)) + "/server.sock"
	g.sockChannel = "unix:" + strconv.FormatUint(g.rng.Uint64(), 16)
	ino := 100000 + g.rng.IntN(1e7)
	g.pipe, g.pipeChannel = "pipe:["+strconv.Itoa(ino)+"]", "pipe:"+strconv.Itoa(ino)
	g.queue = "/shop-answers-" + strconv.Itoa(int(g.server.PID))
	g.queueChannel = "posix_mq:0:19:" + strconv.Itoa(ino+5)

	for t := time.Duration(0); ; {
		rate := genRate * (1 + 0.15*math.Sin(2*math.Pi*t.Seconds()/genLength.Seconds()))
		t += time.Duration(g.rng.ExpFloat64() / rate * float64(time.Second))
		if t >= genLength {
			break
		}
		g.request(t)
	}
	g.poisson(0.2, func(t time.Duration) { g.signal(t, g.supervisor, g.worker, "SIGHUP") })
	g.poisson(0.5, func(t time.Duration) { g.signal(t, g.client, g.client, "SIGURG") })
	g.poisson(0.05, func(t time.Duration) {
		g.op(t, g.worker, flow.Pipe, flow.Receive, g.pipeChannel, g.pipe, 0, flow.Peer{}, "EINTR", 3*time.Microsecond)
	})
	g.planted()
	return g.logOrder()
}

// poisson calls f at the times of a Poisson process of rate per second.
func (g *generator) poisson(rate float64, f func(time.Duration)) {
	for t := time.Duration(0); ; {
		t += time.Duration(g.rng.ExpFloat64() / rate * float64(time.Second))
		if t >= genLength {
			return
		}
		f(t)
	}
}

// took draws a call time around median: log-normal, and now and then
// preempted.
func (g *generator) took(median time.Duration) time.Duration {
	d := float64(median) * math.Exp(0.4*g.rng.NormFloat64())
	if g.rng.Float64() < 0.01 {
		d *= 10 + 40*g.rng.Float64()
	}
	return time.Duration(d)
}

func (g *generator) request(t time.Duration) {
	size := int64(20 + g.rng.IntN(40))
	if g.plant == plantBigMessages && t >= genPlantAt && t < genPlantAt+5*time.Second {
		size = 64 << 10
	}
	g.roundTrip(t, g.client, size)
}

// roundTrip is one request of from to the server and on to the worker.
func (g *generator) roundTrip(t time.Duration, from flow.Peer, size int64) {
	sock, ch := g.sock, g.sockChannel
	if from == g.intruder {
		ch += "-intruder"
	}
	t = g.step(t, g.op(t, from, flow.UnixStream, flow.Send, ch, sock, size, g.server, "", g.took(15*time.Microsecond)))
	if g.rng.Float64() < 0.8 {
		g.op(t, g.server, flow.UnixStream, flow.Receive, ch, sock, 0, flow.Peer{}, "EAGAIN", g.took(2*time.Microsecond))
	}
	t = g.step(t, g.op(t, g.server, flow.UnixStream, flow.Receive, ch, sock, size, from, "", g.took(12*time.Microsecond)))
	send := g.took(20 * time.Microsecond)
	if g.plant == plantSlowSends && t >= genPlantAt && t < genPlantAt+6*time.Second {
		send *= 20
	}
	sent := g.op(t, g.server, flow.Pipe, flow.Send, g.pipeChannel, g.pipe, size, g.worker, "", send)
	// The worker was blocked reading since its last request.
	read := g.op(t, g.worker, flow.Pipe, flow.Receive, g.pipeChannel, g.pipe, size, g.server, "", g.took(30*time.Microsecond))
	read.Blocked = true
	t = g.step(t, sent)
	g.depth++
	ans := g.op(t, g.worker, flow.POSIXMQ, flow.Send, g.queueChannel, g.queue, 13, g.server, "", g.took(25*time.Microsecond))
	ans.QueueDepth = g.depth + g.stuckAt(t)
	t = g.step(t, ans)
	if g.rng.Float64() < 0.05 {
		// The server is slow to take the answer: more pile up meanwhile.
		extra := int64(1 + g.rng.IntN(2))
		for range extra {
			g.depth++
			ans := g.op(t, g.worker, flow.POSIXMQ, flow.Send, g.queueChannel, g.queue, 13, g.server, "", g.took(25*time.Microsecond))
			ans.QueueDepth = g.depth + g.stuckAt(t)
		}
		t += time.Millisecond
		for range extra {
			g.depth--
			got := g.op(t, g.server, flow.POSIXMQ, flow.Receive, g.queueChannel, g.queue, 13, g.worker, "", g.took(10*time.Microsecond))
			got.QueueDepth = g.depth + g.stuckAt(t)
		}
	}
	g.depth--
	got := g.op(t, g.server, flow.POSIXMQ, flow.Receive, g.queueChannel, g.queue, 13, g.worker, "", g.took(10*time.Microsecond))
	got.QueueDepth = g.depth + g.stuckAt(t)
	t = g.step(t, got)
	t = g.step(t, g.op(t, g.server, flow.UnixStream, flow.Send, ch, sock, 13, from, "", g.took(8*time.Microsecond)))
	g.op(t, from, flow.UnixStream, flow.Receive, ch, sock, 13, g.server, "", g.took(6*time.Microsecond))
}

// step is when the next operation of a request starts: after op, and a
// wake-up.
func (g *generator) step(t time.Duration, op *flow.Operation) time.Duration {
	return op.Time.Add(op.Duration).Sub(g.t0) + g.took(20*time.Microsecond)
}

func (g *generator) signal(t time.Duration, from, to flow.Peer, sig string) {
	ch := "signal:" + strconv.Itoa(int(from.PID)) + ":" + strconv.Itoa(int(to.PID)) + ":" + sig
	s := g.op(t, from, flow.Signal, flow.Send, ch, sig, 0, to, "", 0)
	r := g.op(t+g.took(50*time.Microsecond), to, flow.Signal, flow.Receive, ch, sig, 0, from, "", 0)
	for _, op := range []*flow.Operation{s, r} {
		op.Signal, op.StartUnknown, op.Syscall = sig, true, ""
	}
	s.Syscall = "kill"
}

// planted adds what p plants, from genPlantAt.
func (g *generator) planted() {
	at := genPlantAt
	switch g.plant {
	case plantNewPair:
		// A process never seen before starts using the server.
		for i := range 15 {
			g.roundTrip(at+time.Duration(i)*300*time.Millisecond, g.intruder, 30)
		}
	case plantNewChannel:
		// The client and the server, who know each other, open an admin
		// socket the baseline never had.
		for i := range 5 {
			t := at + time.Duration(i)*time.Second
			g.op(t, g.client, flow.UnixStream, flow.Send, "unix:admin", "/run/shop/admin.sock", 9, g.server, "", g.took(15*time.Microsecond))
			g.op(t+time.Millisecond, g.server, flow.UnixStream, flow.Receive, "unix:admin", "/run/shop/admin.sock", 9, g.client, "", g.took(10*time.Microsecond))
		}
	case plantBurst:
		// The client retries in a tight loop for 2 seconds: 20 times its
		// usual rate.
		for t := at; t < at+2*time.Second; t += time.Second / (20 * genRate) {
			g.roundTrip(t, g.client, 30)
		}
	case plantEPIPE:
		// The worker is gone; the server keeps writing to its pipe.
		for t := at; t < at+time.Second; t += 2 * time.Millisecond {
			g.op(t, g.server, flow.Pipe, flow.Send, g.pipeChannel, g.pipe, 0, flow.Peer{}, "EPIPE", g.took(4*time.Microsecond))
		}
	case plantSignalStorm:
		for t := at; t < at+2*time.Second; t += 5 * time.Millisecond {
			g.signal(t, g.supervisor, g.worker, "SIGHUP")
		}
	case plantQueueGrowth:
		// From 35s the worker sends one more answer a second that the
		// server never takes: the queue fills slowly.
		for t := at - 5*time.Second; t < genLength; t += time.Second {
			ans := g.op(t, g.worker, flow.POSIXMQ, flow.Send, g.queueChannel, g.queue, 13, g.server, "", g.took(25*time.Microsecond))
			ans.QueueDepth = g.depth + g.stuckAt(t)
		}
	}
}

func (g *generator) op(t time.Duration, p flow.Peer, mech flow.Mechanism, typ flow.OpType, channel, endpoint string,
	bytes int64, peer flow.Peer, errno string, took time.Duration) *flow.Operation {
	g.id++
	op := &flow.Operation{
		ID: g.id, Time: g.t0.Add(t), Duration: took, PID: p.PID, TID: p.PID, Comm: p.Comm,
		Mechanism: mech, Op: typ, Syscall: map[flow.OpType]string{flow.Send: "write", flow.Receive: "read"}[typ],
		Channel: channel, Endpoint: endpoint, Bytes: bytes, Peer: peer, Error: errno, QueueDepth: -1,
	}
	if mech == flow.POSIXMQ {
		op.Syscall = map[flow.OpType]string{flow.Send: "mq_timedsend", flow.Receive: "mq_timedreceive"}[typ]
	}
	if p.PID == g.supervisor.PID && mech != flow.Signal {
		panic("the supervisor only signals")
	}
	g.ops = append(g.ops, op)
	return op
}

// logOrder sorts the operations as the event log has them: by when they
// ended, 5% of them up to 200ms late.
func (g *generator) logOrder() []*flow.Operation {
	at := make(map[*flow.Operation]time.Time, len(g.ops))
	for _, op := range g.ops {
		end := op.Time.Add(op.Duration)
		if g.rng.Float64() < 0.05 {
			end = end.Add(time.Duration(g.rng.Int64N(int64(200 * time.Millisecond))))
		}
		at[op] = end
	}
	slices.SortStableFunc(g.ops, func(a, b *flow.Operation) int { return at[a].Compare(at[b]) })
	return g.ops
}
