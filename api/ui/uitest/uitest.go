// Package uitest drives the live view in a real browser, for tests: Debian's
// chromium-headless-shell under chromedp, served over HTTP on loopback. The
// ui package's tests use it against their fixture; an end-to-end test uses
// it against `icptrack run --api ADDR -- demo-client`, with the same checks.
//
// Only tests import it, so chromedp is not linked into icptrack.
package uitest

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// Chromium is where Debian's chromium-headless-shell puts the browser;
// chromedp does not look for it there by itself.
const Chromium = "/usr/bin/chromium-headless-shell"

const install = "apt-get install -y chromium-headless-shell fonts-liberation"

// Browser returns the browser's path. Without one the test is skipped, and
// under CI=true it fails: CI installs the browser, so its absence is a bug.
func Browser(t testing.TB) string {
	t.Helper()
	path := os.Getenv("ICPTRACK_CHROMIUM")
	if path == "" {
		path = Chromium
	}
	if p, err := exec.LookPath(path); err == nil {
		return p
	}
	if os.Getenv("CI") == "true" {
		t.Fatalf("no browser at %s: %s", path, install)
	}
	t.Skipf("no browser at %s (%s; or set ICPTRACK_CHROMIUM)", path, install)
	return ""
}

// Page is one tab of a fresh headless browser with the live view open.
type Page struct {
	t   testing.TB
	Ctx context.Context

	mu       sync.Mutex
	problems []string
	// Allowed are substrings of browser log errors that the test expects,
	// such as the 401 a login test provokes.
	Allowed []string
}

// Open starts a browser, opens url in it and collects every JavaScript
// exception, console.error and browser log error; the test fails at its
// end if any occurred that it did not allow.
func Open(t testing.TB, url string, allowed ...string) *Page {
	t.Helper()
	path := Browser(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(path),
		chromedp.NoSandbox, // root cannot use the sandbox
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.WindowSize(1400, 900),
	)
	alloc, cancelAlloc := chromedp.NewExecAllocator(ctx, opts...)
	t.Cleanup(cancelAlloc)
	tab, cancelTab := chromedp.NewContext(alloc)
	t.Cleanup(cancelTab)
	p := &Page{t: t, Ctx: tab, Allowed: allowed}

	if err := chromedp.Do(tab); err != nil {
		t.Fatalf("start %s: %v", path, err)
	}
	messages := chromedp.Console(tab)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for m, err := range messages {
			if err != nil {
				return
			}
			p.note(m)
		}
	}()
	t.Cleanup(func() {
		cancelTab()
		<-done
		p.mu.Lock()
		defer p.mu.Unlock()
		for _, s := range p.problems {
			t.Errorf("the page reported: %s", s)
		}
	})
	if err := chromedp.Do(tab, chromedp.Navigate(url)); err != nil {
		t.Fatalf("open %s: %v", url, err)
	}
	return p
}

func (p *Page) note(m chromedp.ConsoleMessage) {
	if m.Type != chromedp.ConsoleError && m.Type != chromedp.ConsoleException {
		return
	}
	text := m.String()
	if m.Exception != nil && m.Exception.Exception != nil && m.Exception.Exception.Description != "" {
		text += " " + m.Exception.Exception.Description
	}
	if m.URL != "" {
		text += fmt.Sprintf(" (%s:%d)", m.URL, m.Line+1)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	// A failed request is logged by the browser, not the page: allowed
	// when the test provoked it (a 401 before login, a 400 for a bad filter).
	if m.Source == "network" && slices.ContainsFunc(p.Allowed, func(a string) bool { return strings.Contains(m.Text, a) }) {
		return
	}
	p.problems = append(p.problems, text)
}

// Eval runs a JavaScript expression and decodes its value into T.
func Eval[T any](p *Page, expr string) T {
	p.t.Helper()
	v, err := chromedp.Run(p.Ctx, chromedp.Evaluate[T](expr))
	if err != nil {
		p.t.Fatalf("evaluate %s: %v", expr, err)
	}
	return v
}

// WaitFor polls a JavaScript expression until it is true, and fails with
// what and the page's tables when it is not within timeout.
func (p *Page) WaitFor(what, expr string, timeout time.Duration) {
	p.t.Helper()
	_, err := chromedp.Run(p.Ctx, chromedp.Poll[bool](expr, chromedp.WithPollingTimeout(timeout), chromedp.WithPollingInterval(100*time.Millisecond)))
	if err != nil {
		p.t.Fatalf("waiting %s for %s: %v\nstatus: %s\nprocesses: %v\nchannels: %v", timeout, what, err, p.Status(), p.Processes(), p.Channels())
	}
}

// Do runs chromedp actions, failing the test on error.
func (p *Page) Do(what string, actions ...chromedp.Action[chromedp.Void]) {
	p.t.Helper()
	if err := chromedp.Do(p.Ctx, actions...); err != nil {
		p.t.Fatalf("%s: %v", what, err)
	}
}

// Row is one row of the page's processes or channels table, by column.
type Row map[string]string

const readTable = `(() => {
	const t = document.getElementById(%q);
	const cols = [...t.tHead.rows[0].cells].map((c) => c.dataset.key);
	return [...t.tBodies[0].rows].filter((r) => r.dataset.id).map((r) => {
		const row = { id: r.dataset.id };
		[...r.cells].forEach((c, i) => (row[cols[i]] = c.textContent));
		return row;
	});
})()`

// Processes is the processes table as the page shows it.
func (p *Page) Processes() []Row { return Eval[[]Row](p, fmt.Sprintf(readTable, "processes")) }

// Channels is the channels table as the page shows it.
func (p *Page) Channels() []Row { return Eval[[]Row](p, fmt.Sprintf(readTable, "channels")) }

// Status is the page's status line.
func (p *Page) Status() string {
	return Eval[string](p, `document.getElementById("status").textContent`)
}

// MapNode is a process as the map draws it.
type MapNode struct {
	ID    string  `json:"id"`
	Label string  `json:"label"`
	X     float64 `json:"x"`
	Y     float64 `json:"y"`
}

// MapNodes is what the map's canvas draws, read from Cytoscape: the
// canvas itself is pixels.
func (p *Page) MapNodes() []MapNode {
	return Eval[[]MapNode](p, `window.icptrackLiveView.map.cy.nodes().filter((n) => !n.isParent()).map((n) => ({ id: n.id(), label: n.data("label"), x: n.position("x"), y: n.position("y") }))`)
}

// MapEdges is the ids of the edges the map draws.
func (p *Page) MapEdges() []string {
	return Eval[[]string](p, `window.icptrackLiveView.map.cy.edges().map((e) => e.id())`)
}

// ClickEdge clicks the map's canvas where the edge id is drawn, as a
// person would.
func (p *Page) ClickEdge(id string) {
	p.t.Helper()
	at := Eval[*struct{ X, Y float64 }](p, fmt.Sprintf(`(() => {
		const cy = window.icptrackLiveView.map.cy;
		const e = cy.getElementById(%q);
		if (e.empty()) return null;
		const m = e.renderedMidpoint();
		const r = cy.container().getBoundingClientRect();
		return { X: r.left + m.x, Y: r.top + m.y };
	})()`, id))
	if at == nil {
		p.t.Fatalf("the map draws no edge %s; it draws %v", id, p.MapEdges())
	}
	under := Eval[bool](p, fmt.Sprintf(`document.getElementById("map").contains(document.elementFromPoint(%f, %f))`, at.X, at.Y))
	if !under {
		p.t.Fatalf("edge %s is drawn at (%.0f, %.0f), where something covers the map", id, at.X, at.Y)
	}
	p.Do("click edge "+id, chromedp.MouseClickXY(at.X, at.Y))
}

// SetFilter types expr into the filter box and applies it.
func (p *Page) SetFilter(expr string) {
	p.t.Helper()
	p.Do("set the filter", chromedp.SetValue(chromedp.ID("filter"), expr), chromedp.Click(chromedp.CSS("#filter-form button[type=submit]")))
}

// Screenshot saves what the browser shows as a PNG at path.
func (p *Page) Screenshot(path string) {
	p.t.Helper()
	png, err := chromedp.Run(p.Ctx, chromedp.CaptureScreenshot())
	if err != nil {
		p.t.Fatalf("screenshot: %v", err)
	}
	if err := os.WriteFile(path, png, 0o644); err != nil {
		p.t.Fatal(err)
	}
}
