package analyze

import (
	"cmp"
	"slices"
)

func compareProcess(a, b Process) int {
	return cmp.Or(cmp.Compare(a.PID, b.PID), cmp.Compare(a.Comm, b.Comm))
}

func sortedProcesses(set map[Process]bool) []Process {
	ps := make([]Process, 0, len(set))
	for p := range set {
		if p.Known() {
			ps = append(ps, p)
		}
	}
	slices.SortFunc(ps, compareProcess)
	return ps
}

// sortReport orders every list by operations, most first, then by name,
// so that the same capture always gives the same report.
func sortReport(r *Report) {
	slices.SortFunc(r.Channels, func(x, y ChannelStats) int {
		return cmp.Or(cmp.Compare(y.Operations, x.Operations), cmp.Compare(x.Channel, y.Channel))
	})
	slices.SortFunc(r.Pairs, func(x, y PairStats) int {
		return cmp.Or(cmp.Compare(y.Operations, x.Operations), compareProcess(x.From, y.From), compareProcess(x.To, y.To))
	})
	slices.SortFunc(r.Processes, func(x, y ProcessStats) int {
		return cmp.Or(cmp.Compare(y.Operations, x.Operations), compareProcess(x.Process, y.Process))
	})
	slices.SortFunc(r.Map, func(x, y Link) int {
		return cmp.Or(cmp.Compare(y.Operations, x.Operations), cmp.Compare(x.Mechanism, y.Mechanism),
			cmp.Compare(x.Endpoint, y.Endpoint), slices.CompareFunc(x.Processes, y.Processes, compareProcess))
	})
}

// rank fills the Top lists.
func (b *builder) rank() {
	r, n := b.r, b.a.opts.Top
	procs := slices.Clone(r.Processes)
	slices.SortStableFunc(procs, func(x, y ProcessStats) int {
		return cmp.Compare(y.SentBytes+y.ReceivedBytes, x.SentBytes+x.ReceivedBytes)
	})
	for _, p := range procs {
		if len(r.Top.TalkersByBytes) < n && p.SentBytes+p.ReceivedBytes > 0 {
			r.Top.TalkersByBytes = append(r.Top.TalkersByBytes, p.Process)
		}
	}
	for _, p := range r.Processes[:min(n, len(r.Processes))] {
		r.Top.TalkersByOperations = append(r.Top.TalkersByOperations, p.Process)
	}
	for _, c := range r.Channels[:min(n, len(r.Channels))] {
		r.Top.BusiestByOperations = append(r.Top.BusiestByOperations, c.Channel)
	}
	chans := slices.Clone(r.Channels)
	slices.SortStableFunc(chans, func(x, y ChannelStats) int { return cmp.Compare(y.MovedBytes(), x.MovedBytes()) })
	for _, c := range chans {
		if len(r.Top.BusiestByBytes) < n && c.MovedBytes() > 0 {
			r.Top.BusiestByBytes = append(r.Top.BusiestByBytes, c.Channel)
		}
	}
	slices.SortStableFunc(chans, func(x, y ChannelStats) int {
		return cmp.Or(cmp.Compare(y.Latency.P99NS, x.Latency.P99NS), cmp.Compare(y.Latency.P50NS, x.Latency.P50NS))
	})
	for _, c := range chans {
		if len(r.Top.Slowest) < n && c.Latency.Count > 0 {
			r.Top.Slowest = append(r.Top.Slowest, c.Channel)
		}
	}
	// Empty lists are [] in JSON, not null.
	for _, l := range []*[]Process{&r.Top.TalkersByBytes, &r.Top.TalkersByOperations} {
		if *l == nil {
			*l = []Process{}
		}
	}
	for _, l := range []*[]string{&r.Top.BusiestByOperations, &r.Top.BusiestByBytes, &r.Top.Slowest} {
		if *l == nil {
			*l = []string{}
		}
	}
	if r.Map == nil {
		r.Map = []Link{}
	}
	if r.Channels == nil {
		r.Channels, r.Pairs, r.Processes = []ChannelStats{}, []PairStats{}, []ProcessStats{}
	}
}
