package store

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/icptrack/icptrack/exporter"
	"github.com/icptrack/icptrack/filter"
	"github.com/icptrack/icptrack/flow"
)

// benchOps is BenchOps: the operations of the store's benchmarks.
var benchOps = BenchOps

// cpuTime is the process's CPU time so far, user and system.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func benchWriterDir(b *testing.B, seal bool) (string, string) {
	dir := b.TempDir()
	keys := filepath.Join(b.TempDir(), "keyring")
	if _, err := NewKeyring(keys, nil); err != nil {
		b.Fatal(err)
	}
	if seal {
		if _, err := CreateSeal(dir, DefaultSealEvery, time.Now()); err != nil {
			b.Fatal(err)
		}
	}
	return dir, keys
}

// BenchmarkSink is the cost the issue sets a budget for: an operation
// through the pipeline's store sink into an encrypted, sealed store, its
// copy, queue, encoding, index, encryption, hashing and write, in
// icptrack's CPU (both goroutines: cpu-ns/op), and in time.
func BenchmarkSink(b *testing.B) {
	dir, keys := benchWriterDir(b, true)
	w, err := Open(dir, Options{KeyFile: keys})
	if err != nil {
		b.Fatal(err)
	}
	s := NewSink(w, SinkOptions{})
	gen := benchOps(1, 1<<30, time.Now())
	ops := make([]flow.Operation, 1<<14)
	for i := range ops {
		gen(i, &ops[i])
	}
	var bytes int64
	for i := range ops {
		bytes += int64(len(exporter.AppendJSON(nil, &ops[i])))
	}
	cpu0 := cpuTime()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		s.Add(&ops[i%len(ops)])
		if i%256 == 255 {
			// Never faster than the writer: every operation is written,
			// and its whole cost counted. Waiting costs no CPU.
			for s.Stats().Lagging > 8<<10 {
				time.Sleep(100 * time.Microsecond)
			}
		}
	}
	if err := s.Flush(); err != nil {
		b.Fatal(err)
	}
	b.StopTimer()
	b.ReportMetric(float64(cpuTime()-cpu0)/float64(b.N), "cpu-ns/op")
	if st := s.Stats(); st.Dropped > 0 {
		b.ReportMetric(float64(st.Dropped), "dropped")
	}
	s.Close()
}

// BenchmarkWriterAppend is the writer alone, on one goroutine.
func BenchmarkWriterAppend(b *testing.B) {
	for _, c := range []struct {
		name       string
		keys, seal bool
	}{{"clear", false, false}, {"encrypted", true, false}, {"encrypted+sealed", true, true}} {
		b.Run(c.name, func(b *testing.B) {
			dir, keys := benchWriterDir(b, c.seal)
			if !c.keys {
				keys = ""
			}
			w, err := Open(dir, Options{KeyFile: keys})
			if err != nil {
				b.Fatal(err)
			}
			gen := benchOps(2, 1<<30, time.Now())
			ops := make([]flow.Operation, 1<<14)
			for i := range ops {
				gen(i, &ops[i])
			}
			for i := 0; b.Loop(); i++ {
				if err := w.Append(&ops[i%len(ops)]); err != nil {
					b.Fatal(err)
				}
			}
			b.StopTimer()
			w.Close()
		})
	}
}

// BenchmarkEncode compares the store's record with the event log's JSON,
// the encoding it would otherwise have used: time and size per operation.
func BenchmarkEncode(b *testing.B) {
	gen := benchOps(3, 1<<30, time.Now())
	ops := make([]flow.Operation, 1<<12)
	for i := range ops {
		gen(i, &ops[i])
	}
	b.Run("record", func(b *testing.B) {
		var e encoder
		var buf []byte
		n := 0
		for i := 0; b.Loop(); i++ {
			if i%600 == 0 { // a block's worth: "same as before" starts again
				e.reset()
				buf = buf[:0]
			}
			before := len(buf)
			buf = e.appendOp(buf, &ops[i%len(ops)])
			n += len(buf) - before
		}
		b.ReportMetric(float64(n)/float64(b.N), "bytes/op")
	})
	b.Run("jsonl", func(b *testing.B) {
		var buf []byte
		n := 0
		for i := 0; b.Loop(); i++ {
			buf = exporter.AppendJSON(buf[:0], &ops[i%len(ops)])
			n += len(buf) + 1
		}
		b.ReportMetric(float64(n)/float64(b.N), "bytes/op")
	})
	b.Run("record-decode", func(b *testing.B) {
		var e encoder
		var body []byte
		for i := range 600 {
			body = e.appendOp(body, &ops[i])
		}
		var d decoder
		var op flow.Operation
		for i := 0; b.Loop(); i++ {
			if i%600 == 0 {
				d.reset(body)
			}
			_, rec, _ := d.next()
			if err := d.operation(rec, &op); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// benchStore is the store the benchmarks share (OpenBenchStore).
type benchStore struct {
	dir  string
	kr   *Keyring
	vk   *VerifyKey
	base time.Time
	n    int
}

func makeBenchStore(b *testing.B, n int) *benchStore {
	s, err := OpenBenchStore(n, b.Logf)
	if err != nil {
		b.Fatal(err)
	}
	return &benchStore{dir: s.Dir, kr: s.Keyring, vk: s.VerifyKey, base: s.Base, n: s.N}
}

// BenchmarkQuery10M: a query over a store of ten million operations
// (targets: a 1% time range under 1s, a pid filter over the whole store
// under 5s).
func BenchmarkQuery10M(b *testing.B) {
	s := makeBenchStore(b, 10_000_000)
	span := time.Duration(s.n) * 10 * time.Microsecond
	// A pid alive for about 1% of the run (benchOps), from the middle.
	var mid flow.Operation
	benchOps(4, s.n, s.base)(s.n/2, &mid)
	cases := []struct {
		name string
		q    Query
	}{
		{"time-range-1%", Query{From: s.base.Add(span / 2), To: s.base.Add(span/2 + span/100)}},
		{"pid", Query{Filter: mustParseBench(b, fmt.Sprintf("pid == %d", mid.PID))}},
		{"pid-and-error", Query{Filter: mustParseBench(b, fmt.Sprintf("pid == %d and bytes > 4000", mid.PID))}},
		{"no-index-help", Query{Filter: mustParseBench(b, "comm == redis-server and bytes > 4090")}},
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			r, err := OpenReader(s.dir, s.kr)
			if err != nil {
				b.Fatal(err)
			}
			var st QueryStats
			for b.Loop() {
				st, err = r.Query(context.Background(), c.q, func(*Record) error { return nil })
				if err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(st.Matched), "matched")
			b.ReportMetric(float64(st.BlocksSkipped+st.SegmentsSkipped), "skipped")
			b.ReportMetric(float64(st.Blocks), "blocks")
		})
	}
}

func mustParseBench(b *testing.B, expr string) *filter.Filter {
	f, err := filter.Parse(expr)
	if err != nil {
		b.Fatal(err)
	}
	return f
}

// BenchmarkVerify is verify's throughput over a store of a million
// operations, at each level.
func BenchmarkVerify(b *testing.B) {
	s := makeBenchStore(b, 1_000_000)
	var size int64
	segs, _ := listSegments(s.dir)
	for _, seg := range segs {
		info, _ := os.Stat(seg.Path)
		size += info.Size()
	}
	now := func() time.Time { return s.base.Add(time.Hour) }
	for _, c := range []struct {
		name string
		o    VerifyOptions
	}{
		{"chain", VerifyOptions{Now: now}},
		{"seals", VerifyOptions{VerifyKey: s.vk, Now: now}},
		{"keyring", VerifyOptions{Keyring: s.kr, Now: now}},
		{"all", VerifyOptions{VerifyKey: s.vk, Keyring: s.kr, Now: now}},
	} {
		b.Run(c.name, func(b *testing.B) {
			b.SetBytes(size)
			for b.Loop() {
				r, err := Verify(s.dir, c.o)
				if err != nil || !r.OK {
					b.Fatalf("verify: %v %s", err, statusDetails(r))
				}
			}
		})
	}
}
