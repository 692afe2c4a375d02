package anomaly

import (
	"bytes"
	"io"
	"testing"

	"github.com/icptrack/icptrack/capture"
	"github.com/icptrack/icptrack/exporter"
	"github.com/icptrack/icptrack/flow"
)

// asCapture writes ops as an event log and reads them back, as
// icptrack analyze would read a file.
func asCapture(t *testing.T, ops []*flow.Operation, format exporter.Format) []*flow.Operation {
	t.Helper()
	var buf bytes.Buffer
	w, err := exporter.NewWriter(format, &buf, exporter.WriterOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, op := range ops {
		w.Write(op)
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	r, err := capture.Open(&buf)
	if err != nil {
		t.Fatal(err)
	}
	var back []*flow.Operation
	for {
		op, err := r.Next()
		if err == io.EOF {
			return back
		}
		if err != nil {
			t.Fatal(err)
		}
		back = append(back, op)
	}
}

func detectAgainst(t *testing.T, baseline, ops []*flow.Operation) *Report {
	t.Helper()
	d, err := New(Options{})
	if err != nil {
		t.Fatal(err)
	}
	for _, op := range baseline {
		d.Learn(op)
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

// A baseline taken from another run of the same system works although
// every pid, inode, socket directory and queue name differs: a clean run
// gives nothing, and anomalies planted in it are found.
func TestBaselineFromAnotherCapture(t *testing.T) {
	baseline := asCapture(t, generate(101, plantNothing), exporter.JSONL)
	clean := asCapture(t, generate(102, plantNothing), exporter.CSV)
	if baseline[0].PID == clean[0].PID {
		t.Fatal("the two runs share pids: the test would show nothing")
	}
	r := detectAgainst(t, baseline, clean)
	if r.Baseline.Source != "capture" || r.Baseline.Intervals < 55 {
		t.Errorf("baseline %+v, want another capture of about 60 intervals", r.Baseline)
	}
	if len(r.Findings) != 0 {
		t.Errorf("a clean run against another run's baseline:\n%s", describe(r))
	}
	for _, c := range []struct {
		plant plant
		kind  Kind
		comm  string
	}{
		{plantBurst, Rate, "shop-client"},
		{plantNewPair, NewPair, "intruder"},
		{plantSignalStorm, SignalStorm, "supervisor"},
	} {
		r := detectAgainst(t, baseline, asCapture(t, generate(102, c.plant), exporter.OTLPProto))
		found := false
		for _, f := range r.Findings {
			found = found || f.Kind == c.kind && f.Subject.Comm == c.comm
		}
		if !found {
			t.Errorf("no %s finding for %s:\n%s", c.kind, c.comm, describe(r))
		}
	}
}
