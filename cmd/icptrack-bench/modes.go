package main

import (
	"cmp"
	"slices"
)

// How a workload is run.
type modeKind int

const (
	untraced       modeKind = iota
	underIcptrack           // icptrack run [args] -- workload
	besideIcptrack          // icptrack run [args] -- sleep, the workload beside it
	underStrace             // strace -f -qq -o /dev/null -- workload
	// icptrack trace [args] --comm C, the workload beside it: for a
	// workload whose processes are not all its driver's descendants
	// (workload.comms).
	tracingComms
)

type mode struct {
	// key is short and stable (JSON, --modes, the plot's colours); name
	// is for the table.
	key  string
	name string
	kind modeKind
	// args are icptrack run's flags.
	args []string
	// otlp: export to the harness's OTLP sink, whose counts are reported.
	otlp bool
	// store: write an encrypted, sealed store (a fresh one each run),
	// verified at every level after the run.
	store bool
	// view: serve the API (--api) with one live view connected (view.go).
	view bool
	// metricsOnly: needs icptrack's --mode metrics, which may be missing.
	metricsOnly bool
	// opsScale shrinks the workload in this mode (0: not at all).
	opsScale float64
	// na, if set, says why the mode is not measured.
	na string
}

// Mode keys. The first mode of every workload is its baseline, "untraced".
const (
	keyUntraced = "untraced"
	keyFloor    = "floor"
	keyEvents   = "events"
	// keyPerCall is the event log with a record per call (--coalesce 0),
	// beside the default's coalescing, where it makes a difference.
	keyPerCall = "events-percall"
	keyOTLP    = "otlp"
	keyStore   = "store"
	keyAPI     = "api" // the event log, and --api with one live view
	keyMetrics = "metrics"
	keyStrace  = "strace"
	keySockets = "sockets" // file-write tax: sockets and signals only
	keyAll     = "all"     // file-write tax: all mechanisms
)

// modeLabels name the keys in the plot's legend.
var modeLabels = map[string]string{
	keyFloor:   "attach-only floor",
	keyEvents:  "icptrack, event log",
	keyPerCall: "icptrack, event log, a record per call",
	keyOTLP:    "icptrack, OTLP",
	keyStore:   "icptrack, encrypted sealed store",
	keyAPI:     "icptrack, event log, --api and a live view",
	keyMetrics: "icptrack, metrics only",
	keyStrace:  "strace -f",
	keySockets: "tax: sockets and signals only",
	keyAll:     "tax: all mechanisms",
}

// modesFor lists the modes of w, in the order they take turns.
func (b *bench) modesFor(w workload) []mode {
	if w.tax {
		return b.taxModes()
	}
	mech := []string{"--mechanisms", w.mechanisms}
	with := func(args ...string) []string { return append(append([]string{}, args...), mech...) }
	all := []mode{
		{key: keyUntraced, name: "untraced", kind: untraced},
		{key: keyFloor, name: "attach-only floor", kind: underIcptrack, args: with("--attach-only")},
		{key: keyEvents, name: "icptrack, event log", kind: underIcptrack, args: with("--events", b.eventsPath())},
		{key: keyPerCall, name: "icptrack, event log, --coalesce 0", kind: underIcptrack,
			args: with("--events", b.eventsPath(), "--coalesce", "0")},
		{key: keyOTLP, name: "icptrack, OTLP/gRPC", kind: underIcptrack, otlp: true,
			args: with("--otlp-endpoint", "http://"+b.sink.addr, "--otlp-protocol", "grpc")},
		b.metricsMode(keyMetrics, "icptrack, metrics only", underIcptrack, mech),
		{key: keyStore, name: "icptrack, encrypted sealed store", kind: underIcptrack, store: true,
			args: with("--store", b.storeDir(), "--store-key", b.keyringPath())},
		{key: keyAPI, name: "icptrack, event log, --api, a live view", kind: underIcptrack, view: true,
			args: with("--events", b.eventsPath(), "--api", b.apiAddr)},
		{key: keyStrace, name: "strace -f", kind: underStrace, opsScale: b.straceScale, na: b.straceNA},
	}
	if !w.apiView {
		all = slices.DeleteFunc(all, func(m mode) bool { return m.key == keyAPI })
	}
	if !w.coalesces {
		all = slices.DeleteFunc(all, func(m mode) bool { return m.key == keyPerCall })
	}
	if w.sustained {
		// A minute each: the event log (the target), the exporters and
		// the store (issue 14's target: all of it stored, none dropped).
		all = pick(all, keyUntraced, keyEvents, keyOTLP, keyMetrics, keyStore)
	} else {
		// The store is measured where its target is: the sustained run.
		all = slices.DeleteFunc(all, func(m mode) bool { return m.key == keyStore })
	}
	if w.comms != "" {
		for i := range all {
			m := &all[i]
			switch m.kind {
			case underIcptrack:
				// --log-level info: trace says when it is attached.
				m.kind = tracingComms
				m.args = append(m.args, "--comm", w.comms, "--log-level", "info")
			case underStrace:
				m.na = cmp.Or(m.na, w.straceNA)
			}
		}
	}
	return b.selected(all)
}

// taxModes run a file-write loop beside an icptrack that traces a sleep.
func (b *bench) taxModes() []mode {
	return b.selected([]mode{
		{key: keyUntraced, name: "no icptrack", kind: untraced},
		{key: keySockets, name: "icptrack: sockets and signals only (no syscall hooks)", kind: besideIcptrack,
			args: []string{"--mechanisms", "unix,inet,signal"}},
		{key: keyFloor, name: "attach-only floor, all mechanisms (syscall hooks)", kind: besideIcptrack,
			args: []string{"--attach-only"}},
		{key: keyAll, name: "icptrack: all mechanisms (pipes need syscall hooks)", kind: besideIcptrack},
		b.metricsMode(keyMetrics, "icptrack: metrics only, all mechanisms", besideIcptrack, nil),
	})
}

// metricsMode aggregates in icptrack and serves Prometheus; na when this
// icptrack has no --mode.
func (b *bench) metricsMode(key, name string, kind modeKind, mech []string) mode {
	args := append([]string{"--mode", "metrics", "--prometheus", "127.0.0.1:0"}, mech...)
	return mode{key: key, name: name, kind: kind, args: args, metricsOnly: true, na: b.metricsNA}
}

// statsMode is the mode of w's run with the kernel's BPF statistics on.
func statsMode(w workload, modes []mode) (mode, bool) {
	key := keyEvents
	if w.tax {
		key = keyAll
	}
	for _, m := range modes {
		if m.key == key && m.na == "" {
			return m, true
		}
	}
	return mode{}, false
}

func pick(modes []mode, keys ...string) []mode {
	var out []mode
	for _, m := range modes {
		if slices.Contains(keys, m.key) {
			out = append(out, m)
		}
	}
	return out
}

// selected keeps the modes --modes names; the baseline always stays.
func (b *bench) selected(modes []mode) []mode {
	if len(b.modes) == 0 {
		return modes
	}
	return pick(modes, append([]string{keyUntraced}, b.modes...)...)
}
