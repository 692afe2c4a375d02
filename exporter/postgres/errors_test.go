package postgres

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/icptrack/icptrack/internal/config"
)

func TestRedactHidesEveryPassword(t *testing.T) {
	for in, want := range map[string]string{
		"postgres://writer:s3cret@db:5432/icptrack":             "postgres://writer:xxxxx@db:5432/icptrack",
		"postgresql://writer:p@ss/word@db/icptrack?x=1":         "postgresql://writer:xxxxx@db/icptrack?x=1",
		"postgres://writer:s3cret@/icptrack?host=/run/pg":       "postgres://writer:xxxxx@/icptrack?host=/run/pg",
		"postgres://db/icptrack?password=s3cret&sslmode=verify": "postgres://db/icptrack?password=xxxxx&sslmode=verify",
		"postgres://db/icptrack?sslmode=require&sslpassword=k":  "postgres://db/icptrack?sslmode=require&sslpassword=xxxxx",
		"postgres://writer@db/icptrack":                         "postgres://writer@db/icptrack",
		"postgres://writer:s3cret@db/x?application_name=a@b":    "postgres://writer:xxxxx@db/x?application_name=a@b",
		"mysql://root:s3cret@db/icptrack":                       "mysql://root:xxxxx@db/icptrack",
		"host=db password=s3cret user=writer":                   "host=db password=xxxxx user=writer",
		"host=db password='s3 cret'":                            "host=db password=xxxxx",
	} {
		if got := Redact(in); got != want {
			t.Errorf("Redact(%q) = %q, want %q", in, got, want)
		}
	}
}

// A URL that cannot be used is a *URLError (the CLI exits 2): one line
// that says what a URL looks like, without the password.
func TestMalformedURLIsAUsageError(t *testing.T) {
	for _, u := range []string{
		"mysql://root:s3cret@db/icptrack",
		"postgres://writer:s3cret@db:notaport/icptrack",
		"postgres://writer:s3cret@db/icptrack?sslmode=maybe",
		"host=db password=s3cret",
	} {
		_, err := Open(context.Background(), Config{URL: u})
		var ue *URLError
		if !errors.As(err, &ue) {
			t.Errorf("%s: %v is not a URLError", u, err)
			continue
		}
		msg := err.Error()
		if strings.Contains(msg, "s3cret") || strings.Contains(msg, "\n") || !strings.Contains(msg, "use postgres://USER@HOST:PORT/DATABASE") {
			t.Errorf("%s: %q is not one line that hides the password and shows a URL", u, msg)
		}
	}
	for _, c := range []Config{
		{URL: "postgres://db/x", TablePrefix: "Drop Table"},
		{URL: "postgres://db/x", BatchSize: MaxBatchSize + 1},
		{URL: "postgres://db/x", BatchSize: 100, Queue: 10},
	} {
		if err := c.Check(); err == nil {
			t.Errorf("%+v was accepted", c)
		}
	}
}

// At start, what keeps icptrack from writing is one line that says what
// to do, and never shows the password; the password may come from the
// URL, PGPASSWORD or ~/.pgpass.
func TestStartErrorsSayWhatToDo(t *testing.T) {
	c := startCluster(t, "local all writer scram-sha-256")
	conn := dial(t, c)
	if _, err := conn.Exec(context.Background(), "CREATE ROLE writer LOGIN SUPERUSER PASSWORD 'right-pw-42'"); err != nil {
		t.Fatal(err)
	}
	withPassword := func(pw string) string {
		return strings.Replace(c.URL("writer", "postgres"), "writer@", "writer:"+pw+"@", 1)
	}
	t.Setenv("PGPASSWORD", "")
	t.Setenv("HOME", t.TempDir())

	for _, tc := range []struct {
		url, want, hint string
	}{
		{withPassword("wrong-pw-17"), "password authentication failed", "check the user and the password"},
		{c.URL("writer", "postgres"), "password", "check the user and the password"},
		{strings.Replace(c.URL("postgres", "postgres"), "/postgres?", "/nope?", 1), `database "nope" does not exist`, "createdb nope"},
		{"postgres://writer:wrong-pw-17@/postgres?host=" + t.TempDir() + "&connect_timeout=5", "connect", "is PostgreSQL running"},
	} {
		_, err := Open(context.Background(), Config{URL: tc.url})
		if err == nil {
			t.Errorf("%s: opened", tc.url)
			continue
		}
		msg := err.Error()
		t.Log(msg)
		if !strings.Contains(msg, tc.want) || !strings.Contains(msg, tc.hint) || strings.Contains(msg, "\n") || strings.Contains(msg, "wrong-pw-17") {
			t.Errorf("%s:\n%s\nwant one line with %q and %q, and no password", tc.url, msg, tc.want, tc.hint)
		}
	}

	// The password from the environment, then from ~/.pgpass.
	t.Setenv("PGPASSWORD", "right-pw-42")
	s, err := Open(context.Background(), Config{URL: c.URL("writer", "postgres")})
	if err != nil {
		t.Fatalf("with PGPASSWORD: %v", err)
	}
	s.Close()
	t.Setenv("PGPASSWORD", "")
	home := t.TempDir()
	t.Setenv("HOME", home)
	if err := os.WriteFile(filepath.Join(home, ".pgpass"), []byte("localhost:5432:postgres:writer:right-pw-42\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	s, err = Open(context.Background(), Config{URL: c.URL("writer", "postgres")})
	if err != nil {
		t.Fatalf("with ~/.pgpass: %v", err)
	}
	s.Close()
}

// The password never reaches the log or an error, while the database is
// away and when it comes back.
func TestPasswordIsNeverLogged(t *testing.T) {
	c := startCluster(t, "local all writer scram-sha-256")
	conn := dial(t, c)
	if _, err := conn.Exec(context.Background(), "CREATE ROLE writer LOGIN SUPERUSER PASSWORD 'right-pw-42'"); err != nil {
		t.Fatal(err)
	}
	log, logs := observed()
	url := strings.Replace(c.URL("writer", "postgres"), "writer@", "writer:right-pw-42@", 1)
	s := open(t, Config{URL: url, BatchSize: 5, FlushTimeout: 500 * time.Millisecond, Log: log})
	if strings.Contains(s.URL(), "right-pw-42") {
		t.Fatalf("URL() = %s", s.URL())
	}
	ops := generated(20, time.Now())
	for _, op := range ops[:10] {
		s.Add(op)
	}
	if err := s.Flush(); err != nil {
		t.Fatal(err)
	}
	c.Stop()
	for _, op := range ops[10:] {
		s.Add(op)
	}
	if err := s.Flush(); err != nil {
		t.Fatalf("flushing with the database down: %v; want it logged, as a backend that is down", err)
	}
	if err := c.Resume(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 30*time.Second, "the writer to come back", func() bool { return s.Stats().Lagging == 0 })
	text := logText(logs)
	if !strings.Contains(text, "not taking operations") || !strings.Contains(text, "not written to PostgreSQL in time") ||
		!strings.Contains(text, "writer:xxxxx@") {
		t.Fatalf("the log does not say the database went away, with the URL redacted:\n%s", text)
	}
	if strings.Contains(text, "right-pw-42") {
		t.Fatalf("the password is in the log:\n%s", text)
	}
}

// The configuration file checks the database settings without this
// package (the Collector receiver reads that package too, and needs no
// PostgreSQL client): it must accept what Config.Check accepts.
func TestConfigFileChecksAsThisPackageDoes(t *testing.T) {
	for _, p := range []string{"icptrack_", "a", "_x9", "9x", "Icp", "ipc-x", "drop table", strings.Repeat("a", 40), strings.Repeat("a", 41), ""} {
		_, fileErr := config.Parse("c.yaml", []byte("database:\n  table_prefix: '"+p+"'\n"))
		if (fileErr == nil) != (CheckTablePrefix(p) == nil) {
			t.Errorf("table prefix %q: the file says %v, this package %v", p, fileErr, CheckTablePrefix(p))
		}
	}
	for _, n := range []int{MaxBatchSize, MaxBatchSize + 1} {
		_, fileErr := config.Parse("c.yaml", []byte(fmt.Sprintf("database:\n  batch_size: %d\n", n)))
		if (fileErr == nil) != (n <= MaxBatchSize) {
			t.Errorf("batch size %d: the file says %v", n, fileErr)
		}
	}
	for _, n := range []int{MaxQueue, MaxQueue + 1} {
		_, fileErr := config.Parse("c.yaml", []byte(fmt.Sprintf("database:\n  queue: %d\n", n)))
		if (fileErr == nil) != (n <= MaxQueue) {
			t.Errorf("queue %d: the file says %v", n, fileErr)
		}
	}
}
