package main

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"syscall"
	"time"
)

// The pgbench workload's PostgreSQL: a cluster of its own, started for
// the workload's runs and stopped after them, that listens only on a unix
// socket in a temporary directory.

// pgBinDefault is where Debian's postgresql-15 puts the server and
// pgbench.
const pgBinDefault = "/usr/lib/postgresql/15/bin"

// pgPort names the socket file (.s.PGSQL.5432); with no TCP listener it
// cannot clash with another cluster's port.
const pgPort = "5432"

// The driver finds the cluster through these.
const (
	pgHostEnv = "ICPTRACK_BENCH_PGHOST" // the socket's directory
	pgBinEnv  = "ICPTRACK_BENCH_PGBIN"
)

// pgInstall says what to do when PostgreSQL is missing.
const pgInstall = "apt-get install postgresql-15, or leave the workload out with --skip pgbench"

// checkPostgres tells whether the programs the workload runs are there,
// and the user the server runs as: PostgreSQL refuses to run as root.
func checkPostgres(bin string) error {
	for _, p := range []string{"initdb", "postgres", "pg_isready", "psql", "pgbench"} {
		if _, err := os.Stat(filepath.Join(bin, p)); err != nil {
			return fmt.Errorf("the pgbench workload needs PostgreSQL 15, and there is no %s: %s", filepath.Join(bin, p), pgInstall)
		}
	}
	if _, err := user.Lookup("postgres"); err != nil {
		return fmt.Errorf("the pgbench workload runs PostgreSQL as the postgres user, which does not exist (%v): %s", err, pgInstall)
	}
	return nil
}

type pgCluster struct {
	bin, dir string
	cred     *syscall.Credential
	server   *exec.Cmd // the postmaster
	exited   chan struct{}
	log      *os.File
}

// startPostgres initialises a cluster in a new temporary directory as the
// postgres user, starts it, fills it with pgbench -i at scale, and loads
// the tables into shared buffers, so that every run, the first one too,
// reads from memory. On failure it leaves nothing behind.
func startPostgres(bin string, scale int) (c *pgCluster, err error) {
	u, err := user.Lookup("postgres")
	if err != nil {
		return nil, fmt.Errorf("the postgres user: %w: %s", err, pgInstall)
	}
	uid, _ := strconv.ParseUint(u.Uid, 10, 32)
	gid, _ := strconv.ParseUint(u.Gid, 10, 32)
	c = &pgCluster{bin: bin, cred: &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}, exited: make(chan struct{})}
	if c.dir, err = os.MkdirTemp("", "icptrack-pgbench"); err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			c.stop()
		}
	}()
	if err := os.Chown(c.dir, int(uid), int(gid)); err != nil {
		return nil, err
	}
	data := filepath.Join(c.dir, "data")
	if out, err := c.asPostgres("initdb", "-D", data, "-U", "postgres", "--auth=trust",
		"--no-locale", "-E", "UTF8", "--no-sync").CombinedOutput(); err != nil {
		return nil, fmt.Errorf("initdb: %v: %s", err, lastLines(string(out), 6))
	}
	if c.log, err = os.Create(filepath.Join(c.dir, "postgres.log")); err != nil {
		return nil, err
	}
	// fsync off: the data is thrown away. Shared buffers of 256 MB hold
	// the whole data set at scale 10 (about 160 MB), so that the runs
	// measure queries and their IPC, not the page cache.
	c.server = c.asPostgres("postgres", "-D", data, "-k", c.dir, "-p", pgPort,
		"-c", "listen_addresses=", "-c", "fsync=off", "-c", "shared_buffers=256MB")
	c.server.Stdout, c.server.Stderr = c.log, c.log
	if err := c.server.Start(); err != nil {
		return nil, fmt.Errorf("starting postgres: %w", err)
	}
	track(c.server.Process.Pid)
	go func() { _ = c.server.Wait(); close(c.exited) }()
	if err := c.waitReady(30 * time.Second); err != nil {
		return nil, err
	}
	steps := [][]string{
		{"pgbench", "-i", "-q", "-s", strconv.Itoa(scale)},
		{"psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-c", "CREATE EXTENSION pg_prewarm",
			"-c", "SELECT pg_prewarm('pgbench_accounts'), pg_prewarm('pgbench_accounts_pkey')"},
	}
	for _, s := range steps {
		cmd := exec.Command(filepath.Join(bin, s[0]), append(s[1:], c.connArgs()...)...)
		if out, err := cmd.CombinedOutput(); err != nil {
			return nil, fmt.Errorf("%s: %v: %s", s[0], err, lastLines(string(out), 6))
		}
	}
	return c, nil
}

// asPostgres runs one of PostgreSQL's programs as the postgres user, in
// the cluster's directory, in a process group of its own.
func (c *pgCluster) asPostgres(name string, args ...string) *exec.Cmd {
	cmd := exec.Command(filepath.Join(c.bin, name), args...)
	cmd.Dir = c.dir
	cmd.Env = []string{"LC_ALL=C", "PATH=/usr/bin:/bin", "HOME=" + c.dir}
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: c.cred, Setpgid: true}
	return cmd
}

// connArgs connect a client, as root, to the cluster's socket.
func (c *pgCluster) connArgs() []string {
	return []string{"-h", c.dir, "-p", pgPort, "-U", "postgres", "postgres"}
}

func (c *pgCluster) env() []string {
	return []string{pgHostEnv + "=" + c.dir, pgBinEnv + "=" + c.bin}
}

func (c *pgCluster) waitReady(limit time.Duration) error {
	for deadline := time.Now().Add(limit); ; {
		if exec.Command(filepath.Join(c.bin, "pg_isready"), "-q", "-h", c.dir, "-p", pgPort).Run() == nil {
			return nil
		}
		select {
		case <-c.exited:
			return fmt.Errorf("postgres exited: %s", c.logTail())
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("postgres did not accept connections within %s: %s", limit, c.logTail())
		}
	}
}

func (c *pgCluster) logTail() string {
	b, _ := os.ReadFile(filepath.Join(c.dir, "postgres.log"))
	return lastLines(string(b), 6)
}

// stop shuts the server down (fast: SIGINT; immediate, SIGQUIT, if that
// takes more than 10 s) and removes the directory.
func (c *pgCluster) stop() {
	if c.server != nil && c.server.Process != nil {
		_ = c.server.Process.Signal(syscall.SIGINT)
		select {
		case <-c.exited:
		case <-time.After(10 * time.Second):
			_ = c.server.Process.Signal(syscall.SIGQUIT)
			select {
			case <-c.exited:
			case <-time.After(5 * time.Second):
				_ = syscall.Kill(-c.server.Process.Pid, syscall.SIGKILL)
				<-c.exited
			}
		}
		untrack(c.server.Process.Pid)
	}
	if c.log != nil {
		c.log.Close()
	}
	_ = os.RemoveAll(c.dir)
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
