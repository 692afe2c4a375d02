package main

import (
	"fmt"
	"strconv"
	"time"
)

const (
	msgSize     = 64
	streamChunk = 4096
	// sustainRate is the pace of the sustained workload, operations per
	// second.
	sustainRate = 200_000
)

// A workload is a fixed amount of IPC done by one or two processes of
// this binary, started in a role (roleEnv).
type workload struct {
	name  string
	about string
	// role and args start its driver: role NAME OPS ARGS...
	role string
	args []string
	// ops is the number of operations at --scale 1.
	ops int
	// mechanisms is icptrack's --mechanisms for it: what a user tracing
	// this program would ask for.
	mechanisms string
	// roundTrips: a ping-pong, whose driver reports round-trip latency.
	roundTrips bool
	// tax: run beside an icptrack tracing something else, not under it.
	tax bool
	// sustained: paced at sustainRate; its ops come from --sustain.
	sustained bool
	// coalesces: bursts of one thread's writes, which the default
	// coalescing sends as one record; also measured with a record per
	// call.
	coalesces bool
	// apiView: also measured with --api and a live view connected.
	apiView bool
	// reps overrides --reps (0: no override).
	reps int
	// noBPFStats: no extra run with the kernel's BPF statistics on.
	noBPFStats bool
	// seconds: the driver runs this long at --scale 1 (whole seconds, at
	// least 1) instead of a count of operations; its rate is what it did.
	seconds int
	// comms: icptrack selects the workload's processes by these names
	// (icptrack trace --comm, beside the driver) instead of following the
	// driver (icptrack run): they are not all the driver's descendants.
	comms string
	// setup starts what the driver talks to (a server) before the
	// workload's runs; it returns the environment the driver finds it by,
	// and how to stop it.
	setup func(b *bench) (env []string, stop func(), err error)
	// straceNA says why strace cannot measure the workload ("": it can).
	straceNA string
}

func workloads(sustain time.Duration) []workload {
	channels := func(n int, label string) workload {
		return workload{
			name:       "channels-" + label,
			about:      fmt.Sprintf("%d channels open at once (half pipes, half unix stream socketpairs) between two processes; one 64-byte message per channel in turn, round-robin", n),
			role:       "channels",
			args:       []string{strconv.Itoa(n)},
			ops:        300_000,
			mechanisms: "pipe,unix_stream",
		}
	}
	return []workload{
		{name: "pipe-pingpong", about: "64-byte round trips over two pipes", role: "pipe-pingpong",
			ops: 100_000, mechanisms: "pipe", roundTrips: true, apiView: true},
		{name: "unix-pingpong", about: "64-byte round trips over a unix stream socketpair", role: "unix-pingpong",
			ops: 100_000, mechanisms: "unix_stream", roundTrips: true},
		{name: "mq-pingpong", about: "64-byte round trips over two POSIX message queues", role: "mq-pingpong",
			ops: 100_000, mechanisms: "posix_mq", roundTrips: true},
		{name: "tcp-pingpong", about: "64-byte round trips over loopback TCP (127.0.0.1, TCP_NODELAY)", role: "tcp-pingpong",
			ops: 50_000, mechanisms: "tcp", roundTrips: true},
		{name: "pipe-stream", about: "one-way 64-byte pipe writes, the writer never sleeps", role: "pipe-stream",
			ops: 2_000_000, mechanisms: "pipe", coalesces: true},
		{name: "unix-stream-4k", about: "one-way 4 KiB writes on a unix stream socketpair, the writer never sleeps, the reader reads 4 KiB", role: "unix-stream-4k",
			ops: 500_000, mechanisms: "unix_stream"},
		channels(10, "10"),
		channels(1_000, "1k"),
		channels(10_000, "10k"),
		{name: "sustained-200k", about: fmt.Sprintf("64-byte pipe writes paced at %d/s in small bursts for %s, with a reader; ops/s is the pace achieved", sustainRate, sustain),
			role: "sustained", args: []string{strconv.Itoa(sustainRate)},
			ops: int(sustain.Seconds() * sustainRate), mechanisms: "pipe", sustained: true, reps: 1, noBPFStats: true},
		pgbenchWorkload(),
		{name: "file-write", about: "64-byte writes to a regular file by a process icptrack does not trace", role: "file-write",
			ops: 2_000_000, tax: true},
	}
}

// runRole runs one process of a workload. Drivers print a result as JSON
// on standard output; partners (echo, sink, ...) print nothing.
func runRole(role string, args []string) error {
	n := 0
	if len(args) > 0 {
		var err error
		if n, err = strconv.Atoi(args[0]); err != nil {
			return fmt.Errorf("the first argument must be a count of operations, not %q", args[0])
		}
	}
	arg := func(i int) int {
		if i >= len(args) {
			return 0
		}
		v, _ := strconv.Atoi(args[i])
		return v
	}
	switch role {
	case "pipe-pingpong":
		return pipePingPong(n)
	case "unix-pingpong":
		return unixPingPong(n)
	case "mq-pingpong":
		return mqPingPong(n)
	case "tcp-pingpong":
		return tcpPingPong(n)
	case "pipe-stream":
		return pipeStream(n)
	case "unix-stream-4k":
		return unixStream4k(n)
	case "channels":
		return channels(n, arg(1))
	case "sustained":
		return sustained(n, arg(1))
	case "file-write":
		return fileWrite(n)
	case "pgbench":
		return pgbenchRun(n)
	// Partners.
	case "echo":
		return echo(fdConn{in: 3, out: 4}, n)
	case "mq-echo":
		return echo(mqConn{in: 3, out: 4}, n)
	case "tcp-echo":
		return tcpEcho(3, n)
	case "sink":
		return sink(3, n)
	case "channels-reader":
		return channelsReader(n, arg(1))
	}
	return fmt.Errorf("unknown role %q", role)
}
