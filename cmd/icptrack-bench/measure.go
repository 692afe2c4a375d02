package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// runTimeout ends a run that hangs, so that an unattended make bench ends.
const runTimeout = 15 * time.Minute

// A sample is one run of one workload in one mode.
type sample struct {
	Workload      string  `json:"workload"`
	Mode          string  `json:"mode"`
	Rep           int     `json:"rep"` // -1: the run with BPF statistics on
	Ops           int     `json:"ops"`
	ElapsedNs     int64   `json:"elapsed_ns"`
	OpsPerSec     float64 `json:"ops_per_sec"`
	P50Ns         int64   `json:"p50_ns,omitempty"`
	P99Ns         int64   `json:"p99_ns,omitempty"`
	WorkloadCPUNs int64   `json:"workload_cpu_ns"`
	// The tracer is icptrack or strace: its own CPU time, its peak RSS
	// (VmHWM), and the ru_maxrss of its rusage, which is at least the
	// harness's (see peakWatch).
	TracerCPUNs           int64       `json:"tracer_cpu_ns,omitempty"`
	TracerMaxRSSKiB       int64       `json:"tracer_peak_rss_kib,omitempty"`
	TracerRusageMaxRSSKiB int64       `json:"tracer_rusage_maxrss_kib,omitempty"`
	Dropped               int64       `json:"events_dropped"`
	OTLP                  *otlpCounts `json:"otlp,omitempty"`
	View                  *viewCounts `json:"view,omitempty"`
	Seen                  []seenRow   `json:"seen,omitempty"`
	BPF                   []progStat  `json:"bpf,omitempty"`
}

type otlpCounts struct {
	SpansSent    int64 `json:"spans_sent"`
	SpansDropped int64 `json:"spans_dropped"`
	// SpansSampledOut are operations icptrack's span cap or sample
	// ratio left out of the traces: counted, not lost.
	SpansSampledOut int64 `json:"spans_sampled_out"`
	FailedExports   int64 `json:"failed_exports"`
	Retries         int64 `json:"retries"`
	SpansReceived   int64 `json:"spans_received"`
	PointsReceived  int64 `json:"metric_points_received"`
}

// viewCounts are what the api mode's live view received: graph events
// (a snapshot, then diffs) and channel pages.
type viewCounts struct {
	GraphEvents  int64 `json:"graph_events"`
	ChannelPages int64 `json:"channel_pages"`
}

// naError: the mode cannot run with this icptrack; not a failure.
type naError struct{ reason string }

func (e naError) Error() string { return e.reason }

var (
	droppedRe = regexp.MustCompile(`icptrack: (?:WARNING: )?(\d+) events dropped`)
	// sinkRe is an added output's line: the store, syslog, a database.
	sinkRe = regexp.MustCompile(`(?m)^icptrack: (?:WARNING: )?[a-z]+: \d+ operations written, (\d+) dropped$`)
	otlpRe = regexp.MustCompile(`icptrack: OTLP .*?: (\d+) spans sent, (\d+) dropped, (\d+) failed exports, (\d+) retries(?:; (\d+) operations sampled out)?`)
)

// opsFor is the number of operations of w in m. --scale leaves the
// sustained workload alone: --sustain sets its length.
func (b *bench) opsFor(w workload, m mode) int {
	ops := float64(w.ops)
	if !w.sustained {
		ops *= b.scale
	}
	if m.opsScale > 0 {
		ops *= m.opsScale
	}
	return max(int(ops), 1)
}

// secondsFor is how long a timed workload (w.seconds) runs: --scale
// shrinks it, down to a second.
func (b *bench) secondsFor(w workload) int {
	return max(int(math.Ceil(float64(w.seconds)*b.scale)), 1)
}

// lengthFor is the driver's first argument: seconds for a timed
// workload, else operations.
func (b *bench) lengthFor(w workload, m mode) int {
	if w.seconds > 0 {
		return b.secondsFor(w)
	}
	return b.opsFor(w, m)
}

// measure runs w once in m. withStats turns the kernel's BPF statistics
// on and reads those of icptrack's programs when the workload is done.
func (b *bench) measure(w workload, m mode, rep int, withStats bool) (sample, error) {
	cmd := b.command(w, m)
	defer os.Remove(b.eventsPath())
	if withStats {
		stats, err := enableBPFStats()
		if err != nil {
			return sample{}, err
		}
		defer stats.Close()
	}
	if m.otlp {
		b.sink.take()
	}
	if m.store {
		if err := b.freshStore(); err != nil {
			return sample{}, b.failure(m, err)
		}
	}
	var bg *background
	if m.kind == besideIcptrack || m.kind == tracingComms {
		var err error
		if bg, err = startBeside(b.icptrack, m); err != nil {
			return sample{}, b.failure(m, err)
		}
		defer bg.stop()
	}
	var view *liveView
	if m.view {
		view = startView(b.apiAddr)
		defer view.stop()
	}
	tracer := func() int {
		switch m.kind {
		case underIcptrack, underStrace:
			return cmd.Process.Pid
		case besideIcptrack, tracingComms:
			return bg.cmd.Process.Pid
		}
		return 0
	}
	r, err := execute(cmd, tracer, withStats)
	if err != nil {
		return sample{}, b.failure(m, err)
	}
	s := sample{
		Workload: w.name, Mode: m.key, Rep: rep,
		Ops: r.result.Ops, ElapsedNs: r.result.ElapsedNs,
		OpsPerSec: float64(r.result.Ops) / (float64(r.result.ElapsedNs) / 1e9),
		P50Ns:     r.result.P50Ns, P99Ns: r.result.P99Ns,
		WorkloadCPUNs: r.result.CPUNs,
		BPF:           r.bpf,
	}
	s.TracerMaxRSSKiB = r.peakKiB
	switch m.kind {
	case underIcptrack, underStrace:
		// The tracer's rusage counts the workload, its waited-for child,
		// too: the workload's CPU time is taken away.
		s.TracerCPUNs = max(cpuTime(r.rusage)-r.result.CPUNs, 0)
		s.TracerRusageMaxRSSKiB = r.rusage.Maxrss
	case besideIcptrack, tracingComms:
		ru, stderr, err := bg.stop()
		if err != nil {
			return sample{}, b.failure(m, err)
		}
		s.TracerCPUNs, s.TracerRusageMaxRSSKiB = cpuTime(ru), ru.Maxrss
		r.stderr = stderr
	}
	s.readSummary(r.stderr)
	if view != nil {
		events, panels, err := view.stop()
		if err != nil {
			return sample{}, err
		}
		s.View = &viewCounts{GraphEvents: events, ChannelPages: panels}
	}
	if m.store {
		if err := b.verifyStore(); err != nil {
			return sample{}, b.failure(m, err)
		}
	}
	if m.otlp {
		if s.OTLP == nil {
			s.OTLP = &otlpCounts{}
		}
		s.OTLP.SpansReceived, s.OTLP.PointsReceived = b.sink.take()
	}
	return s, nil
}

// command runs w's driver in m; beside icptrack, the driver runs alone.
func (b *bench) command(w workload, m mode) *exec.Cmd {
	argv := append([]string{b.self, strconv.Itoa(b.lengthFor(w, m))}, w.args...)
	var cmd *exec.Cmd
	switch m.kind {
	case underIcptrack:
		cmd = exec.Command(b.icptrack, append(append(append([]string{"run"}, m.args...), "--"), argv...)...)
	case underStrace:
		cmd = exec.Command(b.strace, append([]string{"-f", "-qq", "-o", "/dev/null", "--"}, argv...)...)
	default:
		cmd = exec.Command(argv[0], argv[1:]...)
	}
	cmd.Env = append(append(os.Environ(), roleEnv+"="+w.role), b.env...)
	return cmd
}

// readSummary takes the events dropped, the OTLP exporter's counts and
// the operations seen between processes from icptrack's summary on
// standard error.
func (s *sample) readSummary(stderr string) {
	s.Seen = readSeen(stderr)
	if g := droppedRe.FindStringSubmatch(stderr); g != nil {
		s.Dropped, _ = strconv.ParseInt(g[1], 10, 64)
	}
	// What an output lost is lost too.
	for _, g := range sinkRe.FindAllStringSubmatch(stderr, -1) {
		n, _ := strconv.ParseInt(g[1], 10, 64)
		s.Dropped += n
	}
	if g := otlpRe.FindStringSubmatch(stderr); g != nil {
		n := make([]int64, 5)
		for i := range n {
			n[i], _ = strconv.ParseInt(g[i+1], 10, 64) // an icptrack without sampling: 0 sampled out
		}
		s.OTLP = &otlpCounts{SpansSent: n[0], SpansDropped: n[1], FailedExports: n[2], Retries: n[3], SpansSampledOut: n[4]}
	}
}

// A seenRow is the summary's operations of one mechanism from one process
// name to another, the processes' ids left out and their rows added up.
type seenRow struct {
	Mechanism string `json:"mechanism"`
	From      string `json:"from"`
	To        string `json:"to"`
	Ops       int64  `json:"ops"`
}

// summaryRowRe is a row of the summary's table: MECHANISM FROM TO OPS SENT
// RECEIVED P50 P99 ERRORS.
var summaryRowRe = regexp.MustCompile(`(?m)^([a-z_]+) +(\S+) +(\S+) +(\d+) +\S+ +\S+ +\S+ +\S+ +\d+ *$`)

// readSeen adds up the summary's rows by mechanism and process names.
func readSeen(stderr string) []seenRow {
	var rows []seenRow
	index := map[[3]string]int{}
	name := func(p string) string { n, _, _ := strings.Cut(p, "["); return n }
	for _, g := range summaryRowRe.FindAllStringSubmatch(stderr, -1) {
		k := [3]string{g[1], name(g[2]), name(g[3])}
		ops, _ := strconv.ParseInt(g[4], 10, 64)
		i, ok := index[k]
		if !ok {
			i = len(rows)
			index[k] = i
			rows = append(rows, seenRow{Mechanism: k[0], From: k[1], To: k[2]})
		}
		rows[i].Ops += ops
	}
	return rows
}

// failure turns a failed metrics-only run into "not available": the
// icptrack measured may not have --mode metrics yet.
func (b *bench) failure(m mode, err error) error {
	if m.metricsOnly {
		return naError{"icptrack --mode metrics failed: " + firstLine(err.Error())}
	}
	return err
}

// A run's outcome, with what was read from /proc while the tracer ran.
type run struct {
	result  result
	stderr  string
	rusage  *syscall.Rusage
	peakKiB int64      // the tracer's peak RSS
	bpf     []progStat // the tracer's programs, if statistics were on
}

// execute runs cmd, which prints the driver's result on standard output.
// tracer, called once cmd has started, gives the pid of the tracer (0:
// none), whose peak RSS is followed and, with withStats, whose programs'
// statistics are read when the driver's result arrives, before it ends.
func execute(cmd *exec.Cmd, tracer func() int, withStats bool) (run, error) {
	var r run
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	cmd.SysProcAttr = ownGroup()
	out, err := cmd.StdoutPipe()
	if err != nil {
		return r, err
	}
	if err := cmd.Start(); err != nil {
		return r, fmt.Errorf("starting %s: %w", cmd.Path, err)
	}
	track(cmd.Process.Pid)
	defer untrack(cmd.Process.Pid)
	timer := time.AfterFunc(runTimeout, func() { _ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) })
	defer timer.Stop()
	pid := tracer()
	var peak *peakWatch
	if pid > 0 {
		peak = watchPeak(pid)
	}

	var line []byte
	var statsErr error
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		if line == nil {
			line = bytes.Clone(sc.Bytes())
			if withStats && pid > 0 {
				r.bpf, statsErr = progStats(pid)
			}
		}
	}
	_, _ = io.Copy(io.Discard, out)
	if peak != nil {
		r.peakKiB = peak.end()
	}
	waitErr := cmd.Wait()
	r.stderr = stderr.String()
	if waitErr != nil {
		return r, fmt.Errorf("%s: %v: %s", strings.Join(cmd.Args[:min(len(cmd.Args), 3)], " "), waitErr, lastLines(r.stderr, 6))
	}
	if statsErr != nil {
		return r, statsErr
	}
	if err := json.Unmarshal(line, &r.result); err != nil || r.result.ElapsedNs <= 0 {
		return r, fmt.Errorf("the workload printed %q, not its result: %s", line, lastLines(r.stderr, 6))
	}
	r.rusage = cmd.ProcessState.SysUsage().(*syscall.Rusage)
	return r, nil
}

// A background icptrack beside the workload: icptrack run tracing a
// sleep (the tax), or icptrack trace selecting the workload's processes by
// name.
type background struct {
	cmd    *exec.Cmd
	stderr lockedBuffer
	// What stop found, kept for later calls.
	stopped bool
	rusage  *syscall.Rusage
	err     error
}

// tracingLine is what icptrack trace --log-level info logs once its
// programs are attached.
const tracingLine = "icptrack is tracing"

func startBeside(icptrack string, m mode) (*background, error) {
	bg := &background{}
	// Its programs are attached once the sleep runs, or once trace says so.
	argv := append(append([]string{"run"}, m.args...), "--", "sleep", "3600")
	ready, what := func() bool { return hasChild(bg.cmd.Process.Pid) }, "start its command"
	if m.kind == tracingComms {
		argv = append([]string{"trace"}, m.args...)
		ready, what = func() bool { return strings.Contains(bg.stderr.String(), tracingLine) }, "say "+strconv.Quote(tracingLine)
	}
	bg.cmd = exec.Command(icptrack, argv...)
	bg.cmd.Stderr = &bg.stderr
	bg.cmd.SysProcAttr = ownGroup()
	if err := bg.cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting %s: %w", icptrack, err)
	}
	track(bg.cmd.Process.Pid)
	for deadline := time.Now().Add(10 * time.Second); !ready(); {
		if exited(bg.cmd.Process.Pid) || time.Now().After(deadline) {
			bg.stop()
			return nil, fmt.Errorf("icptrack did not %s: %s", what, lastLines(bg.stderr.String(), 6))
		}
		time.Sleep(10 * time.Millisecond)
	}
	return bg, nil
}

// lockedBuffer is written by exec's copying goroutine and read while the
// command runs.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// stop ends the icptrack (it passes SIGTERM to the sleep, then prints its
// summary) and returns its rusage and standard error. Later calls return
// the same.
func (bg *background) stop() (*syscall.Rusage, string, error) {
	if !bg.stopped {
		bg.stopped = true
		_ = bg.cmd.Process.Signal(syscall.SIGTERM)
		timer := time.AfterFunc(30*time.Second, func() { _ = syscall.Kill(-bg.cmd.Process.Pid, syscall.SIGKILL) })
		_ = bg.cmd.Wait() // the sleep's SIGTERM is its exit status
		timer.Stop()
		untrack(bg.cmd.Process.Pid)
		if ps := bg.cmd.ProcessState; ps != nil && ps.Exited() {
			bg.rusage = ps.SysUsage().(*syscall.Rusage)
		} else {
			bg.err = fmt.Errorf("icptrack beside the workload did not end on SIGTERM: %s", lastLines(bg.stderr.String(), 6))
		}
	}
	return bg.rusage, bg.stderr.String(), bg.err
}

func hasChild(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%d/children", pid, pid))
	if err == nil && len(bytes.TrimSpace(b)) > 0 {
		return true
	}
	tasks, _ := os.ReadDir(fmt.Sprintf("/proc/%d/task", pid))
	for _, t := range tasks {
		if b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/task/%s/children", pid, t.Name())); len(bytes.TrimSpace(b)) > 0 {
			return true
		}
	}
	return false
}

// exited tells whether process pid, a child not yet waited for, has
// exited (is a zombie).
func exited(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return true
	}
	// pid (comm) S ...: the state follows the last parenthesis.
	i := bytes.LastIndexByte(b, ')')
	return i < 0 || i+2 >= len(b) || b[i+2] == 'Z'
}

func cpuTime(ru *syscall.Rusage) int64 { return ru.Utime.Nano() + ru.Stime.Nano() }

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return strings.Join(lines[max(len(lines)-n, 0):], "\n")
}

func firstLine(s string) string {
	l, _, _ := strings.Cut(s, "\n")
	return l
}
