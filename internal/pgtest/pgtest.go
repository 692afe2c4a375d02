package pgtest

import (
	"os"
	"testing"
)

// ForTest starts a cluster for t and removes it when t ends. Without
// PostgreSQL the test is skipped, except under CI=true, where it fails:
// CI installs postgresql-15, and a database test that skipped there
// would hide a broken output.
func ForTest(t testing.TB, o Options) *Cluster {
	t.Helper()
	bin := o.Bin
	if bin == "" {
		bin = DefaultBin
	}
	if err := Check(bin, "psql"); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("%v; under CI=true the database tests must run", err)
		}
		t.Skip(err)
	}
	if os.Geteuid() != 0 {
		// initdb and the server run as the postgres user: only root
		// can start them so.
		if os.Getenv("CI") == "true" {
			t.Fatal("the database tests start PostgreSQL as the postgres user, which needs root; CI runs as root")
		}
		t.Skip("the database tests start PostgreSQL as the postgres user, which needs root")
	}
	c, err := Start(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Remove)
	return c
}
