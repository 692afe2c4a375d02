// The side panel: the selected channel or process, its rates, latency
// percentiles and errors from the graph, and its last operations from the
// API (with payloads only when the credential has read:payload, which the
// server decides).

import { getJSON } from "./api.js";
import { processName, bytesRate, opsRate, duration } from "./format.js";

export class Panel {
  constructor(aside, body, onError) {
    this.aside = aside;
    this.body = body;
    this.onError = onError;
    this.selected = null;
    this.request = 0;
  }

  close() {
    this.selected = null;
    this.request++;
    this.aside.hidden = true;
    this.body.replaceChildren();
  }

  // show opens the panel on sel and fetches its operations.
  async show(sel, graph) {
    this.selected = sel;
    const req = ++this.request;
    this.aside.hidden = false;
    this.summary = el("div", { className: "summary" });
    this.ops = el("div", { className: "operations" }, el("p", {}, "loading the last operations…"));
    this.body.replaceChildren(this.summary, this.ops);
    this.update(graph);
    try {
      const detail = sel.kind === "edge"
        ? await getJSON(`/api/v1/channels/${encodeURIComponent(graph.edges.get(sel.id)?.channel || channelOf(sel.id))}`)
        : await getJSON(`/api/v1/processes/${encodeURIComponent(sel.id.replace(/^p:/, ""))}`);
      if (req !== this.request) return;
      this.ops.replaceChildren(operations(detail.operations || []));
    } catch (err) {
      if (req !== this.request) return;
      this.ops.replaceChildren(el("p", { className: "error" }, `could not read its operations: ${err.message}`));
      this.onError(err);
    }
  }

  // update refreshes the figures from the graph the stream keeps current.
  update(graph) {
    const sel = this.selected;
    if (!sel || !this.summary) return;
    const name = (id) => processName(graph.nodes.get(id));
    let rows;
    let title;
    if (sel.kind === "edge") {
      const e = graph.edges.get(sel.id);
      if (!e) return this.gone();
      title = `${e.mechanism} ${e.endpoint || ""}`;
      rows = [
        ["from", name(e.source)], ["to", name(e.target)],
        ["operations", opsRate(e.ops_per_sec)], ["bytes", bytesRate(e.bytes_per_sec)],
        ["latency p50", duration(e.p50_ns)], ["latency p99", duration(e.p99_ns)],
        ["errors", String(e.errors || 0)],
      ];
    } else {
      const n = graph.nodes.get(sel.id);
      if (!n) return this.gone();
      title = processName(n);
      rows = [
        ["executable", n.exe || "–"], ["container", n.container || "–"],
        ["operations", opsRate(n.ops_per_sec)], ["bytes", bytesRate(n.bytes_per_sec)],
        ["errors", String(n.errors || 0)],
      ];
    }
    const dl = el("dl");
    for (const [k, v] of rows) dl.append(el("dt", {}, k), el("dd", {}, v));
    this.summary.replaceChildren(el("h2", {}, title), dl);
  }

  gone() {
    this.summary.replaceChildren(el("p", {}, "no longer in the window"));
  }
}

// channelOf turns an edge id (channel id | sender > receiver, as the API
// builds it) back into the channel's id.
export function channelOf(edgeId) {
  const bar = edgeId.lastIndexOf("|");
  return bar < 0 ? edgeId : edgeId.slice(0, bar);
}

function operations(ops) {
  if (ops.length === 0) return el("p", {}, "no operations in the window");
  const payload = ops.some((o) => o.payload);
  const cols = ["time", "process", "op", "syscall", "bytes", "duration", "error"];
  if (payload) cols.push("payload");
  const head = el("tr", {}, ...cols.map((c) => el("th", { scope: "col" }, c)));
  // Newest first, to the millisecond: the panel is narrow.
  const rows = [...ops].reverse().map((o) => {
    const cells = [
      (o.time || "").replace(/^.*T/, "").replace(/Z$/, "").slice(0, 12),
      `${o.comm || "?"} ${o.pid}`, o.op, o.syscall, String(o.bytes || 0), duration(o.duration_ns), o.error || "",
    ];
    if (payload) cells.push(o.payload ? atobSafe(o.payload) : "");
    return el("tr", { className: "op" }, ...cells.map((c) => el("td", {}, c)));
  });
  const h = el("h3", {}, `last ${ops.length} operations`);
  return el("div", {}, h, el("table", { className: "ops" }, el("thead", {}, head), el("tbody", {}, ...rows)));
}

// atobSafe shows a payload as text where it is printable.
function atobSafe(b64) {
  try {
    return atob(b64).replace(/[^\x20-\x7e]/g, "·");
  } catch {
    return b64;
  }
}

function el(tag, props = {}, ...children) {
  const e = document.createElement(tag);
  Object.assign(e, props);
  e.append(...children);
  return e;
}
