package postgres

import (
	"errors"
	"fmt"
	"net"
	"regexp"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// URLError is a --database URL that cannot be used as given: a usage
// mistake, found before anything is started.
type URLError struct {
	URL string // redacted
	Err error
}

func (e *URLError) Error() string {
	return fmt.Sprintf("%s: %v: use postgres://USER@HOST:PORT/DATABASE (the password from PGPASSWORD or ~/.pgpass)", e.URL, e.Err)
}

func (e *URLError) Unwrap() error { return e.Err }

// ParseURL reads a postgres:// URL the way libpq does, through pgx: the
// PG* variables fill in what it leaves out, and the password, when it
// names none, comes from PGPASSWORD or the password file (~/.pgpass,
// PGPASSFILE). It connects to nothing.
func ParseURL(raw string) (*pgx.ConnConfig, error) {
	if !strings.HasPrefix(raw, "postgres://") && !strings.HasPrefix(raw, "postgresql://") {
		return nil, &URLError{URL: Redact(raw), Err: errors.New("is not a PostgreSQL URL")}
	}
	cc, err := pgx.ParseConfig(raw)
	if err != nil {
		// pgx's message quotes the URL; ours quotes it once, redacted.
		msg := err.Error()
		if i := strings.Index(msg, "`: "); i >= 0 {
			msg = msg[i+3:]
		}
		return nil, &URLError{URL: Redact(raw), Err: errors.New(hidePassword(msg, ""))}
	}
	return cc, nil
}

var (
	// The password in a URL's user info, up to the last @ before the
	// query, so that an unescaped @ or / in it is hidden too. Any scheme:
	// a URL that is not PostgreSQL's is quoted in its error.
	userinfoPassword = regexp.MustCompile(`^([a-zA-Z][a-zA-Z0-9+.-]*://[^:@/?]*:)[^?]*@`)
	// A password in a query, or in keyword=value form.
	keywordPassword = regexp.MustCompile(`((?:^|[?&\s])(?:ssl)?password=)('[^']*'|[^&\s]*)`)
)

// Redact hides the passwords a URL holds, for logs and errors:
// postgres://writer:xxxxx@db/icptrack.
func Redact(raw string) string {
	s := userinfoPassword.ReplaceAllString(raw, "${1}xxxxx@")
	return keywordPassword.ReplaceAllString(s, "${1}xxxxx")
}

// hidePassword removes a password from a message, wherever a library
// may have quoted it.
func hidePassword(msg, password string) string {
	if password != "" {
		msg = strings.ReplaceAll(msg, password, "xxxxx")
	}
	return strings.Join(strings.Fields(msg), " ")
}

// startError says why the database cannot be used at start, and what to
// do about it, in one line.
func startError(url string, cc *pgx.ConnConfig, err error) error {
	hint := "is PostgreSQL running, and listening on that host and port?"
	msg := err.Error()
	var pg *pgconn.PgError
	var netErr net.Error
	switch {
	case errors.As(err, &pg):
		msg = pg.Message + " (SQLSTATE " + pg.Code + ")"
		switch {
		case pg.Code == "28P01" || pg.Code == "28000":
			hint = "check the user and the password (in the URL, PGPASSWORD or ~/.pgpass) and pg_hba.conf"
		case pg.Code == "3D000":
			hint = fmt.Sprintf("create it (createdb %s), or name another database in the URL", cc.Database)
		case pg.Code == "42501":
			hint = fmt.Sprintf("let %s create tables (GRANT CREATE ON SCHEMA public TO %s), or have the tables' owner run icptrack once to create them", cc.User, cc.User)
		case strings.HasPrefix(pg.Code, "53"), strings.HasPrefix(pg.Code, "57"):
			hint = "the server cannot take a connection now: try again later"
		default:
			hint = "see the server's log"
		}
	case errors.As(err, &netErr) && netErr.Timeout():
		hint = "nothing answered in time: check the host and port, and any firewall between"
	}
	// pgx says a failed dial once per address and TLS mode it tried; the
	// network's own error says it once.
	var opErr *net.OpError
	var dnsErr *net.DNSError
	switch {
	case pg != nil:
	case errors.As(err, &dnsErr):
		msg, hint = dnsErr.Error(), "check the host name in the URL"
	case errors.As(err, &opErr):
		msg = opErr.Error()
	}
	return fmt.Errorf("database %s: %s: %s", Redact(url), hidePassword(msg, cc.Password), hint)
}
