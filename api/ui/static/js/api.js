// Talking to the API: the token, JSON requests, and the SSE streams.
//
// EventSource cannot send an Authorization header, so the streams are read
// with fetch and parsed here (sse.js); the token never goes in a URL.

import { parseEvents } from "./sse.js";

const tokenKey = "icptrack.token";

export function token() {
  return sessionStorage.getItem(tokenKey) || "";
}

export function setToken(t) {
  if (t) sessionStorage.setItem(tokenKey, t);
  else sessionStorage.removeItem(tokenKey);
}

// APIError carries what the API said: its status and, for a 400, which
// parameter was wrong and where (the filter's line and column).
export class APIError extends Error {
  constructor(status, body) {
    super((body && body.error) || `the API answered ${status}`);
    this.status = status;
    this.body = body || {};
  }
}

function headers() {
  const h = { Accept: "application/json" };
  const t = token();
  if (t) h.Authorization = `Bearer ${t}`;
  return h;
}

async function check(res) {
  if (res.ok) return res;
  let body = null;
  try {
    body = await res.json();
  } catch {
    // a proxy's HTML error page: keep the status alone
  }
  throw new APIError(res.status, body);
}

export async function getJSON(path, params = {}) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== "" && v != null) q.set(k, v);
  const url = q.size ? `${path}?${q}` : path;
  const res = await check(await fetch(url, { headers: headers(), cache: "no-store" }));
  return res.json();
}

// stream reads the SSE response at path and calls onEvent(name, data) for
// each event, data parsed as JSON. It returns when the server ends the
// stream or signal aborts; it throws APIError when the server refuses.
export async function stream(path, params, onEvent, signal) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== "" && v != null) q.set(k, v);
  const h = headers();
  h.Accept = "text/event-stream";
  const res = await check(await fetch(`${path}?${q}`, { headers: h, cache: "no-store", signal }));
  const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
  await parseEvents(reader, (name, data) => onEvent(name, JSON.parse(data)));
}
