package probes

import (
	"errors"
	"fmt"

	"github.com/cilium/ebpf"

	"github.com/icptrack/icptrack/flow"
)

// Aggregates reads metrics mode's counts and passes each to fn. Call it
// from the Handler, on the tracer's goroutine: it names processes from the
// process table.
func (t *Tracer) Aggregates(fn func(*flow.Aggregate)) error {
	if !t.cfg.MetricsOnly {
		return errors.New("aggregates exist only in metrics mode")
	}
	m := t.coll.Maps["agg_ops"]
	exited := make(map[uint32]bool, len(t.exited))
	for _, pid := range t.exited {
		exited[pid] = true
	}
	t.exited = t.exited[:0]
	var (
		k     ipcAggKey
		vs    []ipcAggValue
		gone  []ipcAggKey
		total uint64
		final uint64
		a     flow.Aggregate
	)
	it := m.Iterate()
	for it.Next(&k, &vs) {
		mech, ok1 := mechanismOf(ipcMechanism(k.Mechanism))
		op, ok2 := opTypeOf(ipcOpType(k.Op))
		if !ok1 || !ok2 {
			continue // not from this object: cannot happen
		}
		a = flow.Aggregate{PID: k.Pid, Mechanism: mech, Op: op, Final: exited[k.Pid]}
		if k.Err != 0 {
			a.Errno = errnoName(int64(k.Err))
		}
		for _, v := range vs {
			a.Count += v.Count
			a.Bytes += v.Bytes
			for i := range a.Hist {
				a.Hist[i] += v.Hist[i]
			}
		}
		if t.dec.procs != nil {
			a.Process, a.Comm = t.dec.procs.named(k.Pid)
		}
		total += a.Count
		if a.Final {
			gone = append(gone, k)
			final += a.Count
		}
		fn(&a)
	}
	if err := it.Err(); err != nil {
		return fmt.Errorf("read the kernel's counts: %w", err)
	}
	for _, k := range gone {
		if err := m.Delete(&k); err != nil && !errors.Is(err, ebpf.ErrKeyNotExist) {
			return fmt.Errorf("forget the counts of process %d: %w", k.Pid, err)
		}
	}
	// Captured, for Stats: what is counted now, and what was counted for
	// the processes already forgotten.
	t.captured.Store(t.forgotten + total)
	t.forgotten += final
	return nil
}
