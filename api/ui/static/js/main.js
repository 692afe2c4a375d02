// The live view: wires the controls, the stream, the map, the tables and
// the panel together.

import { APIError, getJSON, setToken, stream, token } from "./api.js";
import { Graph, shown } from "./model.js";
import { MapView } from "./map.js";
import { Tables } from "./tables.js";
import { Panel } from "./panel.js";

const $ = (id) => document.getElementById(id);

const graph = new Graph();
const settings = {
  filter: "",
  window: $("window").value,
  metric: $("thickness").value,
  groupBy: $("group").value,
  cap: Number($("cap").value),
  focus: "",
  depth: Number($("depth").value),
};
let paused = false;
let connection = null;
let view = { nodes: [], edges: [], hidden: 0 };

const panel = new Panel($("panel"), $("panel-body"), (err) => refused(err));
const map = new MapView($("map"), $("legend"), select);
const tables = new Tables($("processes"), $("channels"), select);

function select(sel) {
  // The "N more" node and its summed edges stand for many: nothing to open.
  if (sel.id === "more" || sel.id.startsWith("more|")) return;
  const opening = $("panel").hidden;
  map.select(sel);
  panel.show(sel, graph);
  // The map narrows for the panel; refit only then, not on every click.
  if (opening) map.resize();
  tables.render(view, graph, sel);
}

// redraw shows the graph as the controls say, changing only what differs.
function redraw() {
  view = shown(graph, settings);
  map.render(view, settings);
  tables.render(view, graph, panel.selected);
  panel.update(graph);
  updateFocusChoices();
  const n = graph.nodes.size;
  const when = graph.at ? ` · ${new Date(graph.at).toLocaleTimeString()}` : "";
  status(`${paused ? "paused" : "live"} · ${n} processes, ${graph.edges.size} channels in the last ${settings.window}${when}`);
}

function status(text) {
  $("status").textContent = text;
}

// connect (re)opens the graph stream with the current settings; a
// snapshot arrives first and is applied as a diff, so nothing moves.
function connect() {
  if (connection) connection.abort();
  if (paused) return;
  const ctl = new AbortController();
  connection = ctl;
  const params = { window: settings.window, filter: settings.filter };
  let delay = 1000;
  (async () => {
    while (!ctl.signal.aborted) {
      try {
        await stream("/api/v1/graph/stream", params, (name, data) => {
          // A chunk read before a pause or a new filter may still be parsed.
          if (ctl.signal.aborted) return;
          delay = 1000;
          if (name === "snapshot") graph.snapshot(data);
          else if (name === "diff") graph.apply(data);
          else return;
          redraw();
        }, ctl.signal);
        if (!ctl.signal.aborted) status("the stream ended; reconnecting…");
      } catch (err) {
        if (ctl.signal.aborted) return;
        if (err instanceof APIError) return refused(err);
        status(`cannot reach the API (${err.message}); retrying…`);
      }
      await new Promise((r) => setTimeout(r, delay));
      delay = Math.min(delay * 2, 15000);
    }
  })();
}

// refused handles the API saying no: ask for a token on 401, explain a
// 403, and show a filter's mistake where it was typed.
function refused(err) {
  if (err.status === 401) return askForToken(token() ? "That token was not accepted." : "");
  if (err.status === 403) return status(`this credential may not read the graph (${err.message}); ask for one with the read scope`);
  if (err.status === 400 && err.body.parameter === "filter") return showFilterError(err.body);
  status(`the API answered ${err.status}: ${err.message}`);
}

function askForToken(why) {
  if (connection) connection.abort();
  connection = null;
  graph.clear();
  panel.close();
  redraw();
  status("sign in to see the graph");
  $("login-error").hidden = !why;
  $("login-error").textContent = why;
  if (!$("login").open) $("login").showModal();
}

$("login-form").addEventListener("submit", () => {
  setToken($("token").value.trim());
  $("token").value = "";
  connect();
});

// The filter is checked by asking for the graph with it once: a mistake
// comes back as a 400 with its line and column, shown under the box.
$("filter-form").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const filter = $("filter").value.trim();
  try {
    await getJSON("/api/v1/graph", { window: settings.window, filter });
  } catch (err) {
    if (err instanceof APIError) return refused(err);
    return status(`cannot reach the API: ${err.message}`);
  }
  $("filter-error").hidden = true;
  $("filter").removeAttribute("aria-invalid");
  settings.filter = filter;
  connect();
});

function showFilterError(body) {
  const box = $("filter-error");
  const lines = [body.error];
  const text = $("filter").value.split("\n")[(body.line || 1) - 1];
  if (body.column && text !== undefined) lines.push(text, `${" ".repeat(body.column - 1)}^`);
  box.textContent = lines.join("\n");
  box.hidden = false;
  $("filter").setAttribute("aria-invalid", "true");
}

$("pause").addEventListener("click", () => {
  paused = !paused;
  $("pause").textContent = paused ? "Resume" : "Pause";
  $("pause").setAttribute("aria-pressed", String(paused));
  if (paused) {
    if (connection) connection.abort();
    connection = null;
    redraw();
  } else connect();
});

$("window").addEventListener("change", () => {
  settings.window = $("window").value;
  connect();
});
$("thickness").addEventListener("change", () => {
  settings.metric = $("thickness").value;
  redraw();
});
$("group").addEventListener("change", () => {
  settings.groupBy = $("group").value;
  redraw();
  map.layout();
});
$("cap").addEventListener("change", () => {
  const cap = Number($("cap").value);
  if (Number.isInteger(cap) && cap > 0) settings.cap = cap;
  redraw();
});
$("focus").addEventListener("change", () => {
  settings.focus = $("focus").value;
  redraw();
  map.layout();
});
$("depth").addEventListener("change", () => {
  settings.depth = Number($("depth").value);
  redraw();
});
$("relayout").addEventListener("click", () => map.layout());
$("find-form").addEventListener("submit", (ev) => {
  ev.preventDefault();
  const n = map.find($("find").value);
  // Its own line: the status line is rewritten on every update.
  $("find-result").textContent = $("find").value.trim() ? `${n} process${n === 1 ? "" : "es"} found` : "";
});
$("panel-close").addEventListener("click", () => {
  panel.close();
  map.resize();
  map.select(null);
  tables.render(view, graph, null);
});

// updateFocusChoices keeps the focus list to the processes known now.
function updateFocusChoices() {
  const sel = $("focus");
  const want = [...graph.nodes.values()].filter((n) => n.pid !== 0).sort((a, b) => a.pid - b.pid);
  const have = [...sel.options].slice(1).map((o) => o.value).join(",");
  if (have === want.map((n) => n.id).join(",")) return;
  const options = want.map((n) => new Option(`${n.comm} ${n.pid}`, n.id));
  sel.replaceChildren(new Option("all processes", ""), ...options);
  sel.value = graph.nodes.has(settings.focus) ? settings.focus : "";
}

// For the browser tests and the console: the map and the graph it draws.
window.icptrackLiveView = { map, graph };

connect();
