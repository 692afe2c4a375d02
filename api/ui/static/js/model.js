// The graph as the API last described it, kept up to date from the
// stream's snapshot and diffs, and what of it is drawn.

export class Graph {
  constructor() {
    this.nodes = new Map();
    this.edges = new Map();
    this.at = null;
  }

  clear() {
    this.nodes.clear();
    this.edges.clear();
    this.at = null;
  }

  // snapshot replaces the graph with g. A snapshot comes after every
  // (re)connection, so it is applied as the diff from what is held: the
  // map then keeps the positions of what it already shows.
  snapshot(g) {
    const d = {
      at: g.at,
      added_nodes: [], updated_nodes: [], removed_nodes: [],
      added_edges: [], updated_edges: [], removed_edges: [],
    };
    const nodes = new Set();
    for (const n of g.nodes || []) {
      nodes.add(n.id);
      (this.nodes.has(n.id) ? d.updated_nodes : d.added_nodes).push(n);
    }
    for (const id of this.nodes.keys()) if (!nodes.has(id)) d.removed_nodes.push(id);
    const edges = new Set();
    for (const e of g.edges || []) {
      edges.add(e.id);
      (this.edges.has(e.id) ? d.updated_edges : d.added_edges).push(e);
    }
    for (const id of this.edges.keys()) if (!edges.has(id)) d.removed_edges.push(id);
    this.apply(d);
    return d;
  }

  apply(d) {
    for (const id of d.removed_edges || []) this.edges.delete(id);
    for (const id of d.removed_nodes || []) this.nodes.delete(id);
    for (const n of [...(d.added_nodes || []), ...(d.updated_nodes || [])]) this.nodes.set(n.id, n);
    for (const e of [...(d.added_edges || []), ...(d.updated_edges || [])]) this.edges.set(e.id, e);
    // An edge may name a process the stream has not described (the
    // unknown end, "p:0"): give it a node so the edge can be drawn.
    for (const e of this.edges.values()) {
      for (const end of [e.source, e.target]) {
        if (!this.nodes.has(end)) {
          const pid = Number(end.slice(2));
          this.nodes.set(end, { id: end, pid, comm: "?", exe: "", container: "", ops_per_sec: 0, bytes_per_sec: 0, errors: 0 });
        }
      }
    }
    if (d.at) this.at = d.at;
  }
}

export const moreId = "more";

// shown picks what the map and the tables show: the processes within
// depth hops of focus (all when there is no focus), at most cap of them,
// the busiest by metric; the rest become one "N more" node, with their
// edges to the shown ones summed onto it.
export function shown(graph, { cap, focus, depth, metric }) {
  const key = metric === "ops" ? "ops_per_sec" : "bytes_per_sec";
  let ids = [...graph.nodes.keys()];
  if (focus && graph.nodes.has(focus)) ids = [...near(graph, focus, depth)];
  const inScope = new Set(ids);
  ids.sort((a, b) => (graph.nodes.get(b)[key] || 0) - (graph.nodes.get(a)[key] || 0) || a.localeCompare(b));
  if (focus && inScope.has(focus)) ids = [focus, ...ids.filter((id) => id !== focus)];
  const drawn = new Set(ids.slice(0, cap));
  const hidden = ids.length - drawn.size;

  const nodes = [...drawn].map((id) => graph.nodes.get(id));
  const edges = [];
  const summed = new Map();
  for (const e of graph.edges.values()) {
    if (!inScope.has(e.source) || !inScope.has(e.target)) continue;
    const s = drawn.has(e.source) ? e.source : moreId;
    const t = drawn.has(e.target) ? e.target : moreId;
    if (s === e.source && t === e.target) {
      edges.push(e);
      continue;
    }
    if (s === moreId && t === moreId) continue;
    const id = `${moreId}|${s}>${t}|${e.mechanism}`;
    const m = summed.get(id) || { id, source: s, target: t, mechanism: e.mechanism, endpoint: "(several)", ops_per_sec: 0, bytes_per_sec: 0, errors: 0, summed: true };
    m.ops_per_sec += e.ops_per_sec || 0;
    m.bytes_per_sec += e.bytes_per_sec || 0;
    m.errors += e.errors || 0;
    summed.set(id, m);
  }
  edges.push(...summed.values());
  return { nodes, edges, hidden };
}

// near is the set of processes within depth hops of id, either direction.
function near(graph, id, depth) {
  const seen = new Set([id]);
  let frontier = [id];
  for (let i = 0; i < depth && frontier.length; i++) {
    const next = [];
    for (const e of graph.edges.values()) {
      for (const [a, b] of [[e.source, e.target], [e.target, e.source]]) {
        if (frontier.includes(a) && !seen.has(b)) {
          seen.add(b);
          next.push(b);
        }
      }
    }
    frontier = next;
  }
  return seen;
}
