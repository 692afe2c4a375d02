// Numbers as people read them.

export function rate(v, unit) {
  if (!v) return `0 ${unit}/s`;
  const steps = [[1e9, "G"], [1e6, "M"], [1e3, "k"]];
  for (const [n, p] of steps) if (v >= n) return `${(v / n).toFixed(1)} ${p}${unit}/s`;
  return `${v < 10 ? v.toFixed(1) : Math.round(v)} ${unit}/s`;
}

export function bytesRate(v) {
  return rate(v, "B");
}

export function opsRate(v) {
  return rate(v, "ops");
}

export function duration(ns) {
  if (ns == null) return "–";
  if (ns >= 1e9) return `${(ns / 1e9).toFixed(2)} s`;
  if (ns >= 1e6) return `${(ns / 1e6).toFixed(2)} ms`;
  if (ns >= 1e3) return `${(ns / 1e3).toFixed(1)} µs`;
  return `${ns} ns`;
}

export function processName(n) {
  if (!n) return "?";
  if (n.pid === 0) return "? (unknown)";
  return `${n.comm || "?"} ${n.pid}`;
}
