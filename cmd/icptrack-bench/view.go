package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
	"time"
)

// The api mode runs icptrack with --api and one live view connected: a
// client that does what the page does (api/ui/static/js): it follows
// /api/v1/graph/stream, and asks for the busiest channel's page once a
// second as the side panel does for a selected edge. The claim is
// that this costs the capture nothing measurable: compare the mode's
// ratio with the event log's.

// freeLoopbackAddr is an address on 127.0.0.1 nobody listens on now.
func freeLoopbackAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

// liveView is one connected view, and what it received.
type liveView struct {
	cancel context.CancelFunc
	done   chan struct{}
	// events are the graph stream's snapshot and diffs; panels the
	// channel pages answered 200.
	events, panels atomic.Int64
	err            atomic.Value // error: why it stopped early
}

// startView connects a view to the API at addr as soon as it answers,
// and keeps it connected until stop.
func startView(addr string) *liveView {
	ctx, cancel := context.WithCancel(context.Background())
	v := &liveView{cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(v.done)
		if err := v.run(ctx, "http://"+addr); err != nil && ctx.Err() == nil {
			v.err.Store(err)
		}
	}()
	return v
}

func (v *liveView) run(ctx context.Context, base string) error {
	for {
		resp, err := http.Get(base + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				break
			}
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(5 * time.Millisecond):
		}
	}
	req, _ := http.NewRequestWithContext(ctx, "GET", base+"/api/v1/graph/stream?window=1m", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		return fmt.Errorf("graph stream: %s", resp.Status)
	}
	var busiest atomic.Value // string: the edge the panel shows
	go v.panel(ctx, base, &busiest)
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 64<<20)
	for sc.Scan() {
		data, ok := strings.CutPrefix(sc.Text(), "data: ")
		if !ok {
			continue
		}
		v.events.Add(1)
		type edge struct {
			Channel     string  `json:"channel"`
			BytesPerSec float64 `json:"bytes_per_sec"`
		}
		var g struct { // a snapshot has edges; a diff, added and updated ones
			Edges        []edge `json:"edges"`
			AddedEdges   []edge `json:"added_edges"`
			UpdatedEdges []edge `json:"updated_edges"`
		}
		if json.Unmarshal([]byte(data), &g) == nil {
			for _, e := range append(append(g.Edges, g.AddedEdges...), g.UpdatedEdges...) {
				if e.BytesPerSec > 0 {
					busiest.Store(e.Channel)
				}
			}
		}
	}
	return nil // the stream ends when icptrack does
}

// panel asks for the selected channel's page once a second.
func (v *liveView) panel(ctx context.Context, base string, channel *atomic.Value) {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		id, _ := channel.Load().(string)
		if id == "" {
			continue
		}
		req, _ := http.NewRequestWithContext(ctx, "GET", base+"/api/v1/channels/"+url.PathEscape(id), nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			continue
		}
		if resp.StatusCode == 200 {
			v.panels.Add(1)
		}
		resp.Body.Close()
	}
}

// stop disconnects the view; it fails when the view saw nothing, for
// then the run did not measure what it claims to.
func (v *liveView) stop() (events, panels int64, err error) {
	v.cancel()
	<-v.done
	if e, ok := v.err.Load().(error); ok {
		return 0, 0, fmt.Errorf("the live view: %v", e)
	}
	if v.events.Load() == 0 {
		return 0, 0, fmt.Errorf("the live view received no graph from the API")
	}
	return v.events.Load(), v.panels.Load(), nil
}
