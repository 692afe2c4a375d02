package config

import (
	"errors"
	"math"

	"gopkg.in/yaml.v3"
)

// API holds the query API's settings (README: "The API"): where it
// listens, and how many operations it keeps in memory without a store.
type API struct {
	Address    string
	Window     int
	MaxStreams int
	Auth       APIAuth // api.tls, api.insecure, api.tokens, api.users, api.rate_limit
}

func init() {
	keys["api.address"] = func(f *File, n *yaml.Node) error {
		if err := scalar(n, &f.API.Address); err != nil {
			return err
		}
		return CheckListenAddress(f.API.Address)
	}
	keys["api.window"] = func(f *File, n *yaml.Node) error {
		v, err := number(n)
		if err != nil {
			return err
		}
		if v < 1 || v != math.Trunc(v) || v > 100_000_000 {
			return errors.New("must be the operations to keep in memory, from 1 to 100000000 (default 100000)")
		}
		f.API.Window = int(v)
		return nil
	}
	keys["api.max_streams"] = func(f *File, n *yaml.Node) error {
		v, err := number(n)
		if err != nil {
			return err
		}
		if v < 1 || v != math.Trunc(v) || v > 10_000 {
			return errors.New("must be how many streams to serve at once, from 1 to 10000 (default 64)")
		}
		f.API.MaxStreams = int(v)
		return nil
	}
}
