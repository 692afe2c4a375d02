package main

import (
	"context"
	"net"
	"os"
	"os/signal"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"golang.org/x/sys/unix"

	"github.com/icptrack/icptrack/api"
	"github.com/icptrack/icptrack/api/auth"
	"github.com/icptrack/icptrack/exporter"
	"github.com/icptrack/icptrack/internal/config"
	"github.com/icptrack/icptrack/store"
)

// defaultAPIAddress is serve's --api when none is given.
const defaultAPIAddress = "127.0.0.1:9470"

type serveFlags struct {
	storeKeyFlags
	store      string
	addr       string
	configPath string
	fs         *pflag.FlagSet
}

func newServeCommand() *cobra.Command {
	var f serveFlags
	cmd := &cobra.Command{
		Use:   "serve --store DIR [--api ADDR]",
		Short: "Serve a store (--store) over the query API and the live view, with nothing traced",
		Long: `serve answers the API's queries (README: The API) from a store written with --store,
for looking at a capture afterwards. It is the server of run and trace --api, without the
capture: the graph and the channel and process pages take at= (RFC 3339) for the time to look at.
It reads the configuration file's api: section (address, credentials, TLS) and store.dir.`,
		Example: `  icptrack serve --store /var/lib/icptrack/store --api 127.0.0.1:9470
  curl -s 'http://127.0.0.1:9470/api/v1/operations?filter=pid%20%3D%3D%201234&limit=10'`,
		Args: cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error { return runServe(&f) },
	}
	f.register(cmd)
	f.fs = cmd.Flags()
	cmd.Flags().StringVar(&f.store, "store", "", "the store's directory (required, or store.dir in the configuration file)")
	cmd.Flags().StringVar(&f.addr, "api", defaultAPIAddress, "the address to serve on (or api.address in the configuration file)")
	cmd.Flags().StringVar(&f.configPath, "config", "",
		"the configuration file, for its api: and store.dir settings (default "+config.DefaultPath+" when it exists)")
	return cmd
}

func runServe(f *serveFlags) error {
	file, err := loadConfigFile(f.configPath, f.fs.Changed("config"))
	if err != nil {
		return err
	}
	var sec apiSecurity
	var maxStreams int
	if file != nil {
		if file.Has("api.address") && !f.fs.Changed("api") {
			f.addr = file.API.Address
		}
		if file.Has("store.dir") && !f.fs.Changed("store") {
			f.store = file.Store.Dir
		}
		sec = apiSecurityOf(file)
		maxStreams = file.API.MaxStreams
	}
	if f.store == "" {
		return usageError("serve needs the store to serve: icptrack serve --store DIR")
	}
	if err := config.CheckListenAddress(f.addr); err != nil {
		return usageError("--api: %v", err)
	}
	kr, err := f.load()
	if err != nil {
		return err
	}
	r, err := store.OpenReader(f.store, kr)
	if err != nil {
		return usageError("--store: %v: give the directory of a store written with run or trace --store", err)
	}
	enc := zap.NewDevelopmentEncoderConfig()
	enc.EncodeTime = zapcore.TimeEncoderOfLayout("15:04:05.000")
	log := zap.New(zapcore.NewCore(zapcore.NewConsoleEncoder(enc), zapcore.Lock(os.Stderr), zap.InfoLevel)).Named("api")
	defer func() { _ = log.Sync() }()
	ctx, stop := signal.NotifyContext(context.Background(), unix.SIGINT, unix.SIGTERM)
	defer stop()
	// SIGHUP reads the credentials and api.max_streams again, as trace's
	// reload does; the rest waits for a restart.
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, unix.SIGHUP)
	defer signal.Stop(hup)
	o := api.Options{Store: r, StoreDir: f.store, MaxStreams: maxStreams, Version: exporter.Version(), Log: log}
	srv, a, err := startAPI(f.addr, o, sec, log)
	if err != nil {
		return err
	}
	host, _, _ := net.SplitHostPort(f.addr) // checked above
	run := &runningAPI{server: srv, auth: a, addr: f.addr, loopback: auth.IsLoopback(host), log: log}
	for {
		select {
		case <-ctx.Done():
			return srv.Close()
		case <-hup:
			sec, maxStreams = f.reload(run, sec, maxStreams)
		}
	}
}

// reload reads the configuration file again and applies its credentials
// and api.max_streams to run; it returns what is in force then. A file
// with a mistake changes nothing.
func (f *serveFlags) reload(run *runningAPI, sec apiSecurity, maxStreams int) (apiSecurity, int) {
	file, err := loadConfigFile(f.configPath, f.fs.Changed("config"))
	if err != nil {
		run.log.Error("reload: the configuration has a mistake, so the API keeps running as it was; fix it and reload again", zap.Error(err))
		return sec, maxStreams
	}
	var next apiSecurity
	nextMax := 0
	if file != nil {
		next, nextMax = apiSecurityOf(file), file.API.MaxStreams
	}
	apply, err := run.credentialsChange(sec.auth, next.auth)
	if err != nil {
		run.log.Error("reload: the API keeps running as it was", zap.Error(err))
		return sec, maxStreams
	}
	if apply != nil {
		apply()
	}
	if nextMax != maxStreams {
		run.server.SetMaxStreams(nextMax)
	}
	sec.auth = next.auth // the listener's settings wait for a restart
	run.log.Info("reloaded the configuration", zap.Int("tokens", len(next.auth.Tokens)), zap.Int("users", len(next.auth.Users)),
		zap.Int("max_streams", nextMax))
	return sec, nextMax
}
