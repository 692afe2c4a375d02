package main

import (
	"errors"
	"fmt"
	"net"

	"github.com/spf13/pflag"
	"go.uber.org/zap"

	"github.com/icptrack/icptrack/api"
	"github.com/icptrack/icptrack/api/auth"
	"github.com/icptrack/icptrack/exporter"
	"github.com/icptrack/icptrack/internal/config"
	"github.com/icptrack/icptrack/probes"
	"github.com/icptrack/icptrack/store"
)

// apiFlags are --api and the file's api section: the query API, the
// live view, and their security (README: "The API", "API security").
type apiFlags struct {
	addr       string
	window     int
	maxStreams int
	security   apiSecurity
}

// apiSecurity is what the file's api section says about credentials and
// TLS; without a file, no credentials, so loopback only.
type apiSecurity struct {
	auth     auth.Config
	tls      auth.TLSConfig
	insecure bool
}

func (f *apiFlags) register(fs *pflag.FlagSet) {
	fs.StringVar(&f.addr, "api", "",
		"serve the query API and the live view on this address, such as 127.0.0.1:9470 (README: The API)")
}

// take reads the file's api section where the flags were not given.
func (f *apiFlags) take(file *config.File, take func(key, flag string, apply func())) {
	take("api.address", "api", func() { f.addr = file.API.Address })
	if file.Has("api.window") {
		f.window = file.API.Window
	}
	f.maxStreams = file.API.MaxStreams
	f.security = apiSecurityOf(file)
}

func apiSecurityOf(file *config.File) apiSecurity {
	var s apiSecurity
	s.auth, s.tls, s.insecure = auth.FromFile(file)
	return s
}

// check finds mistakes before anything starts.
func (f *apiFlags) check(mode string) error {
	if f.addr == "" {
		return nil
	}
	if mode == modeMetrics {
		return usageError("--api needs --mode events: metrics mode counts operations in the kernel and keeps none to serve")
	}
	if err := config.CheckListenAddress(f.addr); err != nil {
		return usageError("--api: %v", err)
	}
	return nil
}

// open starts the API's server before the tracer loads, so that an
// address in use fails fast; the server joins out's sinks, and the
// pipeline's closing of its sinks stops it.
func (f *apiFlags) open(out *outputs, st *storeFlags, log *zap.Logger) error {
	if f.addr == "" {
		return nil
	}
	log = log.Named("api")
	o := api.Options{Window: f.window, MaxStreams: f.maxStreams, Version: exporter.Version(), Log: log, Ready: out.running.Load, StoreDir: st.dir,
		Status: func() api.Status { return captureStatus(out) }}
	if st.dir != "" {
		kr, err := loadKeyringOf(st.keyFile)
		if err != nil {
			return err
		}
		if o.Store, err = store.OpenReader(st.dir, kr); err != nil {
			return &exitError{code: exitFailure, err: err}
		}
	}
	srv, a, err := startAPI(f.addr, o, f.security, log)
	if err != nil {
		return err
	}
	out.sinks = append(out.sinks, srv)
	host, _, _ := net.SplitHostPort(f.addr) // checked by check
	out.api = &runningAPI{server: srv, auth: a, addr: f.addr, loopback: auth.IsLoopback(host), log: log}
	return nil
}

// runningAPI is the API trace serves, for a reload to change its
// credentials and its streams' cap (reloader.apiAndStore).
type runningAPI struct {
	server *api.Server
	auth   *auth.Authenticator
	addr   string
	// loopback: the listener serves this host only, so that the API may
	// be open (no credentials) there, and nowhere else (auth.Listen).
	loopback bool
	log      *zap.Logger
}

// startAPI listens on addr by the security policy (auth.Listen: TLS, and
// loopback only without credentials) and serves in the background.
func startAPI(addr string, o api.Options, sec apiSecurity, log *zap.Logger) (*api.Server, *auth.Authenticator, error) {
	a, err := auth.New(sec.auth, log)
	if err != nil {
		return nil, nil, usageError("api: %v", err)
	}
	o.Auth = a
	srv, err := api.New(o)
	if err != nil {
		return nil, nil, usageError("%v", err)
	}
	l, err := auth.Listen(addr, sec.tls, sec.insecure, a.Open(), log)
	if err != nil {
		var op *net.OpError
		if errors.As(err, &op) {
			return nil, nil, &exitError{code: exitFailure, err: fmt.Errorf("--api: %v: choose a free port", op)}
		}
		return nil, nil, usageError("--api %s: %v", addr, err)
	}
	url := "http://" + l.Addr().String()
	if sec.tls.CertFile != "" {
		url = "https://" + l.Addr().String()
	}
	if a.Open() {
		log.Info("serving the API and the live view with no credentials, so to this host only (add api.tokens or api.users to serve others)",
			zap.String("address", url+"/"))
	} else {
		log.Info("serving the API and the live view", zap.String("address", url+"/"),
			zap.Int("tokens", len(sec.auth.Tokens)), zap.Int("users", len(sec.auth.Users)))
	}
	go func() {
		if err := srv.Serve(l); err != nil {
			log.Error("the API stopped", zap.Error(err))
		}
	}()
	return srv, a, nil
}

// loadKeyringOf reads the store's keyring, if it has one.
func loadKeyringOf(keyFile string) (*store.Keyring, error) {
	path := store.ResolveKeyFile(keyFile)
	if path == "" {
		return nil, nil
	}
	kr, err := store.LoadKeyring(path)
	if err != nil {
		return nil, keyError(err)
	}
	return kr, nil
}

// captureStatus is what status shows admins of a running capture.
func captureStatus(out *outputs) api.Status {
	st := api.Status{Kernel: probes.KernelRelease(), Drops: map[string]uint64{}}
	if !out.running.Load() {
		return st
	}
	self := out.selfStats()
	st.Drops["ring_buffer"] = self.RingBufferDropped
	st.Drops["export"] = self.ExportDropped
	for _, s := range self.Sinks {
		st.Drops[s.Name] = s.Dropped
	}
	if out.tracer != nil {
		for _, m := range out.tracer.Mechanisms() {
			ms := api.Mechanism{Name: m.Mechanism.String(), On: m.Err == nil}
			if m.Err != nil {
				ms.Reason = m.Err.Error()
			}
			st.Mechanisms = append(st.Mechanisms, ms)
		}
	}
	return st
}
