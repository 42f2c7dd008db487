/**
 * Event streams whose events are typed (`event: <type>` then `data: {"type": "<type>", …}`), as
 * OpenAI's Responses API and Anthropic's Messages API send them: read a recorded stream into
 * its events, and write the events a conversion synthesizes. Reading is for the stream grammar
 * and conversions only; a recorded stream is always replayed as the bytes it was received as.
 */

import type { Json } from "../json-body.js";
import { splitEvents } from "../sse.js";
import { parseObject } from "./openai.js";

export interface TypedEvent {
  /** The `event:` line's type, if the event had one. */
  event: string | undefined;
  /** The `data:` payload parsed, or `undefined` when it is not a JSON object. */
  data: Json | undefined;
  /** The payload as received (multi-line data joined with newlines), `""` without any. */
  raw: string;
}

/** The events of a recorded stream, in order (comments and empty events are skipped). */
export function typedEvents(text: string): TypedEvent[] {
  const events: TypedEvent[] = [];
  for (const block of splitEvents(text)) {
    let event: string | undefined;
    const data: string[] = [];
    for (const line of block.split("\n")) {
      if (line.startsWith("event:")) event = line.slice(6).trim();
      else if (line.startsWith("data:")) data.push(line.slice(line.startsWith("data: ") ? 6 : 5));
    }
    if (event === undefined && data.length === 0) continue;
    const raw = data.join("\n");
    events.push({ event, data: raw === "" ? undefined : parseObject(raw), raw });
  }
  return events;
}

/** The type of an event: its payload's `type`, else its `event:` line. */
export function typeOf(event: TypedEvent): string | undefined {
  const type = event.data?.type;
  return typeof type === "string" ? type : event.event;
}

/** One event as the APIs write it (without its blank line): `event: <type>` and the payload. */
export function typedEvent(data: Json & { type: string }): string {
  return `event: ${data.type}\ndata: ${JSON.stringify(data)}`;
}
