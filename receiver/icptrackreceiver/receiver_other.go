//go:build !linux

package icptrackreceiver

import (
	"context"
	"errors"
	"runtime"

	"go.opentelemetry.io/collector/component"
)

// The receiver builds everywhere, so that a distribution that includes it
// builds everywhere too; it runs only on Linux.
func supported() error {
	return errors.New("the icptrack receiver needs Linux with eBPF; this Collector runs on " + runtime.GOOS)
}

type running struct{}

func (i *instance) start(context.Context, component.Host) (*running, error) { return nil, supported() }

func (r *running) stop(context.Context) error { return nil }

func (r *running) unavailable() error { return nil }
