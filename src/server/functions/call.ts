/**
 * Answers one call of `serve({ functions })`: runs the function in the caller's session and
 * under the client's signal, reads a generator, and says where the answer came from
 * (`x-infercache`, `Server-Timing`, or the `complete` event) — or what failed, without the
 * function's own message.
 */

import type { CallOptions } from "../../cache/cache-fn.js";
import { runComputation } from "../../cache/computation.js";
import { isIterator } from "../../cache/function-kind.js";
import { runInSession } from "../../cache/session.js";
import type { CallStatus } from "../../cache/telemetry.js";
import { type CacheUsageReport, trackCacheUsage } from "../../cache/usage.js";
import type { Answer } from "../../llm/answer.js";
import { QueueFullError } from "../../queue/queue-full-error.js";
import { HttpError } from "../http/errors.js";
import type { HttpRequest } from "../http/node-http.js";
import { sessionOf } from "../http/session-id.js";
import { errorAnswer } from "./error-answer.js";
import { EventStream } from "./event-stream.js";
import type { AnyFunction } from "./params.js";
import { readGenerator } from "./read-generator.js";
import { encode } from "./wire.js";

type Source = "hit" | "miss" | "coalesced" | "partial";

/** Receives what a served function threw. */
export type OnError = (error: unknown, call: { name: string }) => void;

export interface Call {
  name: string;
  fn: AnyFunction;
  /** Decoded and checked. */
  args: unknown[];
  request: HttpRequest;
  onError: OnError;
}

/** A call that ran to its end. */
interface Done {
  /** Encoded for the wire (`$binary` values). */
  result: unknown;
  source: Source;
  durationMs: number;
  status: CallStatus;
  report: CacheUsageReport<unknown>;
}

/** Why a call has no result: it failed, or its client left (nothing is sent then). */
type Stopped = { failed: HttpError } | { gone: true };

/**
 * The answer to a call: JSON once the call is done or, when the client accepts
 * `text/event-stream`, an event stream at once, which the call fills as it runs.
 */
export function answer(call: Call): Answer | Promise<Answer> {
  const accept = call.request.headers.accept;
  if (typeof accept !== "string" || !accept.includes("text/event-stream")) return json(call);
  const events = new EventStream(call.request.signal);
  stream(call, events).catch((error: unknown) => {
    // Only a throwing `onError` gets here; the stream still ends.
    console.error("infercache: serve() failed to answer a request:", error);
    events.end();
  });
  return events.answer();
}

async function json(call: Call): Promise<Answer> {
  const signal = call.request.signal;
  const outcome = await settle(call, signal, undefined);
  if (!("result" in outcome)) return stoppedAnswer(outcome);
  let body: string;
  try {
    body = JSON.stringify({ result: outcome.result });
  } catch (cause) {
    // A result JSON cannot carry (a BigInt, a cycle): the function's failure, not the client's.
    return stoppedAnswer(failed(call, cause, signal));
  }
  const { source, durationMs, status, report } = outcome;
  const saved = source === "hit" ? (status.computeMs ?? report.savedMs) : report.savedMs;
  return {
    status: 200,
    headers: {
      "content-type": "application/json",
      "x-infercache": source,
      "server-timing": serverTiming(source, durationMs, saved),
    },
    body,
  };
}

async function stream(call: Call, events: EventStream): Promise<void> {
  const outcome = await settle(call, events.signal, events);
  let stopped = "result" in outcome ? undefined : outcome;
  if ("result" in outcome) {
    const { result, source, durationMs, status, report } = outcome;
    try {
      void events.send("complete", {
        result,
        source,
        durationMs,
        computeMs: status.computeMs,
        savedMs: report.savedMs,
      });
    } catch (cause) {
      stopped = failed(call, cause, events.signal);
    }
  }
  if (stopped !== undefined && "failed" in stopped) {
    const { status, message } = stopped.failed;
    void events.send("error", { status, message });
  }
  events.end();
}

/** A client that left gets nothing: an answer to a closed connection is not written (499 is
 * only a name for it, nginx's "client closed request"). */
function stoppedAnswer(stopped: Stopped): Answer {
  return "failed" in stopped ? errorAnswer(stopped.failed) : { status: 499, headers: {}, body: "" };
}

/**
 * Runs the call in the caller's session under `signal`, and says where its result came from.
 * Throws only what `onError` throws: what the function threw is a failure, reported to it.
 */
async function settle(
  call: Call,
  signal: AbortSignal,
  events: EventStream | undefined,
): Promise<Done | Stopped> {
  const { fn, args, request } = call;
  const handle = handleOf(fn);
  const status: CallStatus = {};
  const started = performance.now();
  const run = async () => {
    let output: unknown;
    if (handle === undefined) {
      output = fn(...args);
    } else {
      const callOptions: CallOptions = { status, signal };
      if (events !== undefined)
        callOptions.onPosition = (update) => void events.send("position", update);
      output = handle.with(callOptions)(...args);
    }
    return isIterator(output)
      ? readGenerator(output as Iterator<unknown> | AsyncIterator<unknown>, events, signal)
      : await output;
  };
  // A cached function runs in its flight's computation; an uncached one gets the client's signal.
  const tracked = () =>
    trackCacheUsage(handle === undefined ? () => runComputation(signal, run) : run);
  const session = sessionOf(request.headers);
  try {
    const report = await (session === undefined ? tracked() : runInSession(session, tracked));
    if (signal.aborted) return { gone: true };
    const durationMs = performance.now() - started;
    const source = sourceOf(handle !== undefined, status, report);
    return { result: encode(report.result), source, durationMs, status, report };
  } catch (cause) {
    return failed(call, cause, signal);
  }
}

/** What a call that threw answers; `onError` gets the error unless the client's leaving was it. */
function failed(call: Call, cause: unknown, signal: AbortSignal): Stopped {
  const error =
    cause instanceof QueueFullError
      ? new HttpError(503, cause.message, { cause })
      : new HttpError(500, `infercache: \`${call.name}\` failed; the server's log has the error`, {
          cause,
        });
  // Leaving is not a failure; a function that failed after its client left still did.
  if (error.status === 500 && !(signal.aborted && cause === signal.reason))
    call.onError(cause, { name: call.name });
  return signal.aborted ? { gone: true } : { failed: error };
}

/**
 * Gradio's rule: "from cache" only when the served function's own result came from its cache
 * (a hit, or a share of another caller's computation); when it ran, "used cache" if anything
 * inside it came from a cache, else a miss.
 */
function sourceOf(cached: boolean, status: CallStatus, report: CacheUsageReport<unknown>): Source {
  if (cached && (status.source === "hit" || status.source === "coalesced")) return status.source;
  return report.usage === "none" ? "miss" : "partial";
}

/** The handle of a function made by `cache(fn)`, or `undefined` for any other function (one
 * with an unrelated `cache` property too, like lodash's `memoize`). */
function handleOf(fn: AnyFunction): { with(options: CallOptions): AnyFunction } | undefined {
  const handle: unknown = (fn as { cache?: unknown }).cache;
  return typeof handle === "object" &&
    handle !== null &&
    typeof (handle as { with?: unknown }).with === "function"
    ? (handle as { with(options: CallOptions): AnyFunction })
    : undefined;
}

function serverTiming(source: Source, durationMs: number, savedMs: number): string {
  const parts = [`total;desc="${source}";dur=${durationMs.toFixed(1)}`];
  const seconds = (savedMs / 1000).toFixed(1);
  if (source === "hit")
    parts.push(`compute;desc="from cache: ~${seconds} s";dur=${savedMs.toFixed(1)}`);
  if (source === "partial")
    parts.push(`cache;desc="used cache: ~${seconds} s saved";dur=${savedMs.toFixed(1)}`);
  return parts.join(", ");
}
