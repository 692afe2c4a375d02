package main

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// The pgbench workload: PostgreSQL's own benchmark client, select-only
// (-S), 4 clients on 2 threads, over the unix socket of a cluster the
// harness starts (postgres.go). A transaction is one query and its
// answer: a round trip between pgbench and a backend.
const (
	pgbenchClients = "4"
	pgbenchThreads = "2"
	// pgbenchSeconds is a run's length at --scale 1, as long as the
	// slowest of the other workloads' traced runs.
	pgbenchSeconds = 3
)

func pgbenchWorkload() workload {
	return workload{
		name: "pgbench",
		about: "PostgreSQL 15's pgbench -S (select only) with 4 clients on 2 threads, over the unix socket, " +
			"against a cluster of its own at scale --pgbench-scale that fits in shared buffers; an operation is a transaction " +
			"(one query and its answer), ops/s is pgbench's tps, RT is the transaction's latency from pgbench -l",
		role:       "pgbench",
		seconds:    pgbenchSeconds,
		mechanisms: "all",
		comms:      "postgres,pgbench",
		roundTrips: true,
		setup:      setupPostgres,
		straceNA:   "strace -f follows the driver's children, and the postgres backends are the postmaster's",
	}
}

// setupPostgres starts the workload's cluster for its runs.
func setupPostgres(b *bench) (env []string, stop func(), err error) {
	if others := othersNamed("postgres", "pgbench"); len(others) > 0 {
		fmt.Fprintf(os.Stderr, "icptrack-bench: warning: other processes are named postgres or pgbench (%s); "+
			"icptrack trace --comm traces them too\n", strings.Join(others, ", "))
	}
	c, err := startPostgres(b.pgBin, b.pgScale)
	if err != nil {
		return nil, nil, fmt.Errorf("starting PostgreSQL for pgbench: %w", err)
	}
	remove := onInterrupt(c.stop)
	return c.env(), func() { remove(); c.stop() }, nil
}

var (
	pgbenchProcessed = regexp.MustCompile(`number of transactions actually processed: (\d+)`)
	pgbenchFailed    = regexp.MustCompile(`number of failed transactions: (\d+)`)
	pgbenchTPS       = regexp.MustCompile(`tps = ([0-9.]+) \(without initial connection time\)`)
)

// pgbenchRun is the driver: it runs pgbench for seconds and reports its
// transactions, its tps (as ops over elapsed: pgbench leaves the
// connections' set-up out) and the transactions' latency quantiles.
func pgbenchRun(seconds int) error {
	host, bin := os.Getenv(pgHostEnv), os.Getenv(pgBinEnv)
	if host == "" || bin == "" {
		return errNoCluster
	}
	logs, err := os.MkdirTemp("", "icptrack-pgbench-log")
	if err != nil {
		return err
	}
	defer os.RemoveAll(logs)
	// -n: no vacuum first (pgbench -i did it); -l: a line per transaction
	// with its latency, written through stdio's buffer.
	cmd := exec.Command(filepath.Join(bin, "pgbench"), "-n", "-S", "-c", pgbenchClients, "-j", pgbenchThreads,
		"-T", strconv.Itoa(seconds), "-l", "--log-prefix", filepath.Join(logs, "tx"),
		"-h", host, "-p", pgPort, "-U", "postgres", "postgres")
	cmd.Stderr = os.Stderr
	out, err := cmd.Output()
	if err != nil {
		return fmt.Errorf("pgbench: %w: %s", err, lastLines(string(out), 6))
	}
	processed, tps, err := parsePgbench(string(out))
	if err != nil {
		return err
	}
	latencies, err := pgbenchLatencies(logs)
	if err != nil {
		return err
	}
	if len(latencies) != processed {
		return fmt.Errorf("pgbench processed %d transactions and logged %d", processed, len(latencies))
	}
	return report(processed, time.Duration(float64(processed)/tps*1e9), latencies)
}

// parsePgbench reads the transactions processed and the tps from
// pgbench's report; a failed transaction is an error.
func parsePgbench(out string) (processed int, tps float64, err error) {
	p, t := pgbenchProcessed.FindStringSubmatch(out), pgbenchTPS.FindStringSubmatch(out)
	if p == nil || t == nil {
		return 0, 0, fmt.Errorf("pgbench's report has no transaction count or tps: %s", lastLines(out, 6))
	}
	processed, _ = strconv.Atoi(p[1])
	tps, _ = strconv.ParseFloat(t[1], 64)
	if f := pgbenchFailed.FindStringSubmatch(out); f != nil && f[1] != "0" {
		return 0, 0, fmt.Errorf("pgbench: %s transactions failed", f[1])
	}
	if processed <= 0 || tps <= 0 {
		return 0, 0, fmt.Errorf("pgbench processed %d transactions at %g tps", processed, tps)
	}
	return processed, tps, nil
}

// pgbenchLatencies reads every transaction's latency, in ns, from the
// logs pgbench -l wrote in dir (one file per thread): "client transaction
// latency_us script epoch_s epoch_us".
func pgbenchLatencies(dir string) ([]int64, error) {
	files, err := filepath.Glob(filepath.Join(dir, "tx.*"))
	if err != nil || len(files) == 0 {
		return nil, fmt.Errorf("pgbench -l wrote no log in %s", dir)
	}
	var latencies []int64
	for _, name := range files {
		f, err := os.Open(name)
		if err != nil {
			return nil, err
		}
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			fields := strings.Fields(sc.Text())
			if len(fields) < 3 {
				f.Close()
				return nil, fmt.Errorf("%s: %q is not a transaction's line", name, sc.Text())
			}
			us, err := strconv.ParseInt(fields[2], 10, 64)
			if err != nil {
				f.Close()
				return nil, fmt.Errorf("%s: latency %q: %w", name, fields[2], err)
			}
			latencies = append(latencies, us*1000)
		}
		f.Close()
		if err := sc.Err(); err != nil {
			return nil, err
		}
	}
	return latencies, nil
}
