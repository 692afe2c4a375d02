package exporter

import (
	"encoding/binary"
	"math"
	"strconv"
	"strings"

	"go.opentelemetry.io/collector/pdata/pcommon"
)

// Consistent probability sampling, as the OpenTelemetry specification
// "TraceState: Probability Sampling" defines it: a trace's randomness is
// the least-significant 56 bits of its id, a sampler's rejection
// threshold T is (1 - probability) * 2^56, and a trace is kept when its
// randomness is at least T. T travels with every span in its
// tracestate as "ot=th:<hex>", so that any later stage (a Collector's
// probabilistic sampler, a backend estimating counts) knows what the
// span stands for.

// maxThreshold is 2^56: randomness and thresholds are 56-bit.
const maxThreshold = 1 << 56

// thresholdPrecision is the hex digits a threshold keeps, as the
// specification recommends SDKs use by default.
const thresholdPrecision = 4

// minProbability is the smallest sampling probability the adaptive cap
// goes down to; the specification's floor is 2^-56.
const minProbability = 1.0 / (1 << 40)

// W3C trace flags on the spans icptrack exports: sampled, and "random"
// (W3C Trace Context Level 2), which says the trace id's low 56 bits are
// random, so that downstream samplers may use them as this one does.
const (
	traceFlagSampled = 0x01
	traceFlagRandom  = 0x02
)

// threshold is a rejection threshold: traces whose randomness is below
// it are sampled out. 0 keeps every trace.
type threshold uint64

// thresholdFor is the threshold that samples with probability p (in
// (0, 1]), rounded to thresholdPrecision significant hex digits as the
// specification's reference algorithm does: the precision is raised by
// one digit per leading f, so that small probabilities keep their
// significant digits.
func thresholdFor(p float64) threshold {
	if !(p < 1) {
		return 0
	}
	p = max(p, 1.0/maxThreshold)
	_, exp := math.Frexp(p)
	prec := max(1, min(12, thresholdPrecision+floorDiv(exp, -4)))
	// 2 - p is in [1, 2): its 52 mantissa bits are the rejection
	// probability's first 13 hex digits. Adding half of the last digit
	// kept rounds to nearest.
	r := 2 - p + math.Ldexp(0.5, -4*prec)
	if r >= 2 {
		return threshold(maxThreshold - 1)
	}
	mant := math.Float64bits(r) & (1<<52 - 1)
	digits := mant >> (52 - 4*prec)
	return threshold(digits << (56 - 4*prec))
}

// floorDiv is a/b rounded down, as Python's // (for b < 0 too).
func floorDiv(a, b int) int {
	q := a / b
	if (a%b != 0) && ((a < 0) != (b < 0)) {
		q--
	}
	return q
}

// probability is the fraction of traces t keeps.
func (t threshold) probability() float64 {
	return float64(maxThreshold-uint64(t)) / maxThreshold
}

// th is the threshold as the tracestate's th value: 14 hex digits with
// trailing zeros removed, "0" for keep-all.
func (t threshold) th() string {
	if t == 0 {
		return "0"
	}
	s := strconv.FormatUint(uint64(t), 16)
	s = strings.Repeat("0", 14-len(s)) + s
	return strings.TrimRight(s, "0")
}

// traceState is the span's W3C tracestate for a trace sampled with t.
func (t threshold) traceState() string { return "ot=th:" + t.th() }

// randomness is the trace id's least-significant 56 bits.
func randomness(id pcommon.TraceID) uint64 {
	return binary.BigEndian.Uint64(id[8:]) & (maxThreshold - 1)
}

// keeps reports whether the trace with id is sampled at t.
func (t threshold) keeps(id pcommon.TraceID) bool {
	return randomness(id) >= uint64(t)
}

// traceRef is a trace and the threshold it was decided with. A trace
// keeps its threshold for life, so that all of its spans get one
// decision even when the sampler's threshold changes meanwhile.
type traceRef struct {
	id pcommon.TraceID
	th threshold
}

func (r traceRef) sampled() bool { return r.th.keeps(r.id) }

// traceStates caches the tracestate strings of the thresholds in use: a
// trace's spans share one string, and the adaptive cap moves through a
// few thresholds at a time.
type traceStates map[threshold]string

func (c traceStates) of(t threshold) string {
	s, ok := c[t]
	if !ok {
		if len(c) >= 256 {
			clear(c)
		}
		s = t.traceState()
		c[t] = s
	}
	return s
}
