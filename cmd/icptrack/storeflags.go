package main

import (
	"encoding/hex"
	"errors"
	"strconv"

	"github.com/spf13/pflag"
	"go.uber.org/zap"

	"github.com/icptrack/icptrack/exporter"
	"github.com/icptrack/icptrack/internal/config"
	"github.com/icptrack/icptrack/store"
)

// storeFlags are --store and --store-key, and the file's store section:
// the store of every operation (README: "The store").
type storeFlags struct {
	dir     string
	keyFile string
	file    config.Store
}

func (f *storeFlags) register(fs *pflag.FlagSet) {
	fs.StringVar(&f.dir, "store", "",
		"also keep every operation in this directory: append-only segments, hash-chained, encrypted with --store-key (read them back with icptrack query, check them with icptrack verify)")
	fs.StringVar(&f.keyFile, "store-key", "",
		"the keyring that encrypts the store (icptrack keys new); default $CREDENTIALS_DIRECTORY/"+store.CredentialName+" when there is one, else the store is written in the clear")
}

// take reads the file's store section where the flags were not given.
func (f *storeFlags) take(file *config.File, take func(key, flag string, apply func())) {
	take("store.dir", "store", func() { f.dir = file.Store.Dir })
	take("store.key_file", "store-key", func() { f.keyFile = file.Store.KeyFile })
	f.file = file.Store
}

// check finds mistakes before anything starts.
func (f *storeFlags) check(mode string) error {
	if f.dir == "" {
		if f.keyFile != "" {
			return usageError("--store-key encrypts a store: add --store DIR")
		}
		return nil
	}
	if mode == modeMetrics {
		return usageError("--store needs --mode events: metrics mode counts operations in the kernel and keeps none")
	}
	return nil
}

// open opens the store before the tracer loads, so that a store that
// cannot be written (or a key that cannot be used) fails fast; the sink
// joins out's list.
func (f *storeFlags) open(out *outputs, log *zap.Logger) error {
	if f.dir == "" {
		return nil
	}
	s, err := f.openSink(out, log)
	if err != nil {
		return err
	}
	// First in the list: the pipeline closes its sinks in order, and the
	// store's last checkpoint, made as it closes, must find syslog open.
	out.sinks = append([]exporter.Sink{s}, out.sinks...)
	out.store = s
	return nil
}

// options are the store's settings as the writer takes them. Checkpoints
// go to the log, and to the syslog output running when each is made (a
// reload may change it), if any.
func (f *storeFlags) options(out *outputs, log *zap.Logger) store.Options {
	o := store.Options{
		SegmentSize: f.file.SegmentSize,
		SegmentAge:  f.file.SegmentAge,
		MaxSize:     f.file.MaxSize,
		MaxAge:      f.file.MaxAge,
		KeyFile:     store.ResolveKeyFile(f.keyFile),
		Version:     exporter.Version(),
		Warn:        func(err error) { log.Warn("store", zap.Error(err)) },
	}
	o.Checkpoint = func(c store.Checkpoint) {
		log.Info("checkpoint", zap.String("checkpoint", c.String()))
		if sys := out.checkpoints.Load(); sys != nil {
			sd := map[string]string{"log": hex.EncodeToString(c.LogID[:]), "segment": strconv.FormatUint(c.Segment, 10),
				"block": strconv.FormatUint(c.Block, 10), "seq": strconv.FormatUint(c.Seq, 10), "hash": hex.EncodeToString(c.Hash[:])}
			if c.Sealed {
				sd["epoch"], sd["seal"] = strconv.FormatUint(c.Epoch, 10), hex.EncodeToString(c.Seal[:])
			}
			sys.Checkpoint(c.String(), sd)
		}
	}
	return o
}

// openSink opens the store in f.dir as a pipeline's sink.
func (f *storeFlags) openSink(out *outputs, log *zap.Logger) (*store.Sink, error) {
	log = log.Named("store")
	w, err := store.Open(f.dir, f.options(out, log))
	var ke *store.KeyError
	if errors.As(err, &ke) {
		return nil, keyError(err)
	}
	if err != nil {
		return nil, &exitError{code: exitFailure, err: err}
	}
	return store.NewSink(w, store.SinkOptions{}), nil
}
