// Package anomaly finds what is unusual in a capture of IPC operations
// (icptrack analyze --anomalies). It learns a baseline, either from the
// first part of the capture (Options.BaselineWindow, measured from the
// first operation's time) or from another capture (Detector.Learn), and
// flags what the rest of the capture does that the baseline did not.
//
// # Intervals
//
// Everything is measured per interval (Options.Interval, 1s by default),
// on a grid that starts at the capture's first operation. An operation
// belongs to the interval it ended in. Operations may reach the log out of
// order (by up to 250ms); an interval is judged once the capture is a
// second past it, and a later operation counts in the oldest interval
// still open. The last interval of a baseline capture is left out (it
// would look quiet); the last interval of the examined capture is judged
// for rises only.
//
// # Subjects
//
// Subjects are keyed by what stays the same when the same programs run
// again: the mechanism, the endpoint with its run-specific parts masked
// (Subject.Endpoint) and command names. Pids, inodes and channel ids are
// never part of a key, so a baseline from another capture works.
//
// # Robust statistics
//
// For each subject and measure the baseline gives one value per
// interval (0 for an interval without operations). Their median and their
// median absolute deviation (MAD) describe it; sigma = 1.4826 × MAD, the
// standard deviation the MAD stands for, but never below a floor, so that
// a baseline that never varied does not make any change infinitely
// unlikely. A value's robust z is (value − median) / sigma. Floors:
//
//   - counts (operations, failures, signals): √median (at least 1), the
//     spread a count of independent events has when nothing changes;
//   - bytes: that of the operations, times the baseline's mean message
//     size;
//   - latency, compared as natural logarithms: ln(10)/8 = 0.288;
//   - queue depth: 1 message.
//
// # Rules
//
// With the default Threshold of 8:
//
//  1. New channel or pair (NewChannel, NewPair): a channel whose
//     mechanism, endpoint and processes at its ends the baseline never
//     had, or a sender → receiver pair of processes that never exchanged
//     anything in the baseline. One finding per pair, telling its reverse
//     too; a new channel whose pairs are all new is told by the pair.
//     Signals a process sends itself, and those the kernel raises, are
//     not between two processes and count for neither.
//  2. Rate (Rate): a process's successful operations or bytes per
//     interval on a channel endpoint, for endpoints the baseline had, at
//     robust z ≥ 8 and at least 1.5 × the baseline's busiest interval;
//     or at z ≤ −8 and at most its quietest ÷ 1.5. Bytes are judged only
//     in intervals of 5 operations or more: one big message is not a
//     rate.
//  3. Latency (Latency): the p50 of a process's sends or receives on an
//     endpoint in an interval with at least 5 of them, or the p99 with at
//     least 100 (below that a p99 is one call), at z ≥ 8 on the log scale
//     (so at least tenfold over a steady baseline's median) and 1.5 × the
//     baseline's slowest interval. A coalesced record counts each of its
//     calls at Busy / Ops; a receive that blocked waited for a sender, so
//     its time is not the call's and is left out, as are calls whose start
//     no hook saw. A latency needs 5 baseline intervals with a p50 (or p99).
//  4. Error burst (ErrorBurst): failures with one errno by one process on
//     one endpoint, at z ≥ 8 and 1.5 × the baseline's worst interval; an
//     errno the baseline never had is judged against none (sigma 1), so it
//     takes 8 failures in an interval.
//  5. Signal storm (SignalStorm): one signal from one process (or the
//     kernel) to another, the most of sends and deliveries in an interval,
//     by the same rule as errors. Signals a process sends itself (Go's
//     runtime preempts its threads with SIGURG, more often the busier the
//     machine) are its own business, not IPC, and are not counted.
//  6. Queue growth (QueueGrowth): a POSIX or SysV queue's depth (per
//     interval, the deepest it was, or what the last operation left) over
//     the last 10 intervals has a Theil–Sen slope of at least 0.5 messages
//     per interval, rose by at least 5 messages from the first of them to
//     the last, and ends above 1.5 × the deepest the baseline saw.
//
// Consecutive anomalous intervals of one subject and kind make one
// finding, with the numbers of its worst interval. Findings are sorted by
// score, highest first.
//
// These thresholds give no finding on forty generated minutes of noisy
// traffic (TestNormalTrafficGivesNoFindings; the highest score there is
// about 5) nor on the demo traced for a minute (TestDemoMinuteHasNoAnomalies).
package anomaly
