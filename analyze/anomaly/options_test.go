package anomaly

import (
	"strings"
	"testing"
	"time"

	"github.com/icptrack/icptrack/flow"
)

func TestOptionsMistakesSayWhatToGive(t *testing.T) {
	for _, c := range []struct {
		opts Options
		want string
	}{
		{Options{BaselineWindow: 5 * time.Second}, "shorter than 10 intervals of 1s: give it at least 10s"},
		{Options{BaselineWindow: 500 * time.Millisecond, Interval: 100 * time.Millisecond}, "at least 1s"},
		{Options{Interval: -time.Second}, "must be positive"},
		{Options{BaselineWindow: -time.Second}, "must be positive"},
	} {
		if _, err := New(c.opts); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("New(%+v): %v, want an error saying %q", c.opts, err, c.want)
		}
	}
}

// steady makes n seconds of one process writing to a pipe, perSecond
// writes a second, evenly spaced, from t0.
func steady(t0 time.Time, seconds, perSecond int) []*flow.Operation {
	var ops []*flow.Operation
	for s := range seconds {
		for i := range perSecond {
			ops = append(ops, &flow.Operation{
				ID: flow.OpID(len(ops) + 1), Time: t0.Add(time.Duration(s)*time.Second + time.Duration(i)*time.Second/time.Duration(perSecond)),
				Duration: 10 * time.Microsecond, PID: 10, Comm: "writer", Mechanism: flow.Pipe, Op: flow.Send,
				Channel: "pipe:1", Endpoint: "pipe:[1]", Bytes: 100, QueueDepth: -1,
			})
		}
	}
	return ops
}

func TestACaptureNoLongerThanItsWindowIsAnError(t *testing.T) {
	d, _ := New(Options{BaselineWindow: 30 * time.Second})
	for _, op := range steady(time.Unix(1e9, 0), 25, 10) {
		d.Add(op)
	}
	_, err := d.Findings()
	if err == nil || !strings.Contains(err.Error(), "no longer than its baseline window of 30s") {
		t.Errorf("error %v, want one saying the capture is no longer than the window", err)
	}
}

func TestATooShortBaselineCaptureIsAnError(t *testing.T) {
	d, _ := New(Options{})
	for _, op := range steady(time.Unix(1e9, 0), 5, 10) {
		d.Learn(op)
	}
	for _, op := range steady(time.Unix(2e9, 0), 30, 10) {
		d.Add(op)
	}
	_, err := d.Findings()
	if err == nil || !strings.Contains(err.Error(), "needs at least 10") {
		t.Errorf("error %v, want one saying the baseline capture is too short", err)
	}
}

func TestNoBaselineIsAnError(t *testing.T) {
	d, _ := New(Options{})
	for _, op := range steady(time.Unix(1e9, 0), 30, 10) {
		d.Add(op)
	}
	if _, err := d.Findings(); err == nil || !strings.Contains(err.Error(), "no baseline") {
		t.Errorf("error %v, want no baseline", err)
	}
}

// A baseline that never varied has a MAD of 0. The floor keeps a small
// change from scoring infinitely high, while a large one is still found.
func TestAConstantBaselineFlagsOnlyLargeChanges(t *testing.T) {
	t0 := time.Unix(1e9, 0)
	for _, c := range []struct {
		later int
		want  bool
	}{{10, false}, {13, false}, {16, false}, {40, true}} {
		ops := steady(t0, 20, 10)
		ops = append(ops, steady(t0.Add(20*time.Second), 20, c.later)...)
		r := detect(t, ops)
		if got := len(r.Findings) > 0; got != c.want {
			t.Errorf("10 writes a second, then %d: findings %v, want %v:\n%s", c.later, got, c.want, describe(r))
		}
		for _, f := range r.Findings {
			if f.Kind != Rate || f.Baseline == nil || f.Baseline.MAD != 0 || f.Baseline.Median != 10 {
				t.Errorf("finding %+v, want a rate against a median of 10 and a MAD of 0", f)
			}
		}
	}
}
