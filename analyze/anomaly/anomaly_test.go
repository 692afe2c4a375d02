package anomaly

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/icptrack/icptrack/flow"
)

// detect runs a detector with a baseline window of the first 20s over ops.
func detect(t *testing.T, ops []*flow.Operation) *Report {
	t.Helper()
	d, err := New(Options{BaselineWindow: 20 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	for _, op := range ops {
		d.Add(op)
	}
	r, err := d.Findings()
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func describe(r *Report) string {
	var b strings.Builder
	if err := WriteText(&b, r); err != nil {
		panic(err)
	}
	return b.String()
}

// Each planted anomaly is found, as its kind and on its subject, and
// nothing else is; the same capture without it gives no finding at all.
func TestEachPlantedAnomalyIsFoundAndTheCleanCaptureGivesNone(t *testing.T) {
	cases := []struct {
		name  string
		plant plant
		kind  Kind
		// subject says whether a finding is the planted one.
		subject func(Subject) bool
		// also lists other kinds the plant may rightly cause.
		also []Kind
	}{
		{"new pair", plantNewPair, NewPair, func(s Subject) bool {
			return s.Comm == "intruder" && s.PeerComm == "shop-server"
		}, nil},
		{"new channel", plantNewChannel, NewChannel, func(s Subject) bool {
			return s.Mechanism == "unix_stream" && s.Endpoint == "/run/shop/admin.sock" &&
				strings.Join(s.Comms, ",") == "shop-client,shop-server"
		}, nil},
		{"burst of requests", plantBurst, Rate, func(s Subject) bool {
			return s.Comm == "shop-client" && s.Mechanism == "unix_stream" && s.Endpoint == "/tmp/*/server.sock"
		}, []Kind{ErrorBurst}}, // each retry also meets EAGAIN
		{"big messages", plantBigMessages, Rate, func(s Subject) bool {
			return s.Comm == "shop-server" && s.Mechanism == "pipe"
		}, nil},
		{"slow sends", plantSlowSends, Latency, func(s Subject) bool {
			return s.Comm == "shop-server" && s.Mechanism == "pipe" && s.Op == "send"
		}, nil},
		{"EPIPE storm", plantEPIPE, ErrorBurst, func(s Subject) bool {
			return s.Comm == "shop-server" && s.Mechanism == "pipe" && s.Error == "EPIPE"
		}, nil},
		{"signal storm", plantSignalStorm, SignalStorm, func(s Subject) bool {
			return s.Signal == "SIGHUP" && s.Comm == "supervisor" && s.PeerComm == "shop-worker"
		}, nil},
		{"queue growth", plantQueueGrowth, QueueGrowth, func(s Subject) bool {
			return s.Mechanism == "posix_mq" && s.Endpoint == "/shop-answers-*"
		}, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			for seed := uint64(1); seed <= 5; seed++ {
				clean := detect(t, generate(seed, plantNothing))
				if len(clean.Findings) != 0 {
					t.Errorf("seed %d without the plant:\n%s", seed, describe(clean))
				}
				r := detect(t, generate(seed, c.plant))
				found := false
				for _, f := range r.Findings {
					switch {
					case f.Kind == c.kind && c.subject(f.Subject):
						found = true
						if f.From.Before(r.Baseline.To) || f.Score <= 0 || f.Evidence == "" {
							t.Errorf("seed %d: finding %+v: before the baseline ended, no score or no evidence", seed, f)
						}
					case f.Kind == c.kind || slices.Contains(c.also, f.Kind):
					default:
						t.Errorf("seed %d: a %s finding, which the plant should not cause:\n%s", seed, f.Kind, describe(r))
					}
				}
				if !found {
					t.Errorf("seed %d: no %s finding on the planted subject:\n%s", seed, c.kind, describe(r))
				}
				if seed == 1 {
					t.Logf("\n%s", describe(r))
				}
			}
		})
	}
}

// A process that starts talking right after the baseline window, while
// its last interval is still open for late operations, is new: it is not
// judged against a baseline of one empty interval.
func TestANewcomerJustAfterTheWindowIsOnlyNew(t *testing.T) {
	t0 := time.Unix(1e9, 0)
	ops := steady(t0, 40, 10)
	for _, op := range steady(t0.Add(20*time.Second+200*time.Millisecond), 20, 50) {
		op.Comm, op.PID, op.Channel, op.Endpoint = "newcomer", 20, "pipe:2", "pipe:[2]"
		op.Peer = flow.Peer{PID: 30, Comm: "reader"}
		ops = append(ops, op)
	}
	slices.SortStableFunc(ops, func(a, b *flow.Operation) int { return a.Time.Compare(b.Time) })
	r := detect(t, ops)
	if len(r.Findings) != 1 || r.Findings[0].Kind != NewPair || r.Findings[0].Subject.Comm != "newcomer" {
		t.Errorf("want only the new pair newcomer → reader:\n%s", describe(r))
	}
}

// One big message on an endpoint whose baseline moved no bytes (it only
// read end of file) is not a rate anomaly; many are.
func TestOneBigMessageIsNotARate(t *testing.T) {
	t0 := time.Unix(1e9, 0)
	for _, c := range []struct {
		messages int
		want     bool
	}{{1, false}, {4, false}, {20, true}} {
		ops := steady(t0, 40, 10)
		eof := steady(t0.Add(2*time.Second), 1, 1)[0]
		eof.Comm, eof.Op, eof.Bytes = "reader", flow.Receive, 0
		ops = append(ops, eof)
		for _, m := range steady(t0.Add(30*time.Second), 1, c.messages) {
			m.Comm, m.Op, m.Bytes = "reader", flow.Receive, 64<<10
			ops = append(ops, m)
		}
		slices.SortStableFunc(ops, func(a, b *flow.Operation) int { return a.Time.Compare(b.Time) })
		r := detect(t, ops)
		if got := len(r.Findings) > 0; got != c.want {
			t.Errorf("%d messages of 64KiB: findings %v, want %v:\n%s", c.messages, got, c.want, describe(r))
		}
	}
}
