//go:build linux

package icptrackreceiver

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/receiver/receivertest"
)

// filter: keeps only what it matches, in every pipeline: of the helper's
// datagrams, the one receive whose payload names it.
func TestFilterKeepsWhatItMatches(t *testing.T) {
	needsBPF(t)
	cfg := contractConfig(&testHooks{})
	cfg.Filter = `op == receive and payload contains "icp-000002"`
	require.NoError(t, cfg.Validate())
	sink := new(consumertest.LogsSink)
	r, err := NewFactory().CreateLogs(context.Background(), receivertest.NewNopSettings(NewFactory().Type()), cfg, sink)
	require.NoError(t, err)
	require.NoError(t, r.Start(context.Background(), componenttest.NewNopHost()))
	h, err := startIPCHelper(helperBinary(t))
	require.NoError(t, err)
	for n := range 5 {
		require.NoError(t, h.exchange(fmt.Sprintf("icp-%06d", n)))
	}
	require.NoError(t, h.stop())
	time.Sleep(200 * time.Millisecond) // the last batch's timeout
	require.NoError(t, r.Shutdown(context.Background()))

	var kept []string
	for _, ld := range sink.AllLogs() {
		rls := ld.ResourceLogs()
		for i := range rls.Len() {
			lrs := rls.At(i).ScopeLogs().At(0).LogRecords()
			for j := range lrs.Len() {
				a := lrs.At(j).Attributes()
				op, _ := a.Get("op")
				mech, _ := a.Get("mechanism")
				kept = append(kept, mech.AsString()+" "+op.AsString())
			}
		}
	}
	require.Equal(t, []string{"unix_dgram receive"}, kept, "the filter keeps one receive of ten operations")
}
