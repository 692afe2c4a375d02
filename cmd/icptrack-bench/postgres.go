package main

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"

	"github.com/icptrack/icptrack/internal/pgtest"
)

// The pgbench workload's PostgreSQL: a cluster of its own (pgtest),
// started for the workload's runs and stopped after them, that listens
// only on a unix socket in a temporary directory.

// pgBinDefault is where Debian's postgresql-15 puts the server and
// pgbench.
const pgBinDefault = pgtest.DefaultBin

// pgPort names the socket file (.s.PGSQL.5432).
const pgPort = pgtest.Port

// The driver finds the cluster through these.
const (
	pgHostEnv = "ICPTRACK_BENCH_PGHOST" // the socket's directory
	pgBinEnv  = "ICPTRACK_BENCH_PGBIN"
)

// pgInstall says what to do when PostgreSQL is missing.
const pgInstall = pgtest.Install + ", or leave the workload out with --skip pgbench"

// checkPostgres tells whether the programs the workload runs are there,
// and the user the server runs as: PostgreSQL refuses to run as root.
func checkPostgres(bin string) error {
	if err := pgtest.Check(bin, "psql", "pgbench"); err != nil {
		return fmt.Errorf("the pgbench workload needs it: %w, or leave the workload out with --skip pgbench", err)
	}
	return nil
}

type pgCluster struct {
	*pgtest.Cluster
	pgid int
}

// startPostgres starts a cluster, fills it with pgbench -i at scale, and
// loads the tables into shared buffers, so that every run, the first one
// too, reads from memory. On failure it leaves nothing behind.
func startPostgres(bin string, scale int) (*pgCluster, error) {
	// Shared buffers of 256 MB hold the whole data set at scale 10
	// (about 160 MB), so that the runs measure queries and their IPC,
	// not the page cache.
	pc, err := pgtest.Start(pgtest.Options{Bin: bin, Settings: []string{"shared_buffers=256MB"}})
	if err != nil {
		return nil, fmt.Errorf("%w (%s)", err, pgInstall)
	}
	c := &pgCluster{Cluster: pc, pgid: pc.PID()}
	track(c.pgid)
	steps := [][]string{
		{"pgbench", "-i", "-q", "-s", strconv.Itoa(scale)},
		{"psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-c", "CREATE EXTENSION pg_prewarm",
			"-c", "SELECT pg_prewarm('pgbench_accounts'), pg_prewarm('pgbench_accounts_pkey')"},
	}
	for _, s := range steps {
		cmd := exec.Command(filepath.Join(bin, s[0]), append(s[1:], c.ConnArgs()...)...)
		if out, err := cmd.CombinedOutput(); err != nil {
			c.stop()
			return nil, fmt.Errorf("%s: %v: %s", s[0], err, lastLines(string(out), 6))
		}
	}
	return c, nil
}

func (c *pgCluster) env() []string {
	return []string{pgHostEnv + "=" + c.Dir(), pgBinEnv + "=" + c.Bin()}
}

// stop shuts the server down and removes the directory.
func (c *pgCluster) stop() {
	c.Remove()
	untrack(c.pgid)
}

// othersNamed lists the processes (but this one) whose comm is one of
// names: icptrack trace --comm would trace them too.
func othersNamed(names ...string) []string {
	var found []string
	procs, _ := os.ReadDir("/proc")
	for _, p := range procs {
		pid, err := strconv.Atoi(p.Name())
		if err != nil || pid == os.Getpid() {
			continue
		}
		comm, err := os.ReadFile(filepath.Join("/proc", p.Name(), "comm"))
		if err != nil {
			continue
		}
		comm = bytes.TrimSpace(comm)
		for _, n := range names {
			if string(comm) == n {
				found = append(found, fmt.Sprintf("%s[%d]", comm, pid))
			}
		}
	}
	return found
}

var errNoCluster = errors.New("no PostgreSQL cluster: the harness starts one and names it in " + pgHostEnv)
