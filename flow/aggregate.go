package flow

// AggregateBuckets is the number of buckets of Aggregate.Hist.
const AggregateBuckets = 32

// Aggregate is metrics mode's count of one process's operations of one
// kind (mechanism, operation, errno), since icptrack first saw one:
// cumulative. The kernel counts them; nothing is correlated.
type Aggregate struct {
	PID       uint32
	Comm      string
	Process   Process
	Mechanism Mechanism
	Op        OpType
	// Errno names the failure ("EAGAIN"); empty for successes.
	Errno string
	Count uint64
	// Bytes moved by sends and receives.
	Bytes uint64
	// Hist counts durations: bucket i holds [2^i, 2^(i+1)) nanoseconds
	// (bucket 0 also 0 ns), the last bucket everything longer.
	Hist [AggregateBuckets]uint64
	// Final is set on a process's last report: it has exited, and its
	// counts are forgotten after this.
	Final bool
}
