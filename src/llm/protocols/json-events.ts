/**
 * Streams of typed events, as OpenAI's audio and image APIs send them: each `data:` payload is
 * a JSON object with a `type` (`transcript.text.delta`, `speech.audio.done`,
 * `image_generation.completed`, …), and no `[DONE]` ends them: the last event's type says the
 * answer is whole. Nothing here knows an API's event names; its protocol passes them.
 */

import type { Json } from "../json-body.js";
import { dataOf, eventTypes } from "../sse.js";
import { parseObject } from "./openai.js";

/**
 * The events of a recorded stream, or `undefined` when one is not a JSON object, or is an error
 * (an `error` field, a `type` of `error`, an `event: error`). A `[DONE]` some servers add is
 * skipped.
 */
export function typedEvents(text: string): Json[] | undefined {
  if (eventTypes(text).includes("error")) return undefined;
  const events: Json[] = [];
  for (const payload of dataOf(text)) {
    if (payload.trim() === "[DONE]") continue;
    const event = parseObject(payload);
    if (event === undefined || event.error !== undefined || event.type === "error")
      return undefined;
    events.push(event);
  }
  return events;
}

/** Whether a recorded stream is whole: no error, and its last event is of a final type. */
export function isCompleteTypedStream(text: string, finalTypes: readonly string[]): boolean {
  const events = typedEvents(text);
  const last = events?.at(-1)?.type;
  return typeof last === "string" && finalTypes.includes(last);
}

/** The SSE event (without its blank line) that carries `event`. */
export function dataEvent(event: Json): string {
  return `data: ${JSON.stringify(event)}`;
}
