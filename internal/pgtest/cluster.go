// Package pgtest runs a private PostgreSQL cluster: initialised in a
// temporary directory as the postgres user (PostgreSQL refuses to run as
// root), listening only on a unix socket in that directory, and removed
// when stopped. The benchmark's pgbench workload and the database tests
// each start one, so that they touch no cluster of the machine's.
package pgtest

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// DefaultBin is where Debian's postgresql-15 puts the server and its
// programs.
const DefaultBin = "/usr/lib/postgresql/15/bin"

// Port names the socket file (.s.PGSQL.5432); with no TCP listener it
// cannot clash with another cluster's port.
const Port = "5432"

// Install says how to get PostgreSQL.
const Install = "apt-get install postgresql-15"

// Options say how to start a cluster.
type Options struct {
	// Bin holds initdb, postgres and pg_isready (DefaultBin if empty).
	Bin string
	// Settings are the server's settings, name=value, given as -c.
	Settings []string
	// HBA lines go before initdb's own in pg_hba.conf, which trusts
	// every local connection: "local all writer scram-sha-256" makes
	// one user give a password.
	HBA []string
}

// Check tells whether the programs are in bin, with initdb, postgres and
// pg_isready, and whether the postgres user the server runs as exists.
// The error says what is missing and how to install it.
func Check(bin string, programs ...string) error {
	for _, p := range append([]string{"initdb", "postgres", "pg_isready"}, programs...) {
		if _, err := os.Stat(filepath.Join(bin, p)); err != nil {
			return fmt.Errorf("PostgreSQL 15 is not installed: there is no %s (%s)", filepath.Join(bin, p), Install)
		}
	}
	if _, err := user.Lookup("postgres"); err != nil {
		return fmt.Errorf("PostgreSQL runs as the postgres user, which does not exist (%v): %s", err, Install)
	}
	return nil
}

// Cluster is a running (or stopped) cluster of its own.
type Cluster struct {
	bin, dir string
	opts     Options
	cred     *syscall.Credential
	server   *exec.Cmd // the postmaster, while it runs
	exited   chan struct{}
	log      *os.File
}

// Start initialises a cluster in a new temporary directory and starts
// it. On failure it leaves nothing behind.
func Start(o Options) (c *Cluster, err error) {
	if o.Bin == "" {
		o.Bin = DefaultBin
	}
	u, err := user.Lookup("postgres")
	if err != nil {
		return nil, fmt.Errorf("the postgres user: %w: %s", err, Install)
	}
	uid, _ := strconv.ParseUint(u.Uid, 10, 32)
	gid, _ := strconv.ParseUint(u.Gid, 10, 32)
	c = &Cluster{bin: o.Bin, opts: o, cred: &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}}
	if c.dir, err = os.MkdirTemp("", "icptrack-pg"); err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			c.Remove()
		}
	}()
	if err := os.Chown(c.dir, int(uid), int(gid)); err != nil {
		return nil, err
	}
	// The directory holds the socket: every user may reach it, as they
	// may reach /var/run/postgresql.
	if err := os.Chmod(c.dir, 0o755); err != nil {
		return nil, err
	}
	if out, err := c.asPostgres("initdb", "-D", c.data(), "-U", "postgres", "--auth=trust",
		"--no-locale", "-E", "UTF8", "--no-sync").CombinedOutput(); err != nil {
		return nil, fmt.Errorf("initdb: %v: %s", err, LastLines(string(out), 6))
	}
	if len(o.HBA) > 0 {
		if err := c.prependHBA(o.HBA); err != nil {
			return nil, err
		}
	}
	if c.log, err = os.Create(filepath.Join(c.dir, "postgres.log")); err != nil {
		return nil, err
	}
	if err := c.Resume(); err != nil {
		return nil, err
	}
	return c, nil
}

func (c *Cluster) data() string { return filepath.Join(c.dir, "data") }

func (c *Cluster) prependHBA(lines []string) error {
	path := filepath.Join(c.data(), "pg_hba.conf")
	old, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	return os.WriteFile(path, append([]byte(strings.Join(lines, "\n")+"\n"), old...), 0o600)
}

// Resume starts the server (again), on the data it had, and waits until
// it takes connections.
func (c *Cluster) Resume() error {
	if c.server != nil {
		return errors.New("the cluster's server is running already")
	}
	// fsync off: the data is thrown away.
	args := []string{"-D", c.data(), "-k", c.dir, "-p", Port, "-c", "listen_addresses=", "-c", "fsync=off"}
	for _, s := range c.opts.Settings {
		args = append(args, "-c", s)
	}
	server := c.asPostgres("postgres", args...)
	server.Stdout, server.Stderr = c.log, c.log
	if err := server.Start(); err != nil {
		return fmt.Errorf("starting postgres: %w", err)
	}
	c.server, c.exited = server, make(chan struct{})
	go func(exited chan struct{}) { _ = server.Wait(); close(exited) }(c.exited)
	if err := c.waitReady(30 * time.Second); err != nil {
		c.Stop()
		return err
	}
	return nil
}

// asPostgres runs one of PostgreSQL's programs as the postgres user, in
// the cluster's directory, in a process group of its own.
func (c *Cluster) asPostgres(name string, args ...string) *exec.Cmd {
	cmd := exec.Command(filepath.Join(c.bin, name), args...)
	cmd.Dir = c.dir
	cmd.Env = []string{"LC_ALL=C", "PATH=/usr/bin:/bin", "HOME=" + c.dir}
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: c.cred, Setpgid: true}
	return cmd
}

// Dir is the cluster's directory, where its socket is: a client's host.
func (c *Cluster) Dir() string { return c.dir }

// Bin is where the cluster's programs are.
func (c *Cluster) Bin() string { return c.bin }

// PID is the postmaster's pid, also its process group; 0 when stopped.
func (c *Cluster) PID() int {
	if c.server == nil {
		return 0
	}
	return c.server.Process.Pid
}

// URL connects as user to database over the cluster's socket.
func (c *Cluster) URL(user, database string) string {
	return fmt.Sprintf("postgres://%s@/%s?host=%s&port=%s", user, database, c.dir, Port)
}

// ConnArgs connect psql, pgbench and the like, as postgres, to the
// cluster's socket.
func (c *Cluster) ConnArgs() []string {
	return []string{"-h", c.dir, "-p", Port, "-U", "postgres", "postgres"}
}

// Psql runs SQL as postgres in the postgres database, stopping at the
// first error, and returns what it printed: unaligned, without headers.
func (c *Cluster) Psql(sql string) (string, error) {
	cmd := exec.Command(filepath.Join(c.bin, "psql"), append([]string{"-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-c", sql}, c.ConnArgs()...)...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("psql -c %q: %v: %s", sql, err, LastLines(string(out), 6))
	}
	return strings.TrimSpace(string(out)), nil
}

func (c *Cluster) waitReady(limit time.Duration) error {
	for deadline := time.Now().Add(limit); ; {
		if exec.Command(filepath.Join(c.bin, "pg_isready"), "-q", "-h", c.dir, "-p", Port).Run() == nil {
			return nil
		}
		select {
		case <-c.exited:
			return fmt.Errorf("postgres exited: %s", c.LogTail())
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("postgres did not accept connections within %s: %s", limit, c.LogTail())
		}
	}
}

// LogTail is the last lines the server logged.
func (c *Cluster) LogTail() string {
	b, _ := os.ReadFile(filepath.Join(c.dir, "postgres.log"))
	return LastLines(string(b), 6)
}

// Stop shuts the server down (fast: SIGINT, which ends every session;
// immediate, SIGQUIT, if that takes more than 10 s) and keeps the data
// for Resume.
func (c *Cluster) Stop() {
	if c.server == nil {
		return
	}
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
	c.server = nil
}

// Remove stops the server and removes the cluster's directory.
func (c *Cluster) Remove() {
	c.Stop()
	if c.log != nil {
		c.log.Close()
	}
	_ = os.RemoveAll(c.dir)
}

// LastLines are s's last n lines, for errors that quote a program's
// output.
func LastLines(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return strings.Join(lines[max(len(lines)-n, 0):], "\n")
}
