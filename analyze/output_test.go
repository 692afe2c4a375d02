package analyze

import (
	"bytes"
	"encoding/json"
	"image"
	"image/png"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"testing"
	"time"

	"github.com/icptrack/icptrack/flow"
)

// demoLike is a small client/server/worker capture with known numbers.
func demoLike() *Report {
	r := newRun(1, 1)
	client, server, worker := r.end("client", 1), r.end("server", 2), r.end("worker", 3)
	// The client speaks first.
	r.a.Add(with(op(client, flow.UnixStream, flow.Send, "unix:1", "/run/demo.sock", -time.Millisecond, 8), func(o *flow.Operation) { o.Peer = server.peer() }))
	r.talk(client, server, flow.UnixStream, "unix:1", "/run/demo.sock", 400, 8, 3*time.Microsecond)
	r.talk(server, client, flow.UnixStream, "unix:1", "/run/demo.sock", 400, 13, 2*time.Microsecond)
	r.talk(server, worker, flow.Pipe, "pipe:9", "pipe:[9]", 400, 8, 40*time.Microsecond)
	r.talk(worker, server, flow.POSIXMQ, "mq:1", "/demo", 400, 13, 9*time.Microsecond)
	r.a.Add(with(op(worker, flow.Pipe, flow.Receive, "pipe:9", "pipe:[9]", time.Second, 0), func(o *flow.Operation) { o.Error = "EINTR" }))
	return r.a.Report()
}

// The text report has the map, the ranked lists and the tables, in
// human units.
func TestTextReport(t *testing.T) {
	var b bytes.Buffer
	if err := demoLike().WriteText(&b); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	for _, want := range []*regexp.Regexp{
		regexp.MustCompile(`(?m)^icptrack analyze: 3\.20k operations \(3\.20k records\) by 3 processes on 3 channels over \d`),
		regexp.MustCompile(`(?m)^  client\[1001\] ⇄ server\[1002\] +unix_stream +/run/demo\.sock +1\.60k ops +8\.21 KiB`),
		regexp.MustCompile(`(?m)^  server\[1002\] → worker\[1003\] +pipe +pipe:\[9\] +801 ops +3\.12 KiB`),
		regexp.MustCompile(`(?m)^  worker\[1003\] → server\[1002\] +posix_mq +/demo +800 ops +5\.08 KiB`),
		regexp.MustCompile(`(?m)^  server\[1002\] +1\.60k +`),
		regexp.MustCompile(`(?m)^  pipe +pipe:\[9\] +server\[1002\] worker\[1003\] +801 +3\.12 KiB +3\.12 KiB +8 B/8 B/8 B +\S+µs/\S+µs +— +EINTR×1`),
		regexp.MustCompile(`(?m)^Slowest channels \(by p99 latency\)\n.*\n  pipe `),
		// 51 intervals of 100ms: two to a mark, to fit 50 marks.
		regexp.MustCompile(`(?m)^Operations over time \(a mark is 200ms, from`),
	} {
		if !want.MatchString(out) {
			t.Errorf("the report lacks %s:\n%s", want, out)
		}
	}
	if m := regexp.MustCompile(`(?m)^.* $`).FindString(out); m != "" {
		t.Errorf("a line ends in blanks: %q", m)
	}
}

// The JSON object has the documented keys, and empty lists are [], not
// null.
func TestJSONShape(t *testing.T) {
	for _, r := range []*Report{demoLike(), New(Options{}).Report()} {
		b, err := json.Marshal(r)
		if err != nil {
			t.Fatal(err)
		}
		var m map[string]any
		if err := json.Unmarshal(b, &m); err != nil {
			t.Fatal(err)
		}
		keys := func(m map[string]any) []string { return slices.Sorted(maps.Keys(m)) }
		want := []string{"channels", "duration_ns", "end", "format_version", "intervals", "map", "operations", "pairs", "processes", "records", "start", "top"}
		if got := keys(m); !slices.Equal(got, want) {
			t.Errorf("top-level keys %v, want %v", got, want)
		}
		for _, k := range []string{"channels", "pairs", "processes", "map"} {
			if _, ok := m[k].([]any); !ok {
				t.Errorf("%s is %v, want a list", k, m[k])
			}
		}
		if r.Operations == 0 {
			continue
		}
		ch := m["channels"].([]any)[0].(map[string]any)
		wantCh := []string{"blocked", "bytes_per_second", "channel", "endpoint", "errors", "key", "latency", "mechanism", "message_size",
			"operations", "operations_per_second", "peak_bytes_per_second", "peak_operations_per_second", "per_interval", "processes",
			"received_bytes", "receives", "records", "sends", "sent_bytes", "unpaired_operations"}
		if got := keys(ch); !slices.Equal(got, wantCh) {
			t.Errorf("channel keys %v, want %v", got, wantCh)
		}
		per := ch["per_interval"].(map[string]any)
		if n := len(per["operations"].([]any)); n != r.Intervals.Count {
			t.Errorf("%d intervals in a series, want %d", n, r.Intervals.Count)
		}
	}
}

// --plot writes PNG charts that decode, at 960 × 480, with something
// drawn on them.
func TestPlotsArePNGs(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "charts")
	files, err := demoLike().WritePlots(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, f := range files {
		names = append(names, filepath.Base(f))
	}
	want := []string{"rates.png", "bytes.png", "latency-1-unix_stream.png", "latency-2-pipe.png", "latency-3-posix_mq.png"}
	if !slices.Equal(names, want) {
		t.Fatalf("charts %v, want %v", names, want)
	}
	for _, f := range files {
		fh, err := os.Open(f)
		if err != nil {
			t.Fatal(err)
		}
		img, err := png.Decode(fh)
		fh.Close()
		if err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		if img.Bounds() != image.Rect(0, 0, 960, 480) {
			t.Errorf("%s is %v, want 960×480", f, img.Bounds())
		}
		colours := map[[4]uint32]int{}
		for y := 0; y < 480; y += 2 {
			for x := 0; x < 960; x += 2 {
				r, g, b, a := img.At(x, y).RGBA()
				colours[[4]uint32{r, g, b, a}]++
			}
		}
		// White background, black text and axes, and the data's colours.
		if len(colours) < 4 {
			t.Errorf("%s has %d colours: nothing drawn", f, len(colours))
		}
	}
	// An empty capture writes no charts, and no error.
	if files, err := New(Options{}).Report().WritePlots(dir); err != nil || len(files) != 0 {
		t.Errorf("empty capture: %v, %v", files, err)
	}
}
