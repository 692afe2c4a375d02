package config

import (
	"errors"

	"gopkg.in/yaml.v3"

	"github.com/icptrack/icptrack/exporter/syslog"
	"github.com/icptrack/icptrack/filter"
)

// Syslog holds the syslog output's settings (README: "syslog").
type Syslog struct {
	URL       string
	Filter    string
	Facility  string
	RateLimit float64
	CAFile    string
	CertFile  string
	KeyFile   string
}

func init() {
	keys["syslog.url"] = func(f *File, n *yaml.Node) error {
		if err := scalar(n, &f.Syslog.URL); err != nil {
			return err
		}
		_, err := syslog.ParseURL(f.Syslog.URL)
		return err
	}
	keys["syslog.filter"] = func(f *File, n *yaml.Node) error {
		if err := scalar(n, &f.Syslog.Filter); err != nil {
			return err
		}
		_, err := filter.Parse(f.Syslog.Filter)
		return err
	}
	keys["syslog.facility"] = func(f *File, n *yaml.Node) error {
		if err := scalar(n, &f.Syslog.Facility); err != nil {
			return err
		}
		_, err := syslog.ParseFacility(f.Syslog.Facility)
		return err
	}
	keys["syslog.rate_limit"] = func(f *File, n *yaml.Node) error {
		v, err := number(n)
		if err != nil {
			return err
		}
		if v < 0 {
			return errors.New("must be messages a second, or 0 for no limit")
		}
		f.Syslog.RateLimit = v
		return nil
	}
	keys["syslog.ca_file"] = str(func(f *File) *string { return &f.Syslog.CAFile })
	keys["syslog.cert_file"] = str(func(f *File) *string { return &f.Syslog.CertFile })
	keys["syslog.key_file"] = str(func(f *File) *string { return &f.Syslog.KeyFile })
}
