package main

import (
	"context"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/icptrack/icptrack/exporter/postgres"
	"github.com/icptrack/icptrack/flow"
	"github.com/icptrack/icptrack/internal/pgtest"
)

// A --database that cannot be used is a usage error, said before
// anything starts, without the password.
func TestDatabaseURLMistakesAreUsageErrors(t *testing.T) {
	r := run(t, "run", "--database", "mysql://root:s3cret@db/icptrack", "--", "true")
	oneLineError(t, r, 2, "--database", "not a PostgreSQL URL", "postgres://USER@HOST:PORT/DATABASE")
	r = run(t, "run", "--database", "postgres://writer:s3cret@db:port/icptrack", "--", "true")
	oneLineError(t, r, 2, "--database", "writer:xxxxx@", "postgres://USER@HOST:PORT/DATABASE")
	if strings.Contains(r.stderr, "s3cret") {
		t.Errorf("the password is shown: %s", r.stderr)
	}
	r = run(t, "trace", "--mode", "metrics", "--database", "postgres://db/icptrack")
	oneLineError(t, r, 2, "--database needs --mode events")
	cfg := filepath.Join(t.TempDir(), "c.yaml")
	if err := os.WriteFile(cfg, []byte("database:\n  url: postgres://db/x\n  table_prefix: 'Bad Prefix'\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	r = run(t, "run", "--config", cfg, "--", "true")
	oneLineError(t, r, 2, cfg+":3: database.table_prefix", "lower-case letters")
}

// A database that refuses icptrack stops it at start, before any BPF is
// loaded, with one line that says what to do; the URL may come from the
// configuration file.
func TestDatabaseThatRefusesStopsIcptrackAtStart(t *testing.T) {
	c := pgtest.ForTest(t, pgtest.Options{HBA: []string{"local all writer scram-sha-256"}})
	if _, err := c.Psql("CREATE ROLE writer LOGIN PASSWORD 'right-pw-42'"); err != nil {
		t.Fatal(err)
	}
	url := strings.Replace(c.URL("writer", "postgres"), "writer@", "writer:wrong-pw-17@", 1)
	cfg := filepath.Join(t.TempDir(), "c.yaml")
	if err := os.WriteFile(cfg, []byte("database:\n  url: "+url+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	r := run(t, "run", "--config", cfg, "--", "true")
	oneLineError(t, r, 1, "password authentication failed", "check the user and the password", "writer:xxxxx@")
	if strings.Contains(r.stderr, "wrong-pw-17") {
		t.Errorf("the password is shown: %s", r.stderr)
	}
	r = run(t, "run", "--database", strings.Replace(c.URL("postgres", "postgres"), "/postgres?", "/nope?", 1), "--", "true")
	oneLineError(t, r, 1, `database "nope" does not exist`, "createdb nope")
}

// Every operation of a traced run is a row of the database, exactly as
// the event log of the same run has it; nothing is dropped, and the
// summary says so.
func TestRunWritesTheEventLogToTheDatabase(t *testing.T) {
	needsBPF(t)
	c := pgtest.ForTest(t, pgtest.Options{})
	dir := t.TempDir()
	events := filepath.Join(dir, "events.jsonl")
	cmd := mixWorkload(t)
	args := []string{"run", "--events", events, "--payload", "16", "--cmdline", "--database", c.URL("postgres", "postgres"), "--"}
	cmd.Args = append(append([]string{binary}, args...), cmd.Args...)
	cmd.Path = binary
	r := runCmd(t, cmd)
	if r.code != 0 {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	fromLog := captureOps(t, events)
	if len(fromLog) < 100 {
		t.Fatalf("the event log has %d operations: the workload was not traced", len(fromLog))
	}
	if want := "icptrack: postgres: " + strconv.Itoa(len(fromLog)) + " operations written, 0 dropped"; !strings.Contains(r.stderr, want) {
		t.Errorf("the summary does not say %q:\n%s", want, r.stderr)
	}

	ctx := context.Background()
	conn, err := pgx.Connect(ctx, c.URL("postgres", "postgres"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	fromDB, err := postgres.ReadOperations(ctx, conn, postgres.DefaultTablePrefix, "")
	if err != nil {
		t.Fatal(err)
	}
	byID := func(ops []*flow.Operation) {
		sort.Slice(ops, func(i, j int) bool { return ops[i].ID < ops[j].ID })
	}
	byID(fromLog)
	byID(fromDB)
	if len(fromDB) != len(fromLog) {
		t.Fatalf("%d rows, and %d operations in the event log", len(fromDB), len(fromLog))
	}
	mechanisms := map[flow.Mechanism]bool{}
	for i := range fromLog {
		mechanisms[fromLog[i].Mechanism] = true
		if !reflect.DeepEqual(fromDB[i], fromLog[i]) {
			t.Errorf("row:\n%+v\nevent log:\n%+v", fromDB[i], fromLog[i])
		}
	}
	if len(mechanisms) < 8 {
		t.Errorf("the run covered %d mechanisms, want the mix's 8 or more", len(mechanisms))
	}
	var drops int64
	if err := conn.QueryRow(ctx, "SELECT coalesce(sum(count), 0)::bigint FROM icptrack_drops").Scan(&drops); err != nil || drops != 0 {
		t.Errorf("drop rows: %d, %v; want none", drops, err)
	}
}
