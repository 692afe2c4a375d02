package store

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/icptrack/icptrack/exporter"
	"github.com/icptrack/icptrack/filter"
	"github.com/icptrack/icptrack/flow"
)

// queryStore writes n random operations, a millisecond apart, into an
// encrypted store of many segments.
func queryStore(t *testing.T, n int) (string, *Keyring, []*flow.Operation) {
	t.Helper()
	keys := newKeyring(t)
	dir := t.TempDir()
	clock := newClock(testBase())
	w, err := Open(dir, Options{KeyFile: keys, Clock: clock.now, SegmentSize: 64 << 10, BlockSize: 2 << 10})
	if err != nil {
		t.Fatal(err)
	}
	ops := randomOps(11, n, testBase())
	for _, op := range ops {
		clock.add(time.Millisecond)
		if err := w.Append(op); err != nil {
			t.Fatal(err)
		}
		if err := w.Tick(clock.t); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return dir, loadKeyring(t, keys), ops
}

func query(t *testing.T, dir string, kr *Keyring, q Query) ([]*flow.Operation, QueryStats) {
	t.Helper()
	r, err := OpenReader(dir, kr)
	if err != nil {
		t.Fatal(err)
	}
	var got []*flow.Operation
	st, err := r.Query(context.Background(), q, func(rec *Record) error {
		if rec.Op != nil {
			got = append(got, rec.Op)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return got, st
}

func sameOps(t *testing.T, what string, got, want []*flow.Operation) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d operations, want %d", what, len(got), len(want))
	}
	for i := range got {
		if a, b := exporter.AppendJSON(nil, got[i]), exporter.AppendJSON(nil, want[i]); !bytes.Equal(a, b) {
			t.Fatalf("%s: operation %d is\n%s\nwant\n%s", what, i, a, b)
		}
	}
}

func TestQueryFindsWhatABruteForceFilterFinds(t *testing.T) {
	dir, kr, ops := queryStore(t, 20000)
	all, st := query(t, dir, kr, Query{})
	sameOps(t, "everything", all, ops)
	if st.BlocksSkipped != 0 {
		t.Errorf("a query of everything skipped %d blocks", st.BlocksSkipped)
	}
	total := st.Blocks
	from, to := testBase().Add(7*time.Second), testBase().Add(7200*time.Millisecond)
	cases := []struct {
		name     string
		q        Query
		skipMost bool // the index should rule out most blocks
	}{
		{"a 1% time range", Query{From: from, To: to}, true},
		{"from a time on", Query{From: testBase().Add(19 * time.Second)}, true},
		{"a pid", Query{Filter: mustFilter(t, "pid == 1007")}, false},
		{"two pids and a time range", Query{Filter: mustFilter(t, "pid in (1003, 1021)"), From: from, To: to.Add(time.Second)}, true},
		{"a mechanism", Query{Filter: mustFilter(t, "mechanism == sysv_shm and bytes > 1000")}, false},
		{"a channel", Query{Filter: mustFilter(t, "channel == pipe:q")}, false},
		{"a filter with nothing to push", Query{Filter: mustFilter(t, `comm == "nginx" or error`)}, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var want []*flow.Operation
			for _, op := range ops {
				if !tc.q.From.IsZero() && op.Time.Before(tc.q.From) || !tc.q.To.IsZero() && !op.Time.Before(tc.q.To) {
					continue
				}
				if tc.q.Filter != nil && !tc.q.Filter.Match(op) {
					continue
				}
				want = append(want, op)
			}
			if len(want) == 0 {
				t.Fatal("the brute-force filter finds nothing: the case tests nothing")
			}
			got, st := query(t, dir, kr, tc.q)
			sameOps(t, tc.name, got, want)
			pushes := tc.q.Filter != nil && !tc.q.Filter.Pushdown().Empty() || !tc.q.From.IsZero()
			skipped := st.BlocksSkipped + total - st.Blocks // blocks of skipped segments were not even counted
			switch {
			case pushes && skipped == 0:
				t.Errorf("the index skipped no block of %d: %+v", total, st)
			case !pushes && skipped != 0:
				t.Errorf("a query with nothing to push skipped %d blocks", skipped)
			case tc.skipMost && skipped < total*9/10:
				t.Errorf("the index skipped %d blocks of %d, want most: %+v", skipped, total, st)
			}
			t.Logf("%d of %d operations; %d of %d blocks skipped (%d segments of %d)", len(got), len(ops), skipped, total, st.SegmentsSkipped, st.Segments)
		})
	}
}

func mustFilter(t *testing.T, expr string) *filter.Filter {
	t.Helper()
	f, err := filter.Parse(expr)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func TestQueryResumesAfterAPosition(t *testing.T) {
	dir, kr, ops := queryStore(t, 3000)
	r, err := OpenReader(dir, kr)
	if err != nil {
		t.Fatal(err)
	}
	var cursor Position
	n := 0
	_, err = r.Query(context.Background(), Query{}, func(rec *Record) error {
		if n++; n == 1234 {
			cursor = rec.Pos
			return ErrStop
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	parsed, err := ParsePosition(cursor.String())
	if err != nil || parsed != cursor {
		t.Fatalf("position %v reads back as %v, %v", cursor, parsed, err)
	}
	var rest []*flow.Operation
	for rec, err := range r.Records(context.Background(), Query{After: &parsed}, nil) {
		if err != nil {
			t.Fatal(err)
		}
		rest = append(rest, rec.Op)
	}
	sameOps(t, "after the cursor", rest, ops[1234:])
}

func TestQueryGivesNotesWhenAsked(t *testing.T) {
	dir, kr, _ := queryStore(t, 100)
	r, _ := OpenReader(dir, kr)
	var kinds []string
	_, err := r.Query(context.Background(), Query{Notes: true}, func(rec *Record) error {
		if rec.Note != nil {
			kinds = append(kinds, rec.Note.Kind)
		}
		return nil
	})
	if err != nil || fmt.Sprint(kinds) != "[started]" {
		t.Fatalf("notes %v, %v", kinds, err)
	}
}

func TestQueryOfAnEncryptedStoreWithoutItsKeyringSaysSo(t *testing.T) {
	dir, _, _ := queryStore(t, 100)
	r, _ := OpenReader(dir, nil)
	_, err := r.Query(context.Background(), Query{}, func(*Record) error { return nil })
	var ke *KeyError
	if !errors.As(err, &ke) {
		t.Fatalf("query without the keyring: %v", err)
	}
}
