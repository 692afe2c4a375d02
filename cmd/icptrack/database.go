package main

import (
	"context"

	"github.com/spf13/pflag"
	"go.uber.org/zap"

	"github.com/icptrack/icptrack/exporter/postgres"
	"github.com/icptrack/icptrack/internal/config"
)

// databaseFlags are --database and the database section of the
// configuration file: the PostgreSQL output (README: Databases).
type databaseFlags struct {
	url string
	// conf holds the file's settings but the URL.
	conf postgres.Config
}

func (d *databaseFlags) register(fs *pflag.FlagSet) {
	fs.StringVar(&d.url, "database", "",
		"also write every operation to this PostgreSQL database, such as postgres://icptrack@localhost/icptrack (the password from PGPASSWORD or ~/.pgpass)")
}

// fromFile takes the file's database section; the URL only when
// --database was not given.
func (d *databaseFlags) fromFile(file *config.File, take func(key, flag string, apply func())) {
	take("database.url", "database", func() { d.url = file.Database.URL })
	db := file.Database
	d.conf = postgres.Config{TablePrefix: db.TablePrefix, BatchSize: db.BatchSize, BatchTimeout: db.BatchTimeout, Queue: db.Queue}
}

// check finds mistakes in the settings before anything starts.
func (d *databaseFlags) check(mode string) error {
	if d.url == "" {
		return nil
	}
	if mode == modeMetrics {
		return usageError("--database needs --mode events: metrics mode counts operations in the kernel and sends none")
	}
	c := d.conf
	c.URL = d.url
	if err := c.Check(); err != nil {
		return usageError("--database: %v", err)
	}
	return nil
}

// open connects and creates the tables if they are missing, before the
// tracer loads, so that a database that cannot be used fails fast; the
// sink joins out's list.
func (d *databaseFlags) open(out *outputs, log *zap.Logger) error {
	if d.url == "" {
		return nil
	}
	c := d.conf
	c.URL, c.Log, c.Dial = d.url, log.Named(postgres.Name), out.own.DialContext
	s, err := postgres.Open(context.Background(), c)
	if err != nil {
		return &exitError{code: exitFailure, err: err}
	}
	out.sinks = append(out.sinks, s)
	return nil
}
