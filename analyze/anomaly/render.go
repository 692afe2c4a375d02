package anomaly

import (
	"encoding/json"
	"fmt"
	"io"
	"strconv"
)

// WriteText writes the report for a person: a line on the baseline and
// what was examined, then one paragraph per finding, highest score
// first: its score, kind, subject and time, then its evidence.
//
//	anomalies: 2 findings; baseline: the first 20s (20 intervals of 1s), examined 40s
//
//	score 460.2  rate  demo-server on unix_stream /tmp/icptrack-demo*/server.sock
//	  15:12:03–15:12:04: ops/s 4200 in 15:12:03–15:12:04; baseline median 10, MAD 0, max 11; robust z 460.2
func WriteText(w io.Writer, r *Report) error {
	base := "the first " + r.Baseline.To.Sub(r.Baseline.From).String()
	if r.Baseline.Source == "capture" {
		base = "another capture, " + r.Baseline.To.Sub(r.Baseline.From).String()
	}
	n := strconv.Itoa(len(r.Findings)) + " findings"
	switch len(r.Findings) {
	case 0:
		n = "none found"
	case 1:
		n = "1 finding"
	}
	if _, err := fmt.Fprintf(w, "anomalies: %s; baseline: %s (%d intervals of %s), examined %s\n", n, base,
		r.Baseline.Intervals, r.Interval, r.Examined.To.Sub(r.Examined.From).Round(r.Interval/1000)); err != nil {
		return err
	}
	for _, f := range r.Findings {
		if _, err := fmt.Fprintf(w, "\nscore %s  %s  %s\n  %s: %s\n", zString(f.Score), f.Kind, f.Subject,
			timeRange(f.From, f.To, r.Interval), f.Evidence); err != nil {
			return err
		}
	}
	return nil
}

// WriteJSON writes the report as one indented JSON document: Report's
// fields, under the names their tags give, which are kept stable (new
// ones may be added, none renamed).
func WriteJSON(w io.Writer, r *Report) error {
	e := json.NewEncoder(w)
	e.SetIndent("", "  ")
	return e.Encode(r)
}
