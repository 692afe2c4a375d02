package config

import (
	"errors"
	"strings"
	"testing"
)

func TestAPIKeys(t *testing.T) {
	f, err := Parse("/etc/icptrack/config.yaml", []byte("api:\n  address: 127.0.0.1:9470\n  window: 5000\n"))
	if err != nil {
		t.Fatal(err)
	}
	if f.API.Address != "127.0.0.1:9470" || f.API.Window != 5000 || !f.Has("api.window") {
		t.Errorf("api settings: %+v", f.API)
	}
	for _, tc := range []struct {
		yaml, key, says string
	}{
		{"api:\n  address: 9470\n", "api.address", "host:port"},
		{"api:\n  window: 0\n", "api.window", "from 1 to"},
		{"api:\n  window: 2.5\n", "api.window", "from 1 to"},
		{"api:\n  window: lots\n", "api.window", "number"},
		{"api: 127.0.0.1:9470\n", "api", "is a section"},
	} {
		_, err := Parse("/etc/icptrack/config.yaml", []byte(tc.yaml))
		var ce *Error
		if !errors.As(err, &ce) || ce.Key != tc.key || !strings.Contains(err.Error(), tc.says) {
			t.Errorf("%q: %v, want an error about %s that says %q", tc.yaml, err, tc.key, tc.says)
		}
	}
}
