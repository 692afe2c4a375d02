package main

import (
	"encoding/json"
	"fmt"
	"image/png"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/icptrack/icptrack/analyze"
	"github.com/icptrack/icptrack/exporter"
)

// traceDemo runs the demo under icptrack (sh -c script, with the demo's
// directory first on PATH) and returns the event log's path.
func traceDemo(t *testing.T, script string) string {
	t.Helper()
	client := demoClient(t)
	events := filepath.Join(t.TempDir(), "demo.jsonl")
	cmd := exec.Command(binary, "run", "--events", events, "--", "sh", "-c", script)
	cmd.Env = append(os.Environ(), "PATH="+filepath.Dir(client)+":"+os.Getenv("PATH"))
	if r := runCmd(t, cmd); r.code != 0 {
		t.Fatalf("run %q: exit %d: %s", script, r.code, r.stderr)
	}
	return events
}

func analyzeJSON(t *testing.T, args ...string) analyze.Report {
	t.Helper()
	r := run(t, append([]string{"analyze", "--json"}, args...)...)
	if r.code != 0 {
		t.Fatalf("analyze --json: exit %d: %s", r.code, r.stderr)
	}
	var rep analyze.Report
	if err := json.Unmarshal([]byte(r.stdout), &rep); err != nil {
		t.Fatalf("analyze --json is not the report: %v\n%s", err, r.stdout)
	}
	return rep
}

// The demo's map is client ⇄ server over the unix socket, server → worker
// over a pipe and worker → server over the POSIX queue, with the bytes
// the demo's protocol moves, and every count is the capture's own.
func TestAnalyzeTheDemo(t *testing.T) {
	needsBPF(t)
	const requests = 30
	events := traceDemo(t, "demo-client --requests "+strconv.Itoa(requests)+" >/dev/null")
	rep := analyzeJSON(t, events)

	// The demo's protocol: request i is "order-i\n", each answer 13 bytes.
	var requestBytes int64
	for i := 1; i <= requests; i++ {
		requestBytes += int64(len(fmt.Sprintf("order-%d\n", i)))
	}
	const answerBytes = 13 * requests

	// Counted here from the capture: operations per channel, and per
	// sender and receiver (a channel's sends by one process and its
	// receives by the other).
	perChannel := map[string]int64{}
	perDirection := map[[3]string]int64{} // channel, op, comm
	pids := map[string]uint32{}
	var total int64
	for _, ev := range readEvents(t, events) {
		n := int64(1)
		if c, ok := ev["count"].(float64); ok {
			n = int64(c)
		}
		ch, _ := ev["channel"].(string)
		perChannel[ch] += n
		perDirection[[3]string{ch, ev["op"].(string), ev["comm"].(string)}] += n
		pids[ev["comm"].(string)] = uint32(ev["pid"].(float64))
		total += n
	}
	if rep.Operations != total {
		t.Errorf("report has %d operations, the capture %d", rep.Operations, total)
	}
	for _, c := range rep.Channels {
		if c.Operations != perChannel[c.Channel] {
			t.Errorf("channel %s: %d operations, the capture has %d", c.Channel, c.Operations, perChannel[c.Channel])
		}
		delete(perChannel, c.Channel)
	}
	if len(perChannel) != 0 {
		t.Errorf("channels missing from the report: %v", perChannel)
	}

	proc := func(comm string) analyze.Process { return analyze.Process{PID: pids[comm], Comm: comm} }
	client, server, worker := proc("demo-client"), proc("demo-server"), proc("demo-worker")
	for _, want := range []struct {
		from, to  analyze.Process
		mechanism string
		direction string
		bytes     int64
	}{
		{client, server, "unix_stream", analyze.BothWays, requestBytes + answerBytes},
		{server, worker, "pipe", analyze.OneWay, requestBytes},
		{worker, server, "posix_mq", analyze.OneWay, answerBytes},
	} {
		var link *analyze.Link
		for i, l := range rep.Map {
			if l.Mechanism == want.mechanism && len(l.Processes) == 2 && l.Processes[0] == want.from && l.Processes[1] == want.to {
				link = &rep.Map[i]
			}
		}
		if link == nil {
			t.Errorf("no %s %s %s in the map: %+v", want.from, want.mechanism, want.to, rep.Map)
			continue
		}
		if link.Direction != want.direction || link.Bytes != want.bytes || link.Channels != 1 {
			t.Errorf("%s %s %s: %+v, want %s and %d bytes on one channel", want.from, want.mechanism, want.to, link, want.direction, want.bytes)
		}
		// The pairs on it: the sender's sends and the receiver's receives.
		for _, dir := range [][2]analyze.Process{{want.from, want.to}, {want.to, want.from}} {
			var pair *analyze.PairStats
			for i, p := range rep.Pairs {
				if p.From == dir[0] && p.To == dir[1] && len(p.Channels) == 1 && rep.Channel(p.Channels[0]).Mechanism == want.mechanism {
					pair = &rep.Pairs[i]
				}
			}
			if pair == nil {
				if want.direction == analyze.BothWays || dir[0] == want.from {
					t.Errorf("no pair %s → %s over %s", dir[0], dir[1], want.mechanism)
				}
				continue
			}
			ch := pair.Channels[0]
			counted := perDirection[[3]string{ch, "send", dir[0].Comm}] + perDirection[[3]string{ch, "receive", dir[1].Comm}]
			if pair.Operations != counted {
				t.Errorf("pair %s → %s over %s: %d operations, the capture has %d", dir[0], dir[1], want.mechanism, pair.Operations, counted)
			}
			if pair.Latency.Count == 0 || pair.MessageSize.Count == 0 {
				t.Errorf("pair %s → %s: no latencies or sizes: %+v", dir[0], dir[1], pair.Stats)
			}
		}
	}

	// The text report says the same, and --plot writes charts.
	charts := filepath.Join(t.TempDir(), "charts")
	r := run(t, "analyze", "--plot", charts, events)
	line := regexp.MustCompile(`(?m)^  demo-client\[` + strconv.Itoa(int(client.PID)) + `\] ⇄ demo-server\[` +
		strconv.Itoa(int(server.PID)) + `\] +unix_stream +\S+server\.sock +\d+ ops`)
	if r.code != 0 || !line.MatchString(r.stdout) || !strings.Contains(r.stdout, "Busiest channels") {
		t.Errorf("text report (exit %d, %s):\n%s", r.code, r.stderr, r.stdout)
	}
	if !strings.Contains(r.stderr, "icptrack: wrote ") {
		t.Errorf("--plot did not say what it wrote: %q", r.stderr)
	}
	for _, name := range []string{"rates.png", "bytes.png", "latency-1-unix_stream.png"} {
		f, err := os.Open(filepath.Join(charts, name))
		if err != nil {
			t.Error(err)
			continue
		}
		img, err := png.Decode(f)
		f.Close()
		if err != nil || img.Bounds().Dx() < 500 || img.Bounds().Dy() < 250 {
			t.Errorf("%s: %v, %v", name, err, img)
		}
	}
}

// diff of a capture with itself is no change; against a capture with
// more requests and an extra pipe, it names what is new, and matches the
// demo's channels although their pids, inodes and paths differ.
func TestDiffTheDemo(t *testing.T) {
	needsBPF(t)
	a := traceDemo(t, "demo-client --requests 20 >/dev/null")
	b := traceDemo(t, "demo-client --requests 60 >/dev/null; echo hello | cat >/dev/null")

	same := run(t, "diff", "--exit-code", a, a)
	if same.code != 0 || !strings.Contains(same.stdout, "No change:") {
		t.Errorf("a capture against itself (exit %d, %s):\n%s", same.code, same.stderr, same.stdout)
	}
	r := run(t, "diff", "--json", "--exit-code", a, b)
	if r.code != 1 {
		t.Errorf("diff --exit-code of different captures: exit %d, want 1: %s", r.code, r.stderr)
	}
	var d analyze.Diff
	if err := json.Unmarshal([]byte(r.stdout), &d); err != nil {
		t.Fatalf("diff --json: %v\n%s", err, r.stdout)
	}
	newPipe := false
	for _, g := range d.NewChannels {
		if g.Mechanism == "pipe" && strings.Join(g.Comms, ",") == "cat,sh" {
			newPipe = true
		}
	}
	if !newPipe {
		t.Errorf("the pipe from sh to cat is not among the new channels: %+v", d.NewChannels)
	}
	newPair := false
	for _, p := range d.NewPairs {
		newPair = newPair || (p.From == "sh" && p.To == "cat")
	}
	if !newPair {
		t.Errorf("sh → cat is not among the new pairs: %+v", d.NewPairs)
	}
	// The demo's own channels are matched across the two runs.
	for _, g := range append(d.NewChannels, d.GoneChannels...) {
		if strings.HasPrefix(strings.Join(g.Comms, ","), "demo-") && g.Mechanism != "signal" && g.Mechanism != "pipe" ||
			g.Mechanism == "pipe" && strings.Join(g.Comms, ",") == "demo-server,demo-worker" {
			t.Errorf("the demo's %s %s was not matched between the runs", g.Mechanism, g.Endpoint)
		}
	}
	if d.MatchedChannels < 3 {
		t.Errorf("%d channels matched, want at least the demo's socket, pipe and queue", d.MatchedChannels)
	}
	// Without --exit-code a difference is not a failure.
	if r := run(t, "diff", a, b); r.code != 0 || !strings.Contains(r.stdout, "New channels (only in B)") {
		t.Errorf("diff (exit %d, %s):\n%s", r.code, r.stderr, r.stdout)
	}
}

// analyze and diff read captures in every format, from files and standard
// input, and --filter applies before the analysis.
func TestAnalyzeAndDiffReadAnyCapture(t *testing.T) {
	ops := someOps()
	jsonl := captureFile(t, exporter.JSONL, ops)
	for _, f := range []exporter.Format{exporter.CSV, exporter.OTLPProto} {
		rep := analyzeJSON(t, captureFile(t, f, ops))
		if rep.Operations != 5 || len(rep.Channels) != 4 { // the first record stands for 2 operations
			t.Errorf("%s: %d operations on %d channels, want 5 on 4", f, rep.Operations, len(rep.Channels))
		}
	}
	stdin, _ := os.Open(jsonl)
	defer stdin.Close()
	cmd := exec.Command(binary, "analyze", "--json", "--filter", "comm == srv")
	cmd.Stdin = stdin
	r := runCmd(t, cmd)
	var rep analyze.Report
	if err := json.Unmarshal([]byte(r.stdout), &rep); r.code != 0 || err != nil {
		t.Fatalf("analyze from stdin (exit %d, %s): %v", r.code, r.stderr, err)
	}
	if rep.Operations != 3 || len(rep.Processes) != 1 || rep.Processes[0].Comm != "srv" {
		t.Errorf("--filter 'comm == srv': %d operations by %v, want srv's 3", rep.Operations, rep.Processes)
	}

	other := captureFile(t, exporter.CSV, ops[:2])
	if r := run(t, "diff", "--exit-code", jsonl, captureFile(t, exporter.OTLPJSON, ops)); r.code != 0 || !strings.Contains(r.stdout, "No change") {
		t.Errorf("the same operations in two formats (exit %d, %s):\n%s", r.code, r.stderr, r.stdout)
	}
	if r := run(t, "diff", "--exit-code", jsonl, other); r.code != 1 || !strings.Contains(r.stdout, "Gone channels (only in A)") {
		t.Errorf("two channels fewer (exit %d, %s):\n%s", r.code, r.stderr, r.stdout)
	}
	if r := run(t, "diff", "--exit-code", "--filter", "comm == srv and mechanism == posix_mq", jsonl, other); r.code != 0 {
		t.Errorf("--filter keeps only what both have (exit %d, %s):\n%s", r.code, r.stderr, r.stdout)
	}
}

// Mistakes are one clear line (a filter's, with a caret under it) and
// the right exit code.
func TestAnalyzeAndDiffMistakes(t *testing.T) {
	good := captureFile(t, exporter.JSONL, someOps())
	text := captureFile(t, exporter.Text, someOps())
	missing := filepath.Join(t.TempDir(), "none.jsonl")
	for _, c := range [][]string{{"analyze"}, {"diff", good}} {
		oneLineError(t, run(t, append(c, missing)...), exitFailure, missing, "no such file")
		oneLineError(t, run(t, append(c, text)...), exitFailure, text+":", "cannot be read back")
		r := run(t, append(c, "--filter", "bytes > lots", good)...)
		lines := strings.Split(strings.TrimRight(r.stderr, "\n"), "\n")
		if r.code != exitUsage || len(lines) != 3 || !strings.HasPrefix(lines[0], "icptrack: --filter: filter 1:") || !strings.HasSuffix(lines[2], "^") {
			t.Errorf("%s with a bad filter: exit %d, %q", c[0], r.code, r.stderr)
		}
		oneLineError(t, run(t, append(c, "--interval", "0s", good)...), exitUsage, "--interval", "above 0")
	}
	oneLineError(t, run(t, "analyze", "--top", "0", good), exitUsage, "--top")
	oneLineError(t, run(t, "diff", good), exitUsage, "two captures", "icptrack diff A B")
	oneLineError(t, run(t, "diff", "-", "-"), exitUsage, "standard input")
	oneLineError(t, run(t, "analyze", "--plot", "/proc/icptrack-charts", good), exitFailure, "--plot", "/proc/icptrack-charts")
}
