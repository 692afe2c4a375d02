package main

import (
	"errors"
	"fmt"
	"os"

	"github.com/spf13/pflag"
	"go.uber.org/zap"

	"github.com/icptrack/icptrack/exporter"
	"github.com/icptrack/icptrack/exporter/syslog"
	"github.com/icptrack/icptrack/filter"
	"github.com/icptrack/icptrack/internal/config"
)

// syslogFlags are --syslog and --syslog-filter, and the file's syslog
// section (README: "syslog").
type syslogFlags struct {
	url    string
	filter string
	// compiled is filter, once checked.
	compiled *filter.Filter
}

func (f *syslogFlags) register(fs *pflag.FlagSet) {
	fs.StringVar(&f.url, "syslog", "",
		"send failed operations and drops to syslog: unix:///dev/log, udp://host:514, tcp://host:514 or tls://host:6514 (RFC 5424)")
	fs.StringVar(&f.filter, "syslog-filter", syslog.DefaultFilter,
		"which operations go to syslog, in the filter language (README: Filters); drops always do")
}

// take reads the file's url and filter where the flags were not given.
func (f *syslogFlags) take(file *config.File, take func(key, flag string, apply func())) {
	take("syslog.url", "syslog", func() { f.url = file.Syslog.URL })
	take("syslog.filter", "syslog-filter", func() { f.filter = file.Syslog.Filter })
}

// check checks the URL and the filter: any mistake is a usage error.
func (f *syslogFlags) check(mode string, payload int) error {
	if f.url == "" {
		return nil
	}
	if mode == modeMetrics {
		return usageError("--syslog needs --mode events: metrics mode counts operations in the kernel and sends none")
	}
	if _, err := syslog.ParseURL(f.url); err != nil {
		return usageError("--syslog: %v", err)
	}
	flt, err := filter.Parse(f.filter)
	if err != nil {
		var fe *filter.Error
		if errors.As(err, &fe) {
			return usageError("--syslog-filter: %s", fe.Caret())
		}
		return usageError("--syslog-filter: %v", err)
	}
	if flt.UsesPayload() && payload == 0 {
		return usageError("--syslog-filter tests payload, which needs payload capture: add --payload N, the bytes to capture of each operation (such as --payload 256)")
	}
	f.compiled = flt
	return nil
}

// sink connects the syslog output, if one was asked for. A server that
// is down is retried; a TLS server whose certificate is refused, or TLS
// files that cannot be read, stop icptrack.
func (f *syslogFlags) sink(file *config.File, log *zap.Logger, own *exporter.OwnAddrs) (*syslog.Sink, error) {
	if f.url == "" {
		return nil, nil
	}
	cfg := syslog.Config{URL: f.url, Filter: f.compiled, RateLimit: syslog.DefaultRateLimit,
		Dial: own.DialContext, Log: log.Named("syslog")}
	if file != nil {
		s := file.Syslog
		cfg.Facility, cfg.CAFile, cfg.CertFile, cfg.KeyFile = s.Facility, s.CAFile, s.CertFile, s.KeyFile
		if file.Has("syslog.rate_limit") {
			cfg.RateLimit = s.RateLimit
		}
	}
	s, err := syslog.New(cfg)
	if err != nil {
		return nil, &exitError{code: exitFailure, err: err}
	}
	log.Info("sending to syslog", zap.Stringer("target", s.Target()), zap.String("filter", f.compiled.String()),
		zap.Float64("rate_limit", cfg.RateLimit))
	return s, nil
}

// reportSyslog adds to the summary what the line every sink gets does
// not say: operations held back by the rate limit, messages cut, and why
// the server could not be reached.
func reportSyslog(s *syslog.Sink) {
	if s == nil {
		return
	}
	st := s.AllStats()
	if st.Suppressed > 0 {
		fmt.Fprintf(os.Stderr, "icptrack: syslog: %d operations held back by the rate limit (syslog.rate_limit), and reported as held back\n", st.Suppressed)
	}
	if st.Truncated > 0 {
		fmt.Fprintf(os.Stderr, "icptrack: syslog: %d messages cut to fit a UDP datagram (%d bytes)\n", st.Truncated, syslog.DefaultMaxDatagram)
	}
	if st.CheckpointsLost > 0 {
		fmt.Fprintf(os.Stderr, "icptrack: WARNING: syslog: %d checkpoints could not be sent\n", st.CheckpointsLost)
	}
	if st.Dropped > 0 && st.LastError != "" {
		fmt.Fprintf(os.Stderr, "icptrack: syslog: last error: %s\n", st.LastError)
	}
}
