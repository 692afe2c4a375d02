package syslog

import (
	"fmt"
	"maps"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/icptrack/icptrack/semconv"
)

// Report keys: what a report message tells, counted in a tally until
// the writer sends it.
const (
	reportRateLimit = "ratelimit"
	dropPrefix      = "drop/"
	// ownReason is the drop reason of the operations the syslog sink
	// itself lost: its queue was full, or the server was unreachable.
	ownReason = "syslog"
)

// tally counts what reports will tell, per key, from when it is counted
// until the writer takes the count to send it. At most one report per key
// waits in the queue: the count grows while it waits.
type tally struct {
	mu     sync.Mutex
	n      map[string]uint64
	queued map[string]bool
}

func newTally() *tally {
	return &tally{n: map[string]uint64{}, queued: map[string]bool{}}
}

func (t *tally) add(key string, n uint64) {
	if n == 0 {
		return
	}
	t.mu.Lock()
	t.n[key] += n
	t.mu.Unlock()
}

// due lists the keys with a count and no report queued, and marks them
// queued; the caller queues them, or calls unqueue.
func (t *tally) due(want func(key string) bool) []string {
	t.mu.Lock()
	defer t.mu.Unlock()
	var keys []string
	for _, k := range slices.Sorted(maps.Keys(t.n)) {
		if t.n[k] > 0 && !t.queued[k] && want(k) {
			t.queued[k] = true
			keys = append(keys, k)
		}
	}
	return keys
}

func (t *tally) unqueue(key string) {
	t.mu.Lock()
	t.queued[key] = false
	t.mu.Unlock()
}

// take is the count to report for key, now zero.
func (t *tally) take(key string) uint64 {
	t.mu.Lock()
	defer t.mu.Unlock()
	n := t.n[key]
	delete(t.n, key)
	t.queued[key] = false
	return n
}

// reportMessage is the notice that n were lost or suppressed.
func reportMessage(key string, n uint64, rate float64) message {
	m := message{severity: sevNotice, time: time.Now(), procID: uint32(os.Getpid())}
	if key == reportRateLimit {
		m.msgID, m.sdID = "ratelimit", "ratelimit"
		m.params = []param{{"suppressed", fmt.Sprint(n)}, {"rate_limit", fmt.Sprint(rate)}}
		m.text = fmt.Sprintf("icptrack: the syslog rate limit (%g messages a second) held back %d operations", rate, n)
		return m
	}
	reason := strings.TrimPrefix(key, dropPrefix)
	m.msgID, m.sdID = "drop", "drop"
	m.params = []param{{"reason", reason}, {"count", fmt.Sprint(n)}}
	m.text = fmt.Sprintf("icptrack lost %d operations: %s", n, dropWhy(reason))
	return m
}

func dropWhy(reason string) string {
	switch reason {
	case semconv.IPCDropReasonRingBuffer:
		return "the kernel's ring buffer was full (raise --ring-buffer)"
	case semconv.IPCDropReasonExportQueue:
		return "the export queue was full, or a backend refused them"
	case ownReason:
		return "their syslog messages could not be sent (the queue was full, or the server unreachable)"
	}
	return reason
}

// checkpointMessage is a checkpoint (the store's chain hash and seal, say)
// sent off the host: its fields in a checkpoint@32473 element, sorted by
// name, their names made valid SD-NAMEs.
func checkpointMessage(text string, sd map[string]string) message {
	m := message{severity: sevNotice, time: time.Now(), procID: uint32(os.Getpid()),
		msgID: "checkpoint", sdID: "checkpoint", text: text}
	for _, k := range slices.Sorted(maps.Keys(sd)) {
		m.params = append(m.params, param{validName(k, 32), sd[k]})
	}
	return m
}
