//go:build linux

package icptrackreceiver

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/icptrack/icptrack/flow"
)

// What the configuration says reaches the tracer.
func TestConfigReachesTheTracer(t *testing.T) {
	cfg := createDefaultConfig()
	pcfg, err := cfg.probes()
	require.NoError(t, err)
	require.Equal(t, time.Millisecond, pcfg.Coalesce, "coalescing is on by default")
	require.Zero(t, pcfg.Required, "with all, a mechanism the kernel cannot serve is left out")
	require.NoError(t, pcfg.Validate())

	cfg.Coalesce = 0
	cfg.Mechanisms = []string{"unix", "pipe"}
	cfg.PayloadBytes = 64
	cfg.RingBufferSize = "4MiB"
	cfg.Mode = modeMetrics
	pcfg, err = cfg.probes()
	require.NoError(t, err)
	require.Zero(t, pcfg.Coalesce, "coalesce: 0 turns it off")
	want := flow.SetOf(flow.UnixStream, flow.UnixDgram, flow.UnixSeqpacket, flow.Pipe)
	require.Equal(t, want, pcfg.Mechanisms)
	require.Equal(t, want, pcfg.Required, "named mechanisms are required")
	require.Equal(t, 64, pcfg.PayloadBytes)
	require.Equal(t, 4<<20, pcfg.RingBufferBytes)
	require.True(t, pcfg.MetricsOnly)
}
