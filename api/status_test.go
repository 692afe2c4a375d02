package api

import (
	"encoding/json"
	"testing"
	"time"
)

func TestHealthAndReadiness(t *testing.T) {
	ready := false
	s := newTestServer(t, Options{Ready: func() bool { return ready }})
	if code, body := get(t, s.Handler(), "/readyz"); code != 503 {
		t.Errorf("/readyz before capture runs: %d %s, want 503", code, body)
	}
	ready = true
	if code, body := get(t, s.Handler(), "/readyz"); code != 200 {
		t.Errorf("/readyz once capture runs: %d %s, want 200", code, body)
	}
	if code, body := get(t, s.Handler(), "/healthz"); code != 200 || string(body) != "ok\n" {
		t.Errorf("/healthz: %d %q", code, body)
	}
}

func TestStatusShowsDetailsToAdminOnly(t *testing.T) {
	now := testBase.Add(time.Minute)
	s := newTestServer(t, Options{Version: "v1.2.3", Now: func() time.Time { return now },
		Status: func() Status {
			return Status{Kernel: "6.12.0", Mechanisms: []Mechanism{{Name: "pipe", On: true}, {Name: "shm", Reason: "no BTF"}},
				Drops: map[string]uint64{"ringbuf": 7}}
		}})
	ops := testOps(100)
	for _, op := range ops {
		s.Add(op)
	}
	now = now.Add(3 * time.Second)
	for _, c := range []struct {
		scope string
		admin bool
	}{{"read", false}, {"read:payload", false}, {"admin", true}} {
		code, body := get(t, s.Handler(), "/api/v1/status", c.scope)
		var st statusBody
		if err := json.Unmarshal(body, &st); err != nil || code != 200 {
			t.Fatalf("%s: %d %s", c.scope, code, body)
		}
		if st.Version != "v1.2.3" || st.UptimeNS != int64(3*time.Second) || st.Window.Operations != 100 ||
			st.Window.Source != "memory" || !st.Window.From.Equal(ops[0].Time) || !st.Window.To.Equal(ops[99].Time) {
			t.Errorf("%s: %s", c.scope, body)
		}
		if got := st.Kernel == "6.12.0" && len(st.Mechanisms) == 2 && st.Drops["ringbuf"] == 7; got != c.admin {
			t.Errorf("%s sees details: %v, want %v: %s", c.scope, got, c.admin, body)
		}
	}
}
