package filter

import (
	"testing"

	"github.com/icptrack/icptrack/flow"
)

// BenchmarkFilter evaluates each of the examples on an operation
// it accepts, so that every condition runs. Issue 13's target: at most
// 100 ns and no allocation for the first.
func BenchmarkFilter(b *testing.B) {
	pg := &flow.Operation{PID: 77, Comm: "app", Mechanism: flow.TCP, Op: flow.Receive, Blocked: true,
		Peer: flow.Peer{PID: 90, Comm: "postgres"}, QueueDepth: -1}
	ops := []*flow.Operation{nginxGet(), nginxGet(), nginxGet(), pg}
	names := []string{"glob_mechanism_payload", "pid_in_not_error", "endpoint_matches_duration", "peer_op_blocked"}
	for i, expr := range examples {
		f := mustParse(b, expr)
		op := ops[i]
		if !f.Match(op) {
			b.Fatalf("%s does not accept its operation", expr)
		}
		b.Run(names[i], func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if !f.Match(op) {
					b.Fatal("no match")
				}
			}
		})
	}
}
