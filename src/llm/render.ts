/**
 * An answer from a stored record, in the form the request asked for: a recorded stream replayed
 * byte for byte (optionally paced), or converted by the protocol (a stream from a plain record,
 * a plain answer from a stream) — or `undefined` when the protocol cannot convert it exactly.
 * Headers say what happened: `x-infercache` (hit, miss, coalesced…), `x-infercache-key`, `Age`,
 * `Server-Timing`, and `x-infercache-saved-tokens`: the tokens the recorded usage counts, which
 * this answer did not cost (its body keeps the recorded usage, byte for byte, so the header is
 * where a hit says it was free).
 */

import type { Entry } from "../store/store.js";
import { type Answer, eventStream } from "./answer.js";
import { cacheStatus } from "./cache-status.js";
import type { Outcome, WholeCall } from "./call.js";
import type { LlmPipeline } from "./pipeline.js";
import type { AnswerRecord } from "./protocol.js";
import { splitEvents } from "./sse.js";

export function renderRecord(
  pipeline: LlmPipeline,
  call: WholeCall,
  record: AnswerRecord,
  entry: Entry | undefined,
  outcome: Outcome,
): Answer | undefined {
  const stream = call.parsed.stream;
  const headers = cacheHeaders(call, outcome);
  const now = pipeline.core.clock.now();
  if (entry !== undefined) {
    headers.age = String(Math.max(0, Math.floor((now - entry.createdAt) / 1000)));
  }
  // Freshness left: until `staleAt` where the entry may be served stale, else its expiry.
  const freshUntil = entry?.staleAt ?? entry?.expiresAt;
  const ttlMs = freshUntil === undefined ? undefined : freshUntil - now;
  headers["cache-status"] =
    outcome === "hit"
      ? cacheStatus({ kind: "hit", ttlMs })
      : outcome === "stale"
        ? // Served stale without going upstream (a stale-if-error answer is marked by the pipeline).
          cacheStatus({ kind: "stale", ttlMs: Math.min(0, ttlMs ?? 0) })
        : // Served from another request's upstream call (here, or another process's through the store).
          cacheStatus({ kind: "forward", fwd: "uri-miss", collapsed: true });
  headers["x-infercache-saved-tokens"] = String(record.usage.total);
  headers["server-timing"] =
    `cache;desc="${outcome}";dur=${(performance.now() - call.started).toFixed(3)}, upstream;desc="recorded";dur=${(entry?.computeMs ?? 0).toFixed(1)}`;
  if (record.format === "sse" || record.format === "json") {
    if (stream) {
      headers["content-type"] = "text/event-stream";
      headers["cache-control"] = "no-cache";
      const delay = pipeline.options.replayDelayMs ?? 0;
      if (record.format === "sse") {
        const body = record.body as string;
        return {
          status: 200,
          headers,
          body: delay > 0 ? eventStream(splitEvents(body), delay) : body,
        };
      }
      const events = call.protocol.toStream(record, call.parsed);
      if (events === undefined) return undefined;
      return {
        status: 200,
        headers,
        body: delay > 0 ? eventStream(events, delay) : `${events.join("\n\n")}\n\n`,
      };
    }
    headers["content-type"] = "application/json";
    const body = record.format === "json" ? (record.body as string) : call.protocol.toJson(record);
    if (body === undefined) return undefined;
    return { status: record.format === "json" ? record.status : 200, headers, body };
  }
  headers["content-type"] = record.contentType;
  return { status: record.status, headers, body: record.body };
}

/** The headers every cacheable answer carries. */
export function cacheHeaders(call: WholeCall, outcome: Outcome): Record<string, string> {
  const headers: Record<string, string> = { "x-infercache": outcome };
  // A bucket's answers live under `<key>:bucket:<i>`; the base key names them all.
  if (call.key !== "") headers["x-infercache-key"] = call.key;
  return headers;
}
