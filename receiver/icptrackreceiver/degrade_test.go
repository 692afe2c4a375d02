//go:build linux

package icptrackreceiver

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/component/componentstatus"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/receiver/receivertest"

	"github.com/icptrack/icptrack/receiver/icptrackreceiver/internal/metadata"
)

// statusHost records the component status the receiver reports.
type statusHost struct {
	component.Host
	events []*componentstatus.Event
}

func (h *statusHost) Report(ev *componentstatus.Event) { h.events = append(h.events, ev) }

// A program the verifier refuses (sys_enter, which pipes and queues need
// on every kernel): with the default mechanisms the receiver runs without
// them and says so in its status; naming one of them fails its start.
func TestRejectedProgramDegradesTheReceiver(t *testing.T) {
	needsBPF(t)
	t.Setenv("ICPTRACK_TEST_REJECT", "sys_enter")
	host := &statusHost{}
	r, err := NewFactory().CreateTraces(context.Background(), receivertest.NewNopSettings(metadata.Type), createDefaultConfig(), consumertest.NewNop())
	require.NoError(t, err)
	require.NoError(t, r.Start(context.Background(), host))
	require.NoError(t, r.Shutdown(context.Background()))
	require.Len(t, host.events, 1)
	require.Equal(t, componentstatus.StatusRecoverableError, host.events[0].Status())
	require.ErrorContains(t, host.events[0].Err(), "not traced on this kernel")
	require.ErrorContains(t, host.events[0].Err(), "pipe, fifo")

	cfg := createDefaultConfig()
	cfg.Mechanisms = []string{"pipe", "signal"}
	r, err = NewFactory().CreateTraces(context.Background(), receivertest.NewNopSettings(metadata.Type), cfg, consumertest.NewNop())
	require.NoError(t, err)
	err = r.Start(context.Background(), &statusHost{})
	require.ErrorContains(t, err, "pipe: tp_btf/sys_enter: the verifier rejected it")
	require.NoError(t, r.Shutdown(context.Background()))
}
