package main

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"

	"go.uber.org/zap"

	"github.com/icptrack/icptrack/api/auth"
	"github.com/icptrack/icptrack/exporter"
	"github.com/icptrack/icptrack/internal/config"
	"github.com/icptrack/icptrack/store"
)

// What a reload changes in the API and the store (README: "Reloading
// the configuration"). Everything is built and checked first, as the
// other outputs are, so that a mistake changes nothing; what is not a
// sink of the pipeline (the credentials, the streams' cap, a store's new
// settings) is then put in place by apply funcs that cannot fail, on the
// pipeline's goroutine, together with the sinks.
//
// The API's listener stays: its address, TLS files and api.insecure are
// read at the start only (auth.Listen's policy is judged on them, and a
// renewed certificate is already read again when its files change). The
// credentials change whole, at once: a revoked token is refused from the
// next request on. The one change refused is to no credentials at all
// on a listener beyond loopback, which Listen would not have opened:
// there it would let anyone in.
//
// The store: another directory is opened before anything changes (so a
// key or directory mistake changes nothing) and takes the old one's
// place between two operations, which then closes in the background
// (its last segment's closing block, seal and checkpoint). The same
// directory is never closed and opened again: its lock admits one writer
// only, so the new one would have to wait for the old one to close,
// with the operations coming in meanwhile held somewhere or lost. The
// running writer takes the new settings up itself instead (store.Sink.
// Retune): it closes its segment and goes on in a new one, as a restart
// would.

// apiRestartOnly names the api settings that differ between a and b and
// that a reload does not apply: the listener's.
func apiRestartOnly(a, b *config.File) []string {
	var x, y config.API
	if a != nil {
		x = a.API
	}
	if b != nil {
		y = b.API
	}
	var out []string
	if x.Address != y.Address {
		out = append(out, "api.address")
	}
	if x.Window != y.Window {
		out = append(out, "api.window")
	}
	if x.Auth.CertFile != y.Auth.CertFile || x.Auth.KeyFile != y.Auth.KeyFile {
		out = append(out, "api.tls")
	}
	if x.Auth.Insecure != y.Auth.Insecure {
		out = append(out, "api.insecure")
	}
	return out
}

// apiAndStore adds to rel what a reload to next changes in the store,
// and returns what it changes in the API and the store beyond the
// pipeline's sinks, to apply with rel. built gets the sinks it opens.
func (r *reloader) apiAndStore(next *traceFlags, rel *changeSet, built *[]io.Closer) (apply []func(), err error) {
	if apply, err = r.apiChanges(next); err != nil {
		return nil, err
	}
	more, err := r.storeChanges(next, rel, built)
	return append(apply, more...), err
}

// apiChanges checks the API's new credentials and streams' cap.
func (r *reloader) apiChanges(next *traceFlags) ([]func(), error) {
	run := r.out.api
	if run == nil {
		return nil, nil // not served: the api section waits for a start
	}
	var apply []func()
	set, err := run.credentialsChange(r.running.api.security.auth, next.api.security.auth)
	if err != nil {
		return nil, err
	}
	if set != nil {
		apply = append(apply, set)
	}
	if n := next.api.maxStreams; n != r.running.api.maxStreams {
		apply = append(apply, func() { run.server.SetMaxStreams(n) })
	}
	return apply, nil
}

// credentialsChange checks the credentials nxt, which replace cur, and
// returns apply, which puts them in place and logs it (nil when they are
// the same). It refuses no credentials at all on a listener beyond
// loopback, where they would let anyone in.
func (run *runningAPI) credentialsChange(cur, nxt auth.Config) (apply func(), err error) {
	if reflect.DeepEqual(cur, nxt) {
		return nil, nil
	}
	if auth.WouldOpen(nxt) && !run.loopback {
		return nil, fmt.Errorf("api: the new configuration has no tokens and no users, and the API listens on %s, beyond this host, where it would let anyone in; the running credentials stay: keep one in api.tokens or api.users, or move api.address to 127.0.0.1 and restart", run.addr)
	}
	set, err := run.auth.Prepare(nxt)
	if err != nil {
		return nil, fmt.Errorf("api: %w", err)
	}
	wasOpen := auth.WouldOpen(cur)
	return func() {
		set()
		switch {
		case auth.WouldOpen(nxt):
			run.log.Warn("reload: the API has no credentials now, so every user of this host may read it, payloads included (add api.tokens or api.users to guard it)")
		case wasOpen:
			run.log.Info("reload: the API asks for credentials now", zap.Int("tokens", len(nxt.Tokens)), zap.Int("users", len(nxt.Users)))
		default:
			run.log.Info("reload: the API's credentials changed", zap.Int("tokens", len(nxt.Tokens)), zap.Int("users", len(nxt.Users)))
		}
	}, nil
}

// storeChanges checks the store's new settings: none, another
// directory (opened now), or the same one retuned. The API, if served,
// answers from the new store (or its window) from then on.
func (r *reloader) storeChanges(next *traceFlags, rel *changeSet, built *[]io.Closer) ([]func(), error) {
	cur, nxt := &r.running.store, &next.store
	if sameStore(cur, nxt) {
		return nil, nil
	}
	var apply []func()
	running := r.out.store
	switch {
	case nxt.dir == "":
		rel.Remove = append(rel.Remove, "store")
		apply = append(apply, func() { r.out.store = nil })
	case running != nil && sameDir(cur.dir, nxt.dir):
		retune, err := running.Retune(nxt.options(r.out, r.log.Named("store")))
		if err != nil {
			return nil, keyError(err)
		}
		apply = append(apply, retune)
	default:
		s, err := nxt.openSink(r.out, r.log)
		if err != nil {
			return nil, err
		}
		*built = append(*built, s)
		if rel.Sinks == nil {
			rel.Sinks = map[string]exporter.Sink{}
		}
		rel.Sinks[s.Name()] = s
		// Where the store the pipeline started with was: before syslog.
		rel.First = append(rel.First, s.Name())
		// The pipeline's goroutine sets it; the reloader reads it at the
		// next reload, after this one's done.
		apply = append(apply, func() { r.out.store = s })
	}
	if run := r.out.api; run != nil {
		var reader *store.Reader
		if nxt.dir != "" {
			kr, err := loadKeyringOf(nxt.keyFile)
			if err != nil {
				return nil, err
			}
			if reader, err = store.OpenReader(nxt.dir, kr); err != nil {
				return nil, err
			}
		}
		apply = append(apply, func() { run.server.SetStore(reader, nxt.dir) })
	}
	return apply, nil
}

// sameStore reports whether a and b are the same store with the same
// settings.
func sameStore(a, b *storeFlags) bool {
	x, y := a.file, b.file
	return a.dir == b.dir && store.ResolveKeyFile(a.keyFile) == store.ResolveKeyFile(b.keyFile) &&
		x.SegmentSize == y.SegmentSize && x.SegmentAge == y.SegmentAge && x.MaxSize == y.MaxSize && x.MaxAge == y.MaxAge
}

// sameDir reports whether a and b name the same directory, by another
// path too (a symbolic link): its lock would refuse a second writer.
func sameDir(a, b string) bool {
	if filepath.Clean(a) == filepath.Clean(b) {
		return true
	}
	x, errA := os.Stat(a)
	y, errB := os.Stat(b)
	return errA == nil && errB == nil && os.SameFile(x, y)
}
