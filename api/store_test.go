package api

import (
	"net/url"
	"testing"
	"time"

	"github.com/icptrack/icptrack/flow"
	"github.com/icptrack/icptrack/store"
)

// writeStore writes ops into a new store in a temporary directory,
// through the pipeline's store sink, in small segments so that a query
// crosses many.
func writeStore(t *testing.T, ops []*flow.Operation) string {
	t.Helper()
	dir := t.TempDir()
	w, err := store.Open(dir, store.Options{SegmentSize: 64 << 10, BlockSize: 2 << 10})
	if err != nil {
		t.Fatal(err)
	}
	sink := store.NewSink(w, store.SinkOptions{})
	for i, op := range ops {
		sink.Add(op)
		// The sink drops what its queue cannot hold, as it should in a
		// pipeline; here it must hold everything.
		for i%256 == 255 && sink.Stats().Lagging > 4096 {
			time.Sleep(time.Millisecond)
		}
	}
	if err := sink.Flush(); err != nil {
		t.Fatal(err)
	}
	if err := sink.Close(); err != nil {
		t.Fatal(err)
	}
	if st := sink.Stats(); st.Dropped != 0 {
		t.Fatalf("the store sink dropped %d operations", st.Dropped)
	}
	return dir
}

func TestOperationsFromAStorePageThroughWhatTheFilterMatches(t *testing.T) {
	ops := testOps(20000)
	dir := writeStore(t, ops)
	r := openStore(t, dir)
	s := newTestServer(t, Options{Store: r, StoreDir: dir})
	q := url.Values{"filter": {"pid == 104 and bytes > 50"}, "limit": {"333"}}
	sameLines(t, "filtered pages", pages(t, s, q, nil, "read"), want(ops, q.Get("filter"), time.Time{}, time.Time{}, false))

	from, to := testBase.Add(3*time.Second), testBase.Add(7*time.Second)
	q = url.Values{"from": {from.Format(time.RFC3339)}, "to": {to.Format(time.RFC3339)}, "filter": {"mechanism == pipe"}}
	sameLines(t, "a time range", pages(t, s, q, nil, "read:payload"), want(ops, "mechanism == pipe", from, to, true))

	p := getPage(t, s.Handler(), url.Values{"limit": {"1"}}, "read")
	if p.Window.Source != "store" || p.NextCursor == "" {
		t.Errorf("a page of one from the store: %+v, want source store and a next cursor", p)
	}
	// A cursor of the window is no good for the store.
	code, body := get(t, s.Handler(), "/api/v1/operations?cursor="+cursor{memory: true, seq: 5}.String(), "read")
	if code != 400 {
		t.Errorf("a window's cursor on a store: %d %s, want 400", code, body)
	}

	// A reload moves the store: a cursor of the old one is refused, not
	// read as a position in the new one, and the new one's cursors work.
	other := writeStore(t, testOps(2000))
	s.SetStore(openStore(t, other), other)
	code, body = get(t, s.Handler(), "/api/v1/operations?limit=1&cursor="+url.QueryEscape(p.NextCursor), "read")
	if code != 400 {
		t.Errorf("the old store's cursor on the new store: %d %s, want 400", code, body)
	}
	next := getPage(t, s.Handler(), url.Values{"limit": {"1"}}, "read")
	if code, body := get(t, s.Handler(), "/api/v1/operations?limit=1&cursor="+url.QueryEscape(next.NextCursor), "read"); code != 200 {
		t.Errorf("the new store's own cursor: %d %s", code, body)
	}
}

func openStore(t *testing.T, dir string) *store.Reader {
	t.Helper()
	r, err := store.OpenReader(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	return r
}
