package postgres

import (
	"os"
	"strings"
	"testing"
)

// The README shows the tables exactly as icptrack creates them.
func TestReadmeShowsTheTablesAsCreated(t *testing.T) {
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	create, _, _ := strings.Cut(DDL(DefaultTablePrefix), "COMMENT ON")
	if !strings.Contains(string(readme), "```sql\n"+create+"```") {
		t.Errorf("README.md (Databases, The tables) does not show the DDL as created; it is:\n%s", create)
	}
}
