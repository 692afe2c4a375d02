package anomaly

import (
	"cmp"
	"slices"
	"time"
)

// Kind is what sort of anomaly a finding is. Its values are the JSON
// report's kind field.
type Kind string

// The kinds of finding, and the Subject fields each sets.
const (
	// NewChannel: a channel the baseline never had (Mechanism, Endpoint,
	// Comms). Reported only when some pair of processes on it is not new
	// itself; otherwise the NewPair finding names it.
	NewChannel Kind = "new_channel"
	// NewPair: a sender and a receiver that never talked in the baseline
	// (Comm → PeerComm), over any channel.
	NewPair Kind = "new_pair"
	// Rate: a process's operations or bytes per second on a channel,
	// outside the baseline's (Comm, Mechanism, Endpoint).
	Rate Kind = "rate"
	// Latency: the p50 or p99 time of a process's sends or receives on a
	// channel, far above the baseline's (Comm, Mechanism, Endpoint, Op).
	Latency Kind = "latency"
	// ErrorBurst: failures with one errno far above the baseline's
	// (Comm, Mechanism, Endpoint, Error).
	ErrorBurst Kind = "error_burst"
	// SignalStorm: one signal from one process to another far more often
	// than in the baseline (Signal, Comm → PeerComm).
	SignalStorm Kind = "signal_storm"
	// QueueGrowth: a message queue whose depth keeps rising (Mechanism,
	// Endpoint).
	QueueGrowth Kind = "queue_growth"
)

// Finding is one anomaly, with the numbers that make it one. Consecutive
// anomalous intervals of one kind and subject make a single finding; its
// numbers are those of its worst interval.
type Finding struct {
	Kind    Kind    `json:"kind"`
	Subject Subject `json:"subject"`
	// From and To bound the intervals (or, for a new channel or pair, the
	// operations) the finding covers.
	From time.Time `json:"from"`
	To   time.Time `json:"to"`
	// Score is a robust z score: how many baseline sigmas the worst value
	// lies from the baseline's median. For a new channel or pair it is
	// the operations in its busiest interval (against a baseline of none,
	// whose sigma is 1); for a queue, its last depth against the
	// baseline's depths. Findings are sorted by it, highest first.
	Score float64 `json:"score"`
	// Evidence says it in words and numbers.
	Evidence string `json:"evidence"`
	// Metric is what was measured: ops/s, bytes/s, p50, p99, errors/s,
	// signals/s, depth, ops (new channels and pairs).
	Metric string `json:"metric"`
	// Value is the worst interval's value of Metric: per second for rates
	// and counts, nanoseconds for latencies, messages for depth.
	Value float64 `json:"value"`
	// Baseline is what the baseline says of Metric for this subject;
	// absent for a new channel or pair.
	Baseline *Stats `json:"baseline,omitempty"`
	// Intervals is how many intervals were anomalous (new channels and
	// pairs: how many had operations).
	Intervals int `json:"intervals"`
}

// Stats sum up the baseline's values of a metric, one per interval, in
// Finding.Value's unit.
type Stats struct {
	Median float64 `json:"median"`
	// MAD is the median absolute deviation. For latencies (Log) it is that
	// of the natural logarithm of the values: latencies are compared as
	// ratios, and a MAD of 0.1 means a typical spread of about 10%.
	MAD       float64 `json:"mad"`
	Max       float64 `json:"max"`
	Log       bool    `json:"log,omitempty"`
	Intervals int     `json:"intervals"`
}

// Report is the result of a detection: what the baseline was, what was
// examined, and the findings, highest score first.
type Report struct {
	// Interval is the measuring interval, in nanoseconds.
	Interval time.Duration `json:"interval_ns"`
	Baseline Period        `json:"baseline"`
	Examined Period        `json:"examined"`
	Findings []Finding     `json:"findings"`
}

// Period is a stretch of a capture.
type Period struct {
	// Source is "window" (the first part of the examined capture) or
	// "capture" (another capture).
	Source    string    `json:"source,omitempty"`
	From      time.Time `json:"from"`
	To        time.Time `json:"to"`
	Intervals int       `json:"intervals"`
}

func sortFindings(fs []Finding) {
	slices.SortStableFunc(fs, func(a, b Finding) int {
		if c := cmp.Compare(b.Score, a.Score); c != 0 {
			return c
		}
		if c := a.From.Compare(b.From); c != 0 {
			return c
		}
		if c := cmp.Compare(a.Kind, b.Kind); c != 0 {
			return c
		}
		return cmp.Compare(a.Subject.String(), b.Subject.String())
	})
}
