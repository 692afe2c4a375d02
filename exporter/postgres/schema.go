package postgres

import (
	"context"
	"fmt"
	"regexp"
	"strings"

	"github.com/jackc/pgx/v5"
)

// SchemaVersion is the version of the tables this icptrack writes. A
// change to them gets a new version and a migration from the last one.
const SchemaVersion = 1

// DefaultTablePrefix starts every table's name: icptrack_operations.
const DefaultTablePrefix = "icptrack_"

var prefixRule = regexp.MustCompile(`^[a-z_][a-z0-9_]{0,39}$`)

// CheckTablePrefix accepts what is safe in an SQL name without quoting,
// and short enough that the longest index name fits PostgreSQL's 63
// bytes.
func CheckTablePrefix(p string) error {
	if !prefixRule.MatchString(p) {
		return fmt.Errorf("%q is not a table prefix: use up to 40 lower-case letters, digits and underscores, not starting with a digit, such as icptrack_", p)
	}
	return nil
}

// tables are the names of a prefix's tables.
type tables struct{ schema, operations, drops string }

func tablesOf(prefix string) tables {
	return tables{prefix + "schema", prefix + "operations", prefix + "drops"}
}

// DDL is the SQL that creates the tables with prefix, as icptrack runs
// it (README: Databases).
func DDL(prefix string) string {
	return strings.Join(ddl(prefix), ";\n") + ";\n"
}

func ddl(prefix string) []string {
	t := tablesOf(prefix)
	var cols []string
	for _, c := range columns {
		cols = append(cols, fmt.Sprintf("  %-17s %s", c.name, c.sqlType))
	}
	s := []string{
		fmt.Sprintf("CREATE TABLE IF NOT EXISTS %s (\n  version integer PRIMARY KEY,\n  created timestamptz NOT NULL DEFAULT now()\n)", t.schema),
		fmt.Sprintf("CREATE TABLE IF NOT EXISTS %s (\n%s\n)", t.operations, strings.Join(cols, ",\n")),
		fmt.Sprintf("CREATE INDEX IF NOT EXISTS %[1]s_time ON %[1]s (time)", t.operations),
		fmt.Sprintf("CREATE INDEX IF NOT EXISTS %[1]s_pid ON %[1]s (pid, time)", t.operations),
		fmt.Sprintf("CREATE INDEX IF NOT EXISTS %[1]s_channel ON %[1]s (channel, time)", t.operations),
		fmt.Sprintf("CREATE TABLE IF NOT EXISTS %s (\n  time   timestamptz NOT NULL,\n  reason text NOT NULL,\n  count  bigint NOT NULL\n)", t.drops),
		fmt.Sprintf("CREATE INDEX IF NOT EXISTS %[1]s_time ON %[1]s (time)", t.drops),
		fmt.Sprintf("COMMENT ON TABLE %s IS 'the version of the icptrack tables with this prefix'", t.schema),
		fmt.Sprintf("COMMENT ON TABLE %s IS 'IPC operations icptrack captured: a row per event-log line'", t.operations),
		fmt.Sprintf("COMMENT ON TABLE %s IS 'operations icptrack lost, by reason: ring_buffer (the kernel''s buffer), export_queue (spans), postgres (these tables'' queue), or another output''s name'", t.drops),
	}
	for _, c := range columns {
		s = append(s, fmt.Sprintf("COMMENT ON COLUMN %s.%s IS '%s'", t.operations, c.name, strings.ReplaceAll(c.about, "'", "''")))
	}
	return append(s, fmt.Sprintf("INSERT INTO %s (version) VALUES (%d) ON CONFLICT DO NOTHING", t.schema, SchemaVersion))
}

// ensureSchema creates the tables unless they are there at this
// version. Agents starting together take turns (an advisory lock held
// to the end of the transaction), so two never race to create the same
// table. Tables already at this version need no DDL, and so no CREATE
// privilege: a user that may only insert can write to tables its owner
// made.
func ensureSchema(ctx context.Context, conn *pgx.Conn, prefix string) error {
	t := tablesOf(prefix)
	tx, err := conn.Begin(ctx)
	if err != nil {
		return err
	}
	defer func() { _ = tx.Rollback(ctx) }()
	if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock(hashtext($1))", "icptrack schema "+prefix); err != nil {
		return err
	}
	var exists bool
	if err := tx.QueryRow(ctx, "SELECT to_regclass($1) IS NOT NULL", t.schema).Scan(&exists); err != nil {
		return err
	}
	if exists {
		var version int
		if err := tx.QueryRow(ctx, "SELECT coalesce(max(version), 0) FROM "+t.schema).Scan(&version); err != nil {
			return err
		}
		switch {
		case version > SchemaVersion:
			return fmt.Errorf("the tables %s* are at schema version %d, newer than this icptrack's %d: upgrade icptrack, or choose another table prefix", prefix, version, SchemaVersion)
		case version == SchemaVersion:
			return tx.Commit(ctx)
		}
	}
	for _, stmt := range ddl(prefix) {
		if _, err := tx.Exec(ctx, stmt); err != nil {
			return err
		}
	}
	return tx.Commit(ctx)
}
