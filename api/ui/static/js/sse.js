// A parser for text/event-stream (the WHATWG "server-sent events" format),
// fed from a fetch body, because EventSource cannot send the token.

// parseEvents reads text chunks from reader until it ends and calls
// onEvent(name, data) per event. Comment lines (": keepalive") are skipped;
// an event without "event:" is a "message", as in EventSource.
export async function parseEvents(reader, onEvent) {
  let buf = "";
  let name = "";
  let data = [];
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buf += value;
    let nl;
    while ((nl = buf.search(/\r\n|\r|\n/)) >= 0) {
      // A "\r" at the end of a chunk may be half of a "\r\n": wait.
      if (buf[nl] === "\r" && nl === buf.length - 1) break;
      const line = buf.slice(0, nl);
      buf = buf.slice(nl + (buf[nl] === "\r" && buf[nl + 1] === "\n" ? 2 : 1));
      if (line === "") {
        if (data.length) onEvent(name || "message", data.join("\n"));
        name = "";
        data = [];
        continue;
      }
      if (line.startsWith(":")) continue;
      const colon = line.indexOf(":");
      const field = colon < 0 ? line : line.slice(0, colon);
      let value = colon < 0 ? "" : line.slice(colon + 1);
      if (value.startsWith(" ")) value = value.slice(1);
      if (field === "event") name = value;
      else if (field === "data") data.push(value);
    }
  }
}
