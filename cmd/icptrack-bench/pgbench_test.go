package main

import (
	"os"
	"path/filepath"
	"slices"
	"testing"
)

// pgbench 15's report of a select-only run.
const pgbenchReport = `pgbench (15.18 (Debian 15.18-0+deb12u1))
transaction type: <builtin: select only>
scaling factor: 10
query mode: simple
number of clients: 4
number of threads: 2
maximum number of tries: 1
duration: 3 s
number of transactions actually processed: 44986
number of failed transactions: 0 (0.000%)
latency average = 0.264 ms
initial connection time = 47.346 ms
tps = 15160.394657 (without initial connection time)
`

func TestParsePgbench(t *testing.T) {
	n, tps, err := parsePgbench(pgbenchReport)
	if err != nil || n != 44986 || tps != 15160.394657 {
		t.Errorf("parsePgbench: %d transactions, %g tps, %v", n, tps, err)
	}
	for name, out := range map[string]string{
		"no tps":    "number of transactions actually processed: 10\n",
		"no count":  "tps = 10.5 (without initial connection time)\n",
		"failed":    "number of transactions actually processed: 10\nnumber of failed transactions: 2 (16.667%)\ntps = 10.5 (without initial connection time)\n",
		"none done": "number of transactions actually processed: 0\ntps = 0.000000 (without initial connection time)\n",
	} {
		if _, _, err := parsePgbench(out); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}

func TestPgbenchLatencies(t *testing.T) {
	dir := t.TempDir()
	// One log per thread: client, transaction, latency in µs, script,
	// epoch seconds, microseconds.
	files := map[string]string{
		"tx.1293":   "0 1 7353 0 1796472309 162410\n1 1 7368 0 1796472309 162475\n",
		"tx.1293.1": "2 1 125 0 1796472309 162256\n",
	}
	for name, text := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	got, err := pgbenchLatencies(dir)
	slices.Sort(got)
	if err != nil || !slices.Equal(got, []int64{125_000, 7_353_000, 7_368_000}) {
		t.Errorf("latencies %v, %v", got, err)
	}
	if err := os.WriteFile(filepath.Join(dir, "tx.1293.2"), []byte("0 1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := pgbenchLatencies(dir); err == nil {
		t.Error("a short line is not an error")
	}
	if _, err := pgbenchLatencies(t.TempDir()); err == nil {
		t.Error("no log is not an error")
	}
}

// The summary's rows, added up by mechanism and process names.
func TestReadSeen(t *testing.T) {
	summary := `
icptrack: 334002 operations between 10 processes over 3.069s, 7.4MiB sent, 7.4MiB received
MECHANISM    FROM            TO              OPS    SENT       RECEIVED   P50     P99     ERRORS  
pipe         pgbench[1656]   ?               4      433B       0B         2.95µs  3.53µs  0       
unix_stream  pgbench[1656]   postgres[1661]  54447  1.1MiB     1.1MiB     1.08µs  2.42µs  0       
unix_stream  postgres[1661]  pgbench[1656]   47794  1.2MiB     1.2MiB     1.19µs  2.84µs  0       
unix_stream  pgbench[1656]   postgres[1663]  46005  962.7KiB   962.7KiB   1.14µs  2.42µs  0       
unix_stream  (several)       pgbench[1656]   986    10KiB      10KiB      1.14µs  2.84µs  0       
signal       kernel          postgres[1267]  7      0B         0B         —       —       0       
icptrack: 0 events dropped
`
	want := []seenRow{
		{"pipe", "pgbench", "?", 4},
		{"unix_stream", "pgbench", "postgres", 54447 + 46005},
		{"unix_stream", "postgres", "pgbench", 47794},
		{"unix_stream", "(several)", "pgbench", 986},
		{"signal", "kernel", "postgres", 7},
	}
	if got := readSeen(summary); !slices.Equal(got, want) {
		t.Errorf("readSeen:\n got %+v\nwant %+v", got, want)
	}
	if got := readSeen("icptrack: 0 events dropped\n"); got != nil {
		t.Errorf("no table, yet %+v", got)
	}
}
