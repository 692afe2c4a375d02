package icptrackreceiver

import (
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/confmap"
	"go.opentelemetry.io/collector/confmap/confmaptest"

	"github.com/icptrack/icptrack/receiver/icptrackreceiver/internal/metadata"
)

func TestLoadConfig(t *testing.T) {
	cm, err := confmaptest.LoadConf(filepath.Join("testdata", "config.yaml"))
	require.NoError(t, err)

	custom := createDefaultConfig()
	custom.Mode = "metrics"
	custom.Mechanisms = []string{"unix", "pipe", "posix_mq"}
	custom.Include = IncludeConfig{Comms: []string{"nginx", "php-fpm"}, PIDs: []int{1}}
	custom.CausalStitching = false
	custom.ServiceName = "{comm}@{container}"
	custom.Cmdline = true
	custom.RingBufferSize = "64MiB"
	custom.DrainInterval = 20 * time.Millisecond
	custom.MetricsInterval = 30 * time.Second
	custom.QueueSize = 16
	custom.Coalesce = 5 * time.Millisecond
	off := createDefaultConfig()
	off.Coalesce = 0

	tests := []struct {
		name    string
		want    *Config
		wantErr []string // each must be in the error
	}{
		{name: "", want: createDefaultConfig()},
		{name: "custom", want: custom},
		{name: "coalesce_off", want: off},
		{name: "bad_filter", wantErr: []string{"filter:", `unknown operation "recieve"`, "did you mean receive", "      ^"}},
		{name: "bad_filter_payload", wantErr: []string{"filter:", "needs payload capture", "payload_bytes"}},
		{name: "bad_coalesce", wantErr: []string{"coalesce:", "-1ms is negative", "0 to send every operation on its own"}},
		{name: "bad_mechanism", wantErr: []string{"mechanisms:", "telepathy", "posix_mq"}},
		{name: "bad_payload", wantErr: []string{"payload_bytes:", "0 (off) to 4096"}},
		{name: "bad_ring_buffer", wantErr: []string{"ring_buffer_size:", "power of two"}},
		{name: "bad_drain_interval", wantErr: []string{"drain_interval:", "positive"}},
		{name: "bad_service_name", wantErr: []string{"service_name:", "placeholder"}},
		{name: "bad_include", wantErr: []string{"include::comms", "15 characters"}},
		{name: "bad_include_both", wantErr: []string{"include::cgroup and include::container"}},
		{name: "bad_mode", wantErr: []string{"mode:", "events or metrics"}},
		{name: "bad_payload_in_metrics_mode", wantErr: []string{"payload_bytes:", "mode events"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := NewFactory().CreateDefaultConfig()
			sub, err := cm.Sub(component.NewIDWithName(metadata.Type, tt.name).String())
			require.NoError(t, err)
			require.NoError(t, sub.Unmarshal(cfg))
			err = cfg.(*Config).Validate()
			if tt.wantErr == nil {
				require.NoError(t, err)
				require.Equal(t, tt.want, cfg)
				return
			}
			require.Error(t, err)
			for _, w := range tt.wantErr {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not say %q", err, w)
				}
			}
		})
	}
}

func TestUnknownKeyIsRejected(t *testing.T) {
	cm, err := confmaptest.LoadConf(filepath.Join("testdata", "config.yaml"))
	require.NoError(t, err)
	sub, err := cm.Sub("icptrack/custom")
	require.NoError(t, err)
	require.NoError(t, sub.Merge(confmapOf(map[string]any{"payload_byte": 3})))
	err = sub.Unmarshal(NewFactory().CreateDefaultConfig())
	require.ErrorContains(t, err, "payload_byte")
}

func confmapOf(m map[string]any) *confmap.Conf { return confmap.NewFromStringMap(m) }
