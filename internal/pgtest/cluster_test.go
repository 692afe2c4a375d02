package pgtest

import (
	"os"
	"path/filepath"
	"testing"
)

// A cluster takes connections on its own socket, keeps its data across a
// stop and a resume, and leaves nothing behind once removed.
func TestClusterStopsResumesAndGoes(t *testing.T) {
	c := ForTest(t, Options{})
	if _, err := c.Psql("CREATE TABLE kept (n int); INSERT INTO kept VALUES (42)"); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(c.Dir(), ".s.PGSQL."+Port)); err != nil {
		t.Fatalf("no socket in the cluster's directory: %v", err)
	}
	c.Stop()
	if _, err := c.Psql("SELECT 1"); err == nil {
		t.Fatal("a stopped cluster answered")
	}
	if err := c.Resume(); err != nil {
		t.Fatal(err)
	}
	if got, err := c.Psql("SELECT n FROM kept"); err != nil || got != "42" {
		t.Fatalf("after resuming, SELECT n FROM kept = %q, %v; want 42", got, err)
	}
	c.Remove()
	if _, err := os.Stat(c.Dir()); !os.IsNotExist(err) {
		t.Fatalf("%s is still there after Remove: %v", c.Dir(), err)
	}
}
