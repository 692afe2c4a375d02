package postgres

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/icptrack/icptrack/flow"
	"github.com/icptrack/icptrack/internal/pgtest"
)

// startCluster starts a PostgreSQL 15 of the test's own, with
// pg_stat_statements loaded so that tests can count the COPYs the server
// ran.
func startCluster(t *testing.T, hba ...string) *pgtest.Cluster {
	t.Helper()
	return pgtest.ForTest(t, pgtest.Options{Settings: []string{"shared_preload_libraries=pg_stat_statements"}, HBA: hba})
}

// dial connects the test itself, as postgres.
func dial(t *testing.T, c *pgtest.Cluster) *pgx.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, c.URL("postgres", "postgres"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	return conn
}

func query[T any](t *testing.T, conn *pgx.Conn, sql string, args ...any) T {
	t.Helper()
	var v T
	if err := conn.QueryRow(context.Background(), sql, args...).Scan(&v); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	return v
}

// open opens a sink, closed when the test ends.
func open(t *testing.T, cfg Config) *Sink {
	t.Helper()
	s, err := Open(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// observed is a logger whose entries the test reads.
func observed() (*zap.Logger, *observer.ObservedLogs) {
	core, logs := observer.New(zapcore.DebugLevel)
	return zap.New(core), logs
}

// logText is every entry, with its fields, as text.
func logText(logs *observer.ObservedLogs) string {
	var b strings.Builder
	for _, e := range logs.All() {
		fmt.Fprintf(&b, "%s %s %v\n", e.Level, e.Message, e.ContextMap())
	}
	return b.String()
}

// waitFor polls cond for up to limit.
func waitFor(t *testing.T, limit time.Duration, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(limit); !cond(); {
		if time.Now().After(deadline) {
			t.Fatalf("waited %s for %s", limit, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// generated are n operations that go through every mechanism and every
// operation type, with every field set in turn.
func generated(n int, t0 time.Time) []*flow.Operation {
	ops := make([]*flow.Operation, n)
	for i := range ops {
		m := flow.Mechanism(1 + i%(flow.MechanismCount-1))
		o := flow.OpType(1 + i%int(flow.Wake))
		op := &flow.Operation{
			ID: flow.OpID(uint64(i+1) * 0x9e3779b97f4a7c15), Time: t0.Add(time.Duration(i) * 1001 * time.Nanosecond),
			Duration: time.Duration(i * 7), PID: uint32(1000 + i%5), TID: uint32(2000 + i), PPID: 1,
			Comm: fmt.Sprintf("proc-%d", i%5), Mechanism: m, Op: o, Syscall: "sys" + fmt.Sprint(i%3),
			Channel: fmt.Sprintf("%s:%d", m, i%7), Endpoint: fmt.Sprintf("ep %d", i%11), Bytes: int64(i * 64),
			QueueDepth: -1, Blocked: i%2 == 0,
		}
		if i%3 == 0 {
			op.Peer = flow.Peer{PID: uint32(3000 + i), Comm: "peer"}
			op.Links = []flow.OpID{flow.OpID(i), flow.OpID(^uint64(i))}
		}
		if i%4 == 0 {
			op.Count, op.Busy = uint32(2+i%9), time.Duration(i*3)
		}
		if i%5 == 0 {
			op.Error = "EAGAIN"
		}
		if i%6 == 0 {
			op.Payload, op.PayloadCaptured, op.PayloadTruncated = []byte{byte(i), 0, 0xff}, true, i%12 == 0
		}
		if i%7 == 0 {
			op.QueueDepth, op.MessageType, op.HasMessageType = int64(i%4), -int64(i), true
		}
		if i%8 == 0 {
			op.Exe, op.Cmdline, op.ContainerID, op.CgroupID = "/usr/bin/x", "x --flag", "c0ffee", uint64(i)<<40
		}
		if i%9 == 0 {
			op.Signal, op.Peers = "SIGUSR1", []uint32{uint32(i), 4294967295}
		}
		ops[i] = op
	}
	return ops
}
