// The map: processes as nodes grouped by executable or container, channels
// as edges coloured by mechanism and as thick as their rate. The layout
// (dagre, left to right) runs once when the map first has something to
// show and again only when asked; updates place new nodes beside their
// neighbours and leave every other node where it is.

import cytoscape from "../vendor/cytoscape.esm.min.mjs";
import dagre from "../vendor/cytoscape-dagre.min.mjs";
import { moreId } from "./model.js";
import { processName, bytesRate, opsRate } from "./format.js";

cytoscape.use(dagre);

// One colour per mechanism, chosen to tell the common ones apart.
export const mechanismColours = {
  pipe: "#1f77b4",
  fifo: "#17becf",
  unix_stream: "#2ca02c",
  unix_dgram: "#98df8a",
  unix_seqpacket: "#bcbd22",
  tcp: "#ff7f0e",
  udp: "#ffbb78",
  posix_mq: "#9467bd",
  sysv_mq: "#c5b0d5",
  sysv_shm: "#8c564b",
  posix_shm: "#c49c94",
  memfd: "#e377c2",
  signal: "#d62728",
};
const otherColour = "#7f7f7f";
const minWidth = 1;
const maxWidth = 12;

const layout = { name: "dagre", rankDir: "LR", nodeSep: 30, rankSep: 120, edgeSep: 10, fit: true, padding: 30, animate: false };

export class MapView {
  constructor(container, legend, onSelect) {
    this.legend = legend;
    this.laidOut = false;
    this.cy = cytoscape({
      container,
      minZoom: 0.1,
      maxZoom: 4,
      wheelSensitivity: 0.3,
      boxSelectionEnabled: false,
      style: [
        { selector: "node", style: {
          label: "data(label)", "font-size": 11, "text-valign": "bottom", "text-margin-y": 4,
          "background-color": "#4a5568", width: 22, height: 22, color: "#1a202c",
        } },
        { selector: "node.unknown", style: { "background-color": "#cbd5e0", shape: "diamond" } },
        { selector: "node.more", style: { "background-color": "#a0aec0", shape: "round-rectangle", width: 60 } },
        { selector: ":parent", style: {
          "background-color": "#edf2f7", "border-color": "#a0aec0", "border-width": 1, shape: "round-rectangle",
          label: "data(label)", "text-valign": "top", "font-size": 10, color: "#4a5568", padding: 12,
        } },
        { selector: "node.found", style: { "border-width": 3, "border-color": "#d69e2e" } },
        { selector: "edge", style: {
          width: "data(width)", "line-color": "data(colour)", "target-arrow-color": "data(colour)",
          "target-arrow-shape": "triangle", "curve-style": "bezier", "arrow-scale": 0.8, opacity: 0.85,
        } },
        { selector: "edge.error", style: { "line-style": "dashed" } },
        { selector: ":selected", style: { "overlay-color": "#d69e2e", "overlay-opacity": 0.25, "overlay-padding": 4 } },
      ],
    });
    this.cy.on("tap", "edge", (ev) => onSelect({ kind: "edge", id: ev.target.id() }));
    this.cy.on("tap", "node", (ev) => {
      const n = ev.target;
      if (n.isParent() || n.id() === moreId) return;
      onSelect({ kind: "node", id: n.id() });
    });
  }

  // render makes the map show exactly what shown() picked, changing only
  // what differs from what it shows now.
  render(view, { metric, groupBy }) {
    const cy = this.cy;
    const key = metric === "ops" ? "ops_per_sec" : "bytes_per_sec";
    const max = Math.max(0, ...view.edges.map((e) => e[key] || 0));
    const width = (v) => (max > 0 ? minWidth + (maxWidth - minWidth) * Math.sqrt((v || 0) / max) : minWidth);

    const wantNodes = new Map(view.nodes.map((n) => [n.id, n]));
    if (view.hidden > 0) wantNodes.set(moreId, { id: moreId, more: view.hidden });
    const wantEdges = new Map(view.edges.map((e) => [e.id, e]));
    const wantGroups = new Map();
    for (const n of wantNodes.values()) {
      const g = group(n, groupBy);
      if (g) wantGroups.set(g.id, g);
    }

    let added = cy.collection();
    cy.batch(() => {
      cy.edges().forEach((e) => { if (!wantEdges.has(e.id())) e.remove(); });
      cy.nodes().forEach((n) => {
        if (n.isParent() || n.data("group")) {
          if (!wantGroups.has(n.id())) n.children().move({ parent: null });
          return;
        }
        if (!wantNodes.has(n.id())) n.remove();
      });
      cy.nodes("[?group]").forEach((g) => { if (!wantGroups.has(g.id())) g.remove(); });
      for (const g of wantGroups.values()) {
        if (cy.getElementById(g.id).empty()) cy.add({ group: "nodes", data: { id: g.id, label: g.label, group: true } });
      }
      for (const n of wantNodes.values()) {
        const data = nodeData(n, groupBy);
        const el = cy.getElementById(n.id);
        if (el.empty()) {
          added = added.union(cy.add({ group: "nodes", data, classes: nodeClasses(n) }));
        } else {
          // parent is changed by move(), never by data(), and id never.
          const { id, parent, ...rest } = data;
          if ((el.data("parent") || null) !== (parent || null)) el.move({ parent: parent || null });
          cy.getElementById(id).data(rest);
        }
      }
      for (const e of wantEdges.values()) {
        const data = {
          id: e.id, source: e.source, target: e.target, width: width(e[key]),
          colour: mechanismColours[e.mechanism] || otherColour,
        };
        const el = cy.getElementById(e.id);
        if (el.empty()) cy.add({ group: "edges", data, classes: e.errors ? "error" : "" });
        else {
          el.data({ width: data.width, colour: data.colour });
          el.toggleClass("error", !!e.errors);
        }
      }
    });

    if (!this.laidOut && cy.nodes().length > 0) this.layout();
    else this.place(added);
    this.drawLegend(view, metric, max);
  }

  // layout lays the whole map out again: on the first data, and when the
  // user asks for it.
  layout() {
    if (this.cy.nodes().length === 0) return;
    this.cy.layout(layout).run();
    this.fit();
    this.laidOut = true;
  }

  // fit brings the whole map into view; it moves the view, not the nodes.
  fit() {
    this.cy.fit(undefined, 30);
    // A small map fitted to the canvas would be drawn huge.
    if (this.cy.zoom() > 1.2) {
      this.cy.zoom(1.2);
      this.cy.center();
    }
  }

  // resize tells Cytoscape its container changed size (the side panel
  // opened or closed): it sizes its canvas only when told.
  resize() {
    this.cy.resize();
    this.fit();
  }

  // place puts each new node one rank right of a node that sends to it,
  // or left of one it sends to, or below everything, so that an update
  // never moves what the user was looking at.
  place(added) {
    const bb = this.cy.nodes().not(added).boundingBox();
    let below = Number.isFinite(bb.y2) ? bb.y2 + 40 : 0;
    added.forEach((n) => {
      const from = n.incomers("node").not(added).first();
      const to = n.outgoers("node").not(added).first();
      let at;
      if (from.nonempty()) at = { x: from.position("x") + 160, y: from.position("y") + 30 * (from.outgoers("node").length - 1) };
      else if (to.nonempty()) at = { x: to.position("x") - 160, y: to.position("y") + 30 * (to.incomers("node").length - 1) };
      else {
        at = { x: Number.isFinite(bb.x1) ? bb.x1 : 0, y: below };
        below += 50;
      }
      n.position(at);
    });
  }

  select(sel) {
    this.cy.elements().unselect();
    if (sel) this.cy.getElementById(sel.id).select();
  }

  // find marks the processes whose name, executable or pid contain text,
  // and brings the first into view.
  find(text) {
    const cy = this.cy;
    cy.nodes().removeClass("found");
    const t = text.trim().toLowerCase();
    if (!t) return 0;
    const found = cy.nodes().filter((n) => {
      const p = n.data("process");
      return p && (String(p.pid) === t || (p.comm || "").toLowerCase().includes(t) || (p.exe || "").toLowerCase().includes(t));
    });
    found.addClass("found");
    if (found.nonempty()) cy.center(found.first());
    return found.length;
  }

  drawLegend(view, metric, max) {
    const mechanisms = [...new Set(view.edges.map((e) => e.mechanism))].sort();
    const items = mechanisms.map((m) => {
      const li = document.createElement("li");
      const swatch = document.createElement("span");
      swatch.className = "swatch";
      swatch.style.backgroundColor = mechanismColours[m] || otherColour;
      li.append(swatch, m);
      return li;
    });
    const list = document.createElement("ul");
    list.append(...items);
    const thick = document.createElement("p");
    const fmt = metric === "ops" ? opsRate : bytesRate;
    thick.textContent = max > 0
      ? `Thickness: ${metric === "ops" ? "operations/s" : "bytes/s"}, thinnest 0, thickest ${fmt(max)}. Dashed: errors.`
      : "Thickness: no traffic in the window yet.";
    const title = document.createElement("h2");
    title.textContent = "Legend";
    this.legend.replaceChildren(title, list, thick);
  }
}

function group(n, groupBy) {
  if (groupBy === "none" || n.more || n.pid === 0) return null;
  if (groupBy === "container") {
    return n.container ? { id: `g:c:${n.container}`, label: `container ${n.container.slice(0, 12)}` } : { id: "g:c:", label: "host" };
  }
  return n.exe ? { id: `g:e:${n.exe}`, label: n.exe } : null;
}

function nodeData(n, groupBy) {
  if (n.more) return { id: n.id, label: `${n.more} more` };
  const g = group(n, groupBy);
  return { id: n.id, label: processName(n), parent: g ? g.id : undefined, process: n };
}

function nodeClasses(n) {
  if (n.more) return "more";
  if (n.pid === 0) return "unknown";
  return "";
}
