// The tables beside the map: the processes and channels it shows, as
// text that screen readers, tests and people copying from the page can
// read. A click on a column heading sorts by it; a click on a row selects
// that process or channel, as a click on the map does.

import { processName, bytesRate, opsRate, duration } from "./format.js";

export class Tables {
  constructor(processes, channels, onSelect) {
    this.processes = new SortedTable(processes, onSelect, "node", { key: "bytes_per_sec", dir: -1 });
    this.channels = new SortedTable(channels, onSelect, "edge", { key: "bytes_per_sec", dir: -1 });
  }

  render(view, graph, selected) {
    const name = (id) => processName(graph.nodes.get(id)) || id;
    this.processes.rows = view.nodes.map((n) => ({
      id: n.id, sel: selected && selected.id === n.id,
      values: n,
      cells: [n.pid, n.comm, n.exe, n.container, opsRate(n.ops_per_sec), bytesRate(n.bytes_per_sec), n.errors || 0],
    }));
    this.processes.more = view.hidden > 0 ? `${view.hidden} more processes are not drawn (raise "Draw at most", or focus)` : "";
    this.channels.rows = view.edges.map((e) => {
      const from = e.source === "more" ? "(not drawn)" : name(e.source);
      const to = e.target === "more" ? "(not drawn)" : name(e.target);
      return {
        id: e.id, sel: selected && selected.id === e.id, values: { ...e, from, to },
        cells: [from, to, e.mechanism, e.endpoint, opsRate(e.ops_per_sec), bytesRate(e.bytes_per_sec), duration(e.p50_ns), duration(e.p99_ns), e.errors || 0],
        summed: e.summed,
      };
    });
    this.processes.draw();
    this.channels.draw();
  }
}

class SortedTable {
  constructor(table, onSelect, kind, sort) {
    this.table = table;
    this.body = table.tBodies[0];
    this.kind = kind;
    this.sort = sort;
    this.rows = [];
    this.more = "";
    for (const th of table.tHead.rows[0].cells) {
      // A button in each heading makes sorting reachable from the keyboard.
      const b = document.createElement("button");
      b.type = "button";
      b.textContent = th.textContent;
      th.replaceChildren(b);
      b.addEventListener("click", () => {
        const key = th.dataset.key;
        this.sort = { key, dir: this.sort.key === key ? -this.sort.dir : th.dataset.type === "num" ? -1 : 1 };
        this.draw();
      });
    }
    this.body.addEventListener("click", (ev) => {
      const tr = ev.target.closest("tr[data-id]");
      if (tr && !tr.classList.contains("summed")) onSelect({ kind: this.kind, id: tr.dataset.id });
    });
  }

  draw() {
    const { key, dir } = this.sort;
    const rows = [...this.rows].sort((a, b) => {
      const x = a.values[key];
      const y = b.values[key];
      const c = typeof x === "number" || typeof y === "number" ? (x || 0) - (y || 0) : String(x || "").localeCompare(String(y || ""));
      return dir * c || a.id.localeCompare(b.id);
    });
    for (const th of this.table.tHead.rows[0].cells) {
      th.setAttribute("aria-sort", th.dataset.key === key ? (dir > 0 ? "ascending" : "descending") : "none");
    }
    const trs = rows.map((r) => {
      const tr = document.createElement("tr");
      tr.dataset.id = r.id;
      if (r.sel) tr.setAttribute("aria-selected", "true");
      if (r.summed) tr.classList.add("summed");
      for (const c of r.cells) {
        const td = document.createElement("td");
        td.textContent = c == null ? "" : String(c);
        tr.append(td);
      }
      return tr;
    });
    if (this.more) {
      const tr = document.createElement("tr");
      tr.className = "more";
      const td = document.createElement("td");
      td.colSpan = this.table.tHead.rows[0].cells.length;
      td.textContent = this.more;
      tr.append(td);
      trs.push(tr);
    }
    this.body.replaceChildren(...trs);
  }
}
