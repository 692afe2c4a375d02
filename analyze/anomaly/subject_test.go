package anomaly

import (
	"testing"

	"github.com/icptrack/icptrack/flow"
)

func TestStableEndpointMasksWhatChangesBetweenRuns(t *testing.T) {
	for _, c := range []struct {
		mech           flow.Mechanism
		endpoint, want string
	}{
		{flow.Pipe, "pipe:[3067551]", "pipe:[*]"},
		{flow.UnixStream, "/tmp/icptrack-demo2142994795/server.sock", "/tmp/icptrack-*/server.sock"},
		{flow.UnixStream, "@/tmp/.X11-unix/X0", "@/tmp/.*-unix/*"},
		{flow.UnixStream, "socket:[88121]", "socket:[*]"},
		{flow.POSIXMQ, "/icptrack-demo-28318", "/icptrack-demo-*"},
		{flow.SysVMQ, "key 0x1f2e msqid 7", "key 0x1f2e"},
		{flow.SysVMQ, "msqid 7", "msqid *"},
		{flow.TCP, "127.0.0.1:5000->127.0.0.1:41234", "127.0.0.1:*->127.0.0.1:5000"},
		{flow.TCP, "[::1]:51234->[::1]:8080", "[::1]:*->[::1]:8080"},
		{flow.Signal, "SIGRTMIN+3", "SIGRTMIN+3"},
	} {
		if got := stableEndpoint(c.mech, c.endpoint); got != c.want {
			t.Errorf("%s %q: %q, want %q", c.mech, c.endpoint, got, c.want)
		}
	}
}

func TestTheilSenIgnoresAnOutlier(t *testing.T) {
	if s := theilSen([]float64{0, 1, 2, 3, 100, 5, 6, 7, 8, 9}); s != 1 {
		t.Errorf("slope %g, want 1", s)
	}
	if s := theilSen([]float64{2, 0, 3, 1, 2, 0, 3, 1, 2, 0}); s > 0.2 {
		t.Errorf("slope %g of a level that jitters, want about 0", s)
	}
}
