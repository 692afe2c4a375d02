package postgres

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"
)

// Many operations go in few COPYs: as many as there are full batches,
// counted by the sink and by the server (pg_stat_statements); a batch
// that is not full waits for BatchTimeout, then goes on a Tick.
func TestOperationsGoInBatchedCopies(t *testing.T) {
	c := startCluster(t)
	conn := dial(t, c)
	if _, err := conn.Exec(context.Background(), "CREATE EXTENSION pg_stat_statements"); err != nil {
		t.Fatal(err)
	}
	s := open(t, Config{URL: c.URL("postgres", "postgres"), BatchSize: 1000, BatchTimeout: time.Hour})
	if _, err := conn.Exec(context.Background(), "SELECT pg_stat_statements_reset()"); err != nil {
		t.Fatal(err)
	}
	ops := generated(10000, time.Now())
	for _, op := range ops {
		s.Add(op)
	}
	waitFor(t, 30*time.Second, "10 batches to be written", func() bool { return s.Stats().Written == 10000 })
	copies := query[int64](t, conn, "SELECT coalesce(sum(calls), 0)::bigint FROM pg_stat_statements WHERE query ILIKE 'copy%icptrack_operations%'")
	rows := query[int64](t, conn, "SELECT coalesce(sum(rows), 0)::bigint FROM pg_stat_statements WHERE query ILIKE 'copy%icptrack_operations%'")
	if s.Copies() != 10 || copies != 10 || rows != 10000 {
		t.Fatalf("10000 operations in batches of 1000: the sink made %d COPYs, the server ran %d with %d rows; want 10 with 10000", s.Copies(), copies, rows)
	}

	for _, op := range generated(5, time.Now()) {
		op.ID += 1 << 40
		s.Add(op)
	}
	start := time.Now()
	s.Tick(start)
	time.Sleep(200 * time.Millisecond)
	if s.Copies() != 10 || len(s.batch) != 5 {
		t.Fatalf("a batch of 5 went before its timeout: %d COPYs, %d operations waiting", s.Copies(), len(s.batch))
	}
	s.Tick(start.Add(time.Hour))
	waitFor(t, 10*time.Second, "the timed-out batch", func() bool { return s.Copies() == 11 })
	if n := query[int64](t, conn, "SELECT count(*) FROM icptrack_operations"); n != 10005 {
		t.Fatalf("%d rows, want 10005", n)
	}
}

// Agents that start together create the tables once, without an error;
// then a user that may only insert can write to them, a user that may
// create nothing is told what to grant, and tables of a newer icptrack
// are refused.
func TestSchemaIsCreatedOnceByAgentsStartingTogether(t *testing.T) {
	c := startCluster(t)
	conn := dial(t, c)
	const agents = 8
	var wg sync.WaitGroup
	errs := make(chan error, agents)
	for range agents {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s, err := Open(context.Background(), Config{URL: c.URL("postgres", "postgres")})
			if err == nil {
				err = s.Close()
			}
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatalf("an agent starting with the others: %v", err)
		}
	}
	if got := query[string](t, conn, "SELECT string_agg(version::text, ',') FROM icptrack_schema"); got != "1" {
		t.Fatalf("schema versions %q, want one row, 1", got)
	}
	got := query[string](t, conn, "SELECT string_agg(indexname, ',' ORDER BY indexname) FROM pg_indexes WHERE tablename LIKE 'icptrack_%'")
	if want := "icptrack_drops_time,icptrack_operations_channel,icptrack_operations_pid,icptrack_operations_time,icptrack_schema_pkey"; got != want {
		t.Fatalf("indexes %s, want %s", got, want)
	}
	if d := query[string](t, conn, "SELECT col_description('icptrack_operations'::regclass, 2)"); !strings.Contains(d, "nanoseconds") {
		t.Fatalf("time_ns is not described: %q", d)
	}

	for _, sql := range []string{
		"CREATE ROLE writer LOGIN", "GRANT SELECT ON icptrack_schema TO writer",
		"GRANT INSERT ON icptrack_operations, icptrack_drops TO writer", "CREATE ROLE nobody LOGIN",
	} {
		if _, err := conn.Exec(context.Background(), sql); err != nil {
			t.Fatal(err)
		}
	}
	s := open(t, Config{URL: c.URL("writer", "postgres")})
	s.Add(generated(1, time.Now())[0])
	if err := s.Flush(); err != nil {
		t.Fatalf("a user that may insert: %v", err)
	}
	if n := query[int64](t, conn, "SELECT count(*) FROM icptrack_operations"); n != 1 {
		t.Fatalf("%d rows, want the one the insert-only user wrote", n)
	}
	_, err := Open(context.Background(), Config{URL: c.URL("nobody", "postgres"), TablePrefix: "fresh_"})
	if err == nil || !strings.Contains(err.Error(), "permission denied") || !strings.Contains(err.Error(), "GRANT CREATE ON SCHEMA public TO nobody") {
		t.Fatalf("a user that may create nothing: %v; want permission denied and what to grant", err)
	}

	if _, err := conn.Exec(context.Background(), "INSERT INTO icptrack_schema (version) VALUES (2)"); err != nil {
		t.Fatal(err)
	}
	_, err = Open(context.Background(), Config{URL: c.URL("postgres", "postgres")})
	if err == nil || !strings.Contains(err.Error(), "schema version 2, newer than this icptrack's 1") {
		t.Fatalf("tables of a newer icptrack: %v", err)
	}
}

// When the database goes away mid-stream, Add never waits: operations
// fill the bounded queue, and the rest are dropped and counted. When it
// comes back, the queue is written, then the drops, as rows.
func TestDatabaseGoingAwayFillsTheQueueAndDropsAreWrittenWhenItReturns(t *testing.T) {
	c := startCluster(t)
	log, logs := observed()
	const batch, queue = 10, 50
	s := open(t, Config{URL: c.URL("postgres", "postgres"), BatchSize: batch, Queue: queue, BatchTimeout: time.Hour,
		FlushTimeout: time.Minute, Log: log})
	ops := generated(520, time.Now())
	for _, op := range ops[:20] {
		s.Add(op)
	}
	if err := s.Flush(); err != nil {
		t.Fatal(err)
	}

	c.Stop()
	start := time.Now()
	for _, op := range ops[20:] {
		s.Add(op)
	}
	s.RecordDrops(time.Now(), "ring_buffer", 7)
	// The pipeline also hands a sink its own drops: it counts them
	// itself, once.
	s.RecordDrops(time.Now(), Name, s.Stats().Dropped)
	if took := time.Since(start); took > time.Second {
		t.Fatalf("500 operations took %s to add with the database down", took)
	}
	st := s.Stats()
	// What waits: the queue's batches and the one the writer holds.
	if st.Lagging > queue+batch || st.Dropped < 500-(queue+batch) || st.Written != 20 || st.Written+st.Dropped+st.Lagging != 520 {
		t.Fatalf("with the database down: %+v; want at most %d waiting, the rest of 500 dropped", st, queue+batch)
	}
	waitFor(t, 10*time.Second, "the writer to say the database is down", func() bool {
		return strings.Contains(logText(logs), "not taking operations")
	})

	if err := c.Resume(); err != nil {
		t.Fatal(err)
	}
	if err := s.Flush(); err != nil {
		t.Fatal(err)
	}
	st = s.Stats()
	conn := dial(t, c)
	rows := query[int64](t, conn, "SELECT count(*) FROM icptrack_operations")
	distinct := query[int64](t, conn, "SELECT count(DISTINCT id) FROM icptrack_operations")
	if st.Lagging != 0 || st.Written+st.Dropped != 520 || uint64(rows) != st.Written || distinct != rows {
		t.Fatalf("after the database came back: %+v, %d rows (%d distinct)", st, rows, distinct)
	}
	drops := query[string](t, conn, "SELECT string_agg(reason || '=' || n, ',' ORDER BY reason) FROM (SELECT reason, sum(count) n FROM icptrack_drops GROUP BY reason) d")
	if want := fmt.Sprintf("postgres=%d,ring_buffer=7", st.Dropped); drops != want {
		t.Fatalf("drop rows %s, want %s", drops, want)
	}
	if !strings.Contains(logText(logs), "takes operations again") {
		t.Fatalf("the sink did not say the database came back:\n%s", logText(logs))
	}
}

// The correlator reuses an operation once Add returns: the sink writes
// what it was given, not what the operation became.
func TestAddKeepsACopy(t *testing.T) {
	c := startCluster(t)
	s := open(t, Config{URL: c.URL("postgres", "postgres")})
	op := generated(7, time.Now())[6]
	want := *op
	s.Add(op)
	op.Comm, op.Links[0], op.Payload[0] = "reused", 0, 'X'
	if err := s.Flush(); err != nil {
		t.Fatal(err)
	}
	got, err := ReadOperations(context.Background(), dial(t, c), DefaultTablePrefix, "")
	if err != nil || len(got) != 1 {
		t.Fatalf("%d rows, %v", len(got), err)
	}
	if got[0].Comm != want.Comm || got[0].Links[0] == 0 || got[0].Payload[0] == 'X' {
		t.Fatalf("the row holds what the operation became after Add: %+v", got[0])
	}
}
