package ui

// The live view in a real browser (Debian's chromium-headless-shell under
// chromedp; see uitest), against fixtureAPI, which makes the demo's graph.
//
// To run the same checks against the real server once it is on main, in
// cmd/icptrack (which has the binary and demoClient):
//
//	start `icptrack run --api 127.0.0.1:PORT -- demo-client --requests 100000`
//	(needsBPF first), wait for GET /readyz, then
//	p := uitest.Open(t, "http://127.0.0.1:PORT/")
//	p.WaitForLinks(uitest.Demo, 15*time.Second)
//	p.CheckMapMatchesTables()
//	p.ClickEdge(p.ChannelID(uitest.Link{"pipe", "demo-server", "demo-worker"}))
//	... and the filter, token and screenshot steps below, unchanged.
//
// Only the server differs: these tests' newFixture(t) becomes that
// command, and the token test gives the server an api.tokens entry.

import (
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/icptrack/icptrack/api/auth"
	"github.com/icptrack/icptrack/api/ui/uitest"
)

func newFixture(t *testing.T, f *fixtureAPI) string {
	t.Helper()
	uitest.Browser(t) // skip (or fail under CI) before starting anything
	if f.tick == 0 {
		f.tick = 250 * time.Millisecond
	}
	srv := httptest.NewServer(auth.Headers(f)) // 127.0.0.1: a page from file:// could not fetch; the API's headers, CSP included
	t.Cleanup(srv.Close)
	return srv.URL + "/"
}

var pipeLink = uitest.Link{Mechanism: "pipe", From: "demo-server", To: "demo-worker"}

func TestLiveViewShowsTheDemoAndAnEdgesOperations(t *testing.T) {
	p := uitest.Open(t, newFixture(t, &fixtureAPI{}))
	p.WaitForLinks(uitest.Demo, 10*time.Second)
	p.CheckMapMatchesTables()

	p.CheckDemoProcesses()
	legend := uitest.Eval[string](p, `document.getElementById("legend").textContent`)
	for _, m := range []string{"pipe", "unix_stream", "posix_mq", "udp", "Thickness: bytes/s"} {
		if !strings.Contains(legend, m) {
			t.Errorf("the legend does not explain %s: %q", m, legend)
		}
	}

	id := p.ChannelID(pipeLink)
	if id == "" {
		t.Fatalf("no pipe from demo-server to demo-worker in %v", p.Channels())
	}
	p.ClickEdge(id)
	p.WaitFor("the pipe's operations in the side panel", `document.querySelectorAll("#panel-body table.ops tbody tr").length > 0`, 5*time.Second)
	p.CheckPanelListsWritesAndReads(pipeLink)
	panel := uitest.Eval[string](p, `document.querySelector("#panel-body .summary").textContent`)
	for _, want := range []string{"latency p50", "latency p99", "errors", "demo-server", "demo-worker"} {
		if !strings.Contains(panel, want) {
			t.Errorf("the panel does not show %q: %q", want, panel)
		}
	}
}

func TestLiveViewFilterRemovesTheEdgesItExcludes(t *testing.T) {
	p := uitest.Open(t, newFixture(t, &fixtureAPI{}))
	p.WaitForLinks(uitest.Demo, 10*time.Second)
	p.SetFilter("mechanism != pipe")
	p.WaitFor("the pipe to leave the table", `![...document.querySelectorAll("#channels tbody tr[data-id]")].some((r) => r.cells[2].textContent === "pipe")`, 10*time.Second)
	for _, r := range p.Channels() {
		if r["mechanism"] == "pipe" {
			t.Errorf("filter mechanism != pipe left %v", r)
		}
	}
	if p.ChannelID(uitest.Link{Mechanism: "posix_mq", From: "demo-worker", To: "demo-server"}) == "" {
		t.Errorf("filter mechanism != pipe removed the POSIX queue too: %v", p.Channels())
	}
	p.CheckMapMatchesTables()
}

func TestLiveViewShowsAFilterMistakeWhereItWasTyped(t *testing.T) {
	p := uitest.Open(t, newFixture(t, &fixtureAPI{}), "400")
	p.WaitForLinks(uitest.Demo, 10*time.Second)
	p.SetFilter("mechanism == pipx")
	p.WaitFor("the filter's error", `!document.getElementById("filter-error").hidden`, 5*time.Second)
	msg := uitest.Eval[string](p, `document.getElementById("filter-error").textContent`)
	lines := strings.Split(msg, "\n")
	if len(lines) != 3 || !strings.Contains(lines[0], `unknown mechanism "pipx"`) || lines[1] != "mechanism == pipx" || lines[2] != strings.Repeat(" ", 13)+"^" {
		t.Errorf("the filter's error reads\n%s\nwant the message, the filter, and a caret under pipx", msg)
	}
	// The mistake is not applied: the graph is still the unfiltered one.
	if p.ChannelID(pipeLink) == "" {
		t.Errorf("after a wrong filter the pipe is gone: %v", p.Channels())
	}
}

func TestLiveViewWithoutATokenAsksForOneAndShowsNoData(t *testing.T) {
	const token = "icpt_fixture-token"
	p := uitest.Open(t, newFixture(t, &fixtureAPI{token: token}), "401")
	p.WaitFor("the login prompt", `document.getElementById("login").open`, 10*time.Second)
	if rows := append(p.Processes(), p.Channels()...); len(rows) != 0 {
		t.Errorf("without a token the tables show %v", rows)
	}
	if nodes := p.MapNodes(); len(nodes) != 0 {
		t.Errorf("without a token the map draws %v", nodes)
	}

	p.Do("sign in", chromedp.SetValue(chromedp.ID("token"), token), chromedp.Click(chromedp.CSS("#login-form button[type=submit]")))
	p.WaitForLinks(uitest.Demo, 10*time.Second)
	if got := uitest.Eval[string](p, `sessionStorage.getItem("icptrack.token")`); got != token {
		t.Errorf("the token kept for the tab is %q, want %q", got, token)
	}
}

func TestMapKeepsItsNodesWhereTheyAreAsItUpdates(t *testing.T) {
	f := &fixtureAPI{}
	p := uitest.Open(t, newFixture(t, f))
	p.WaitForLinks(uitest.Demo, 10*time.Second)
	before := p.MapNodes()

	f.mu.Lock()
	f.extra = 1 // a new process starts writing to the server
	f.mu.Unlock()
	p.WaitFor("the new process", `[...document.querySelectorAll("#processes tbody tr")].some((r) => r.cells[1].textContent === "load-0")`, 10*time.Second)
	status := p.Status()
	p.WaitFor("another update", `document.getElementById("status").textContent !== `+jsString(status), 5*time.Second)

	after := map[string]uitest.MapNode{}
	for _, n := range p.MapNodes() {
		after[n.ID] = n
	}
	for _, b := range before {
		a, ok := after[b.ID]
		if !ok {
			t.Errorf("%s left the map", b.Label)
		} else if a.X != b.X || a.Y != b.Y {
			t.Errorf("%s moved from (%.0f, %.0f) to (%.0f, %.0f) on an update", b.Label, b.X, b.Y, a.X, a.Y)
		}
	}
	p.CheckMapMatchesTables()
}

func TestMapDrawsAtMostTheCapAndCountsTheRest(t *testing.T) {
	p := uitest.Open(t, newFixture(t, &fixtureAPI{extra: 30}))
	p.WaitForLinks(uitest.Demo, 10*time.Second)
	if n := len(p.Processes()); n != 34 {
		t.Fatalf("the table lists %d processes, want 34 (3 of the demo, the unknown end, 30 more)", n)
	}
	setControl(p, "cap", "10")
	p.WaitFor(`"24 more"`, `document.querySelector("#processes tr.more")?.textContent.startsWith("24 more processes")`, 5*time.Second)
	if n := len(p.Processes()); n != 10 {
		t.Errorf("with a cap of 10 the table lists %d processes", n)
	}
	nodes := p.MapNodes()
	if len(nodes) != 11 || !slices.ContainsFunc(nodes, func(n uitest.MapNode) bool { return n.Label == "24 more" }) {
		t.Errorf("with a cap of 10 the map draws %v, want 10 processes and \"24 more\"", nodes)
	}
	p.CheckMapMatchesTables()
}

func TestFocusShowsTheProcessesWithinItsDepth(t *testing.T) {
	p := uitest.Open(t, newFixture(t, &fixtureAPI{}))
	p.WaitForLinks(uitest.Demo, 10*time.Second)
	worker := ""
	for _, r := range p.Processes() {
		if r["comm"] == "demo-worker" {
			worker = r["id"]
		}
	}
	setControl(p, "focus", worker)
	// worker ─ server ─ client ─ the UDP send's unknown receiver
	for depth, want := range map[string][]string{"1": {"demo-server", "demo-worker"}, "2": {"demo-client", "demo-server", "demo-worker"}, "3": {"?", "demo-client", "demo-server", "demo-worker"}} {
		setControl(p, "depth", depth)
		var got []string
		for _, r := range p.Processes() {
			got = append(got, r["comm"])
		}
		slices.Sort(got)
		if !slices.Equal(got, want) {
			t.Errorf("focus on demo-worker, depth %s: the table lists %v, want %v", depth, got, want)
		}
		p.CheckMapMatchesTables()
	}
}

// setControl sets a select or input and tells the page, as a person
// changing it would.
func setControl(p *uitest.Page, id, value string) {
	uitest.Eval[bool](p, `(() => { const c = document.getElementById(`+jsString(id)+`); c.value = `+jsString(value)+`; c.dispatchEvent(new Event("change")); return true; })()`)
}

func jsString(s string) string {
	return `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(s) + `"`
}

func TestPauseHoldsTheMapAndResumeCatchesUp(t *testing.T) {
	p := uitest.Open(t, newFixture(t, &fixtureAPI{}))
	p.WaitForLinks(uitest.Demo, 10*time.Second)
	p.Do("pause", chromedp.Click(chromedp.ID("pause")))
	p.WaitFor("the paused status", `document.getElementById("status").textContent.startsWith("paused")`, 5*time.Second)
	held := p.Status()
	time.Sleep(time.Second) // four of the fixture's updates
	if now := p.Status(); now != held {
		t.Errorf("paused, the status still changes: %q, then %q", held, now)
	}
	p.Do("resume", chromedp.Click(chromedp.ID("pause")))
	p.WaitFor("updates again", `(() => { const s = document.getElementById("status").textContent; return s.startsWith("live") && s !== `+jsString(held)+`; })()`, 5*time.Second)
	p.WaitForLinks(uitest.Demo, 5*time.Second)
}

func TestFindAndThicknessControls(t *testing.T) {
	p := uitest.Open(t, newFixture(t, &fixtureAPI{}))
	p.WaitForLinks(uitest.Demo, 10*time.Second)

	p.Do("find", chromedp.SetValue(chromedp.ID("find"), "demo-w"), chromedp.SendKeys(chromedp.ID("find"), "\r"))
	p.WaitFor("the find's result", `document.getElementById("find-result").textContent === "1 process found"`, 5*time.Second)
	found := uitest.Eval[[]string](p, `window.icptrackLiveView.map.cy.nodes(".found").map((n) => n.data("label"))`)
	if len(found) != 1 || !strings.HasPrefix(found[0], "demo-worker ") {
		t.Errorf("find demo-w rings %v, want demo-worker alone", found)
	}

	widths := func() map[string]float64 {
		return uitest.Eval[map[string]float64](p, `Object.fromEntries(window.icptrackLiveView.map.cy.edges().map((e) => [e.id(), e.data("width")]))`)
	}
	byBytes := widths()
	setControl(p, "thickness", "ops")
	p.WaitFor("the legend to say operations/s", `document.getElementById("legend").textContent.includes("Thickness: operations/s")`, 5*time.Second)
	byOps := widths()
	// The demo's routes move different sizes at the same rate: by bytes
	// their edges differ, by operations the busiest are equal.
	unixBack := p.ChannelID(uitest.Link{Mechanism: "unix_stream", From: "demo-server", To: "demo-client"})
	pipe := p.ChannelID(pipeLink)
	if byBytes[unixBack] <= byBytes[pipe] {
		t.Errorf("by bytes/s the 128-byte answers (%.1f) are not thicker than the 64-byte pipe writes (%.1f)", byBytes[unixBack], byBytes[pipe])
	}
	if byOps[unixBack] != byOps[pipe] {
		t.Errorf("by operations/s two edges at the same rate differ: %.1f and %.1f", byOps[unixBack], byOps[pipe])
	}
}

func TestGroupByExecutableContainerOrNothing(t *testing.T) {
	p := uitest.Open(t, newFixture(t, &fixtureAPI{}))
	p.WaitForLinks(uitest.Demo, 10*time.Second)
	groups := func() []string {
		g := uitest.Eval[[]string](p, `window.icptrackLiveView.map.cy.nodes("[?group]").map((n) => n.data("label"))`)
		slices.Sort(g)
		return g
	}
	want := []string{"/usr/local/bin/demo-client", "/usr/local/bin/demo-server", "/usr/local/bin/demo-worker"}
	if g := groups(); !slices.Equal(g, want) {
		t.Errorf("grouped by executable, the boxes are %v, want %v", g, want)
	}
	setControl(p, "group", "container")
	if g := groups(); !slices.Equal(g, []string{"host"}) {
		t.Errorf("grouped by container (and none runs in one), the boxes are %v, want [host]", g)
	}
	setControl(p, "group", "none")
	if g := groups(); len(g) != 0 {
		t.Errorf("grouped by nothing, the map still has boxes %v", g)
	}
	p.CheckMapMatchesTables()
}
