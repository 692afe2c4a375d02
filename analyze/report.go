package analyze

import (
	"time"
)

// FormatVersion is the version of the Report's JSON shape. Fields may be
// added within a version; a rename or a change of meaning bumps it.
const FormatVersion = 1

// Report is what an Analyzer found in a capture. Its JSON form is the
// output of icptrack analyze --json; README "icptrack analyze" documents
// every field.
type Report struct {
	FormatVersion int `json:"format_version"`
	// Start is when the earliest operation started, End when the latest
	// ended; DurationNS is the span between them.
	Start      time.Time `json:"start"`
	End        time.Time `json:"end"`
	DurationNS int64     `json:"duration_ns"`
	Operations int64     `json:"operations"`
	// Records is the capture's lines: fewer than Operations when runs
	// of operations were coalesced.
	Records   int64          `json:"records"`
	Intervals Intervals      `json:"intervals"`
	Map       []Link         `json:"map"`
	Top       Top            `json:"top"`
	Processes []ProcessStats `json:"processes"`
	Channels  []ChannelStats `json:"channels"`
	Pairs     []PairStats    `json:"pairs"`
}

// Intervals is the time axis of every PerInterval series: Count buckets
// of WidthNS each, the first starting at Start. An operation is counted
// in the bucket its start falls in.
type Intervals struct {
	Start   time.Time `json:"start"`
	WidthNS int64     `json:"width_ns"`
	Count   int       `json:"count"`
}

// Width is the buckets' width.
func (iv Intervals) Width() time.Duration { return time.Duration(iv.WidthNS) }

// Stats describe a set of operations: a channel's, a pair's or a
// process's. Counts are of operations: a coalesced record counts as the
// operations it stands for.
type Stats struct {
	Operations    int64 `json:"operations"`
	Records       int64 `json:"records"`
	Sends         int64 `json:"sends"`
	Receives      int64 `json:"receives"`
	SentBytes     int64 `json:"sent_bytes"`
	ReceivedBytes int64 `json:"received_bytes"`
	// The rates are over the whole capture (Report.DurationNS); the
	// peaks are of one interval. Bytes are the bytes moved: the larger
	// of those sent and those received, so that a channel traced at one
	// end counts as much as one traced at both.
	OperationsPerSecond     float64 `json:"operations_per_second"`
	BytesPerSecond          float64 `json:"bytes_per_second"`
	PeakOperationsPerSecond float64 `json:"peak_operations_per_second"`
	PeakBytesPerSecond      float64 `json:"peak_bytes_per_second"`
	MessageSize             Sizes   `json:"message_size"`
	Latency                 Latency `json:"latency"`
	Blocked                 Blocked `json:"blocked"`
	// Errors counts the failed operations by errno name (EAGAIN too).
	Errors      map[string]int64 `json:"errors"`
	PerInterval Series           `json:"per_interval"`

	raw *acc // for merging (Compare) and charts
}

// MovedBytes is the larger of the bytes sent and received.
func (s *Stats) MovedBytes() int64 { return max(s.SentBytes, s.ReceivedBytes) }

// Sizes are message sizes in bytes, over the sends and receives that
// moved data (a coalesced record counts as its operations, each of the
// record's mean size). P50 and P99 are within 1% of the true value.
type Sizes struct {
	Count int64   `json:"count"`
	Mean  float64 `json:"mean"`
	P50   float64 `json:"p50"`
	P99   float64 `json:"p99"`
}

// Latency is the time operations spent in their calls, over those whose
// start was seen (a coalesced record counts as its operations, each of
// the record's mean time in the call). Quantiles are within 1% of the
// true value; Max is exact.
type Latency struct {
	Count  int64 `json:"count"`
	MeanNS int64 `json:"mean_ns"`
	P50NS  int64 `json:"p50_ns"`
	P90NS  int64 `json:"p90_ns"`
	P99NS  int64 `json:"p99_ns"`
	MaxNS  int64 `json:"max_ns"`
}

// Blocked is how many operations had to wait and how long they took in
// all.
type Blocked struct {
	Operations int64 `json:"operations"`
	TimeNS     int64 `json:"time_ns"`
}

// Series counts per interval (Report.Intervals): operations, and bytes
// sent and received. A rate is a count divided by the interval's width.
type Series struct {
	Operations    []int64 `json:"operations"`
	SentBytes     []int64 `json:"sent_bytes"`
	ReceivedBytes []int64 `json:"received_bytes"`
}

// ChannelStats is one channel: both ends' operations.
type ChannelStats struct {
	Channel   string `json:"channel"`
	Mechanism string `json:"mechanism"`
	Endpoint  string `json:"endpoint"`
	// Key names the channel across captures (Key): what diff matches.
	Key string `json:"key"`
	// Processes are those that used the channel or were named as its
	// other end.
	Processes []Process `json:"processes"`
	// Unpaired counts the sends and receives whose other end is not
	// known: they are in no pair.
	Unpaired int64 `json:"unpaired_operations"`
	Stats
}

// PairStats is what one process sent to another: the sender's sends and
// the receiver's receives of them, over every channel between them.
type PairStats struct {
	From       Process  `json:"from"`
	To         Process  `json:"to"`
	Mechanisms []string `json:"mechanisms"`
	Channels   []string `json:"channels"`
	Stats
}

// ProcessStats is one process's own operations.
type ProcessStats struct {
	Process
	Exe string `json:"exe,omitempty"`
	Stats
}

// The ways a Link joins its processes.
const (
	OneWay   = "one_way"   // the first sends to the second
	BothWays = "both_ways" // each sends to the other
	Shared   = "shared"    // they share a segment, or use a channel whose sends and receives are not paired
)

// Link is a line of the map: processes that talk over a mechanism and
// endpoint, on one channel or several (connections to one socket path).
type Link struct {
	// Processes are the two ends of a pair, the one that sent first
	// first; or, Shared, every process on the channel.
	Processes []Process `json:"processes"`
	Direction string    `json:"direction"`
	Mechanism string    `json:"mechanism"`
	Endpoint  string    `json:"endpoint"`
	Channels  int       `json:"channels"`
	// Operations and Bytes (moved, as in Stats) are those of the pairs
	// or, Shared, of the channels.
	Operations int64 `json:"operations"`
	Bytes      int64 `json:"bytes"`
}

// Top holds the ranked lists, each at most Options.Top long: processes by
// the bytes they sent and received and by their operations; channels by
// operations and by bytes moved per second, and by p99 latency.
type Top struct {
	TalkersByBytes      []Process `json:"talkers_by_bytes"`
	TalkersByOperations []Process `json:"talkers_by_operations"`
	BusiestByOperations []string  `json:"busiest_channels_by_operations"`
	BusiestByBytes      []string  `json:"busiest_channels_by_bytes"`
	Slowest             []string  `json:"slowest_channels"`
}

// Channel returns the channel with this id, or nil.
func (r *Report) Channel(id string) *ChannelStats {
	for i := range r.Channels {
		if r.Channels[i].Channel == id {
			return &r.Channels[i]
		}
	}
	return nil
}

// Process returns the statistics of process p, or nil.
func (r *Report) Process(p Process) *ProcessStats {
	for i := range r.Processes {
		if r.Processes[i].Process == p {
			return &r.Processes[i]
		}
	}
	return nil
}
