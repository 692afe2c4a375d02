// Package analyze reads a capture's operations once, in any order, and
// answers "what happened here": per channel, per pair of processes and
// per process, how many operations and bytes, how they spread over time,
// message sizes, latencies, time spent blocked and errors; the top
// talkers, the busiest and slowest channels, and a map of who talks to
// whom. It also compares two captures (Compare).
//
// Memory grows with the number of channels, pairs of processes and
// intervals, never with the number of operations: percentiles come from
// DDSketch quantile sketches (1% relative accuracy), and rates from
// interval buckets whose width grows when a capture is long.
package analyze
