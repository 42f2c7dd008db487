/**
 * Server-sent events: framing one, and reading a recorded stream's events, `data:` payloads and
 * `event:` types. A recorded stream is replayed byte for byte; the protocols read it with these to
 * decide whether it is a whole answer and to convert it (`protocols/openai-convert.ts`).
 */

/**
 * One server-sent event: an optional `event:` line and the data split into `data:` lines, with
 * the blank line that ends it. The one framing every event stream of the project writes (the
 * gateway's feeds, `serve()`, the local engine).
 */
export function sseFrame(data: string, event?: string): string {
  const lines = data.split("\n").map((line) => `data: ${line}`);
  return `${event === undefined ? "" : `event: ${event}\n`}${lines.join("\n")}\n\n`;
}

/** The events of an SSE body (each without its blank-line terminator). */
export function splitEvents(text: string): string[] {
  return (
    text
      // SSE lines end with CRLF, LF or a lone CR (the spec allows all three).
      .replace(/\r\n?/g, "\n")
      .split("\n\n")
      .filter((event) => event.trim() !== "")
  );
}

/** The `data:` payloads of an SSE body, in order (multi-line data joined with newlines). */
export function dataOf(text: string): string[] {
  const payloads: string[] = [];
  for (const event of splitEvents(text)) {
    const lines = event.split("\n").filter((line) => line.startsWith("data:"));
    if (lines.length > 0)
      payloads.push(lines.map((line) => line.slice(line.startsWith("data: ") ? 6 : 5)).join("\n"));
  }
  return payloads;
}

/** The `event:` types of an SSE body, in order (events without one are not listed). */
export function eventTypes(text: string): string[] {
  const types: string[] = [];
  for (const event of splitEvents(text)) {
    for (const line of event.split("\n")) {
      if (line.startsWith("event:")) types.push(line.slice(6).trim());
    }
  }
  return types;
}
