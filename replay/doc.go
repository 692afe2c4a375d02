// Package replay works on a capture after the fact, in two ways.
//
// Export sends its operations again as OpenTelemetry spans and metrics,
// with their own timestamps or shifted to end now, so that a capture
// taken on one machine can be looked at in Jaeger on another, later.
//
// Reenact recreates its IPC with stand-in processes: one per traced
// process, named like it, doing the same operations on channels of the
// same mechanisms, with the same sizes, order and timing. NewPlan decides
// what each stand-in does and what cannot be re-enacted, and why; the
// stand-ins are the running binary executed again (StandInMain).
package replay
