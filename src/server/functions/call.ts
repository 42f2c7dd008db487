/**
 * Answers one call of `serve({ functions })`: runs the function in the caller's session and
 * under the client's signal, reads a generator, and says where the answer came from
 * (`x-infercache`, `Server-Timing`, or the `complete` event) — or what failed, without the
 * function's own message.
 */

import type { FastifyReply, FastifyRequest } from "fastify";
import type { CallOptions } from "../../cache/cache-fn.js";
import { runComputation } from "../../cache/computation.js";
import { isIterator } from "../../cache/function-kind.js";
import { runInSession } from "../../cache/session.js";
import type { CallStatus } from "../../cache/telemetry.js";
import { type CacheUsageReport, trackCacheUsage } from "../../cache/usage.js";
import { QueueFullError } from "../../queue/queue-full-error.js";
import { abortOnClose } from "../http/node-http.js";
import { sessionOf } from "../http/session-id.js";
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
  request: FastifyRequest;
  reply: FastifyReply;
  onError: OnError;
}

export async function answer(call: Call): Promise<FastifyReply> {
  const { name, fn, args, request, reply, onError } = call;
  const handle = handleOf(fn);
  const status: CallStatus = {};
  const started = performance.now();
  // Fires when the client goes before its answer is out.
  const { signal } = abortOnClose(reply.raw);
  let events: EventStream | undefined;
  if ((request.headers.accept ?? "").includes("text/event-stream")) {
    reply.hijack();
    events = new EventStream(reply.raw);
  }
  const run = async () => {
    let output: unknown;
    if (handle === undefined) {
      output = fn(...args);
    } else {
      const callOptions: CallOptions = { status, signal };
      const stream = events;
      if (stream !== undefined)
        callOptions.onPosition = (update) => void stream.send("position", update);
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
  let report: CacheUsageReport<unknown>;
  try {
    report = await (session === undefined ? tracked() : runInSession(session, tracked));
  } catch (cause) {
    const [code, message] = failure(name, cause);
    if (!signal.aborted) {
      if (events !== undefined) {
        void events.send("error", { status: code, message });
        events.end();
      } else {
        reply.code(code).send(errorBody(message));
      }
    }
    // Leaving is not a failure; a function that failed after its client left still did.
    if (code === 500 && !(signal.aborted && cause === signal.reason)) onError(cause, { name });
    return signal.aborted ? hangUp(reply) : reply;
  }
  if (signal.aborted) return hangUp(reply);
  const source = sourceOf(handle !== undefined, status, report);
  const durationMs = performance.now() - started;
  const result = encode(report.result);
  if (events !== undefined) {
    const { computeMs } = status;
    void events.send("complete", {
      result,
      source,
      durationMs,
      computeMs,
      savedMs: report.savedMs,
    });
    events.end();
    return reply;
  }
  const saved = source === "hit" ? (status.computeMs ?? report.savedMs) : report.savedMs;
  return reply
    .header("x-infercache", source)
    .header("server-timing", serverTiming(source, durationMs, saved))
    .send({ result });
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

/** The client is gone: nothing to send. */
function hangUp(reply: FastifyReply): FastifyReply {
  if (!reply.sent) reply.hijack();
  return reply;
}

function failure(name: string, cause: unknown): [number, string] {
  if (cause instanceof QueueFullError) return [503, cause.message];
  return [500, `infercache: \`${name}\` failed; the server's log has the error`];
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

export function errorBody(message: string) {
  return { error: { message } };
}
