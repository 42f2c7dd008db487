/**
 * `serve({ functions })`: cached functions over HTTP, on Fastify — Gradio's queue-backed app
 * without the UI.
 *
 * - `POST /call/:name` with `{ "args": [...] }` answers `{ "result": … }`. With
 *   `Accept: text/event-stream` it streams events: `position` (queue position and ETA) while the
 *   call waits, `yield` for each value a generator yields, then `complete` (or `error`).
 * - Every answer says where it came from: `x-infercache: hit | miss | coalesced | partial`, and
 *   `Server-Timing` with the duration and, for hits, the recorded compute time.
 * - Sessions: a session id from the `x-session-id` header or the `infercache-session` cookie; calls
 *   run in that session (per-session caches see it). `GET /session/events` holds the session open;
 *   when it disconnects, `endSession` drops that session's per-session entries. Calls without a
 *   session use the shared entries.
 * - Binary values travel as `{ "$binary": "<base64>", "type": "Float32Array" }` in arguments and
 *   results (Buffer/Uint8Array and every typed array).
 * - Bad input gets a 4xx JSON error saying what is wrong (unknown function, arguments that are not
 *   an array or not hashable, a body over the limit); a full queue gets 503 while hits still answer.
 */

import type { IncomingMessage } from "node:http";
import type { Socket } from "node:net";
import Fastify, { type FastifyInstance, type FastifyReply } from "fastify";
import { isIterator } from "../../cache/cache-fn.js";
import type { CallStatus } from "../../cache/core.js";
import type { QueuePosition } from "../../cache/scheduling.js";
import { endSession, runInSession } from "../../cache/session.js";
import { trackCacheUsage } from "../../cache/usage.js";
import { UnhashableError } from "../../key/encode.js";
import { QueueFullError } from "../../queue/queue-full-error.js";
import { sessionOf } from "../session-id.js";
import { type AnyFunction, checkArgs, type Param, parseParams } from "./params.js";
import { decode, encode } from "./wire.js";

export interface ServeFunctionsOptions {
  /** The functions to expose, by name: usually `cache(fn, { queue })` results. */
  functions: Record<string, AnyFunction>;
  /** @default 0 (a free port) */
  port?: number;
  /** @default "127.0.0.1" */
  host?: string;
  /** @default 10 MiB */
  bodyLimitBytes?: number;
  /**
   * Declared parameters per function, checked before a call: a type each — `string`, `number`,
   * `boolean`, `null`, `array`, `object`, `Buffer`, a typed array name (`Float32Array`…) or
   * `any` — with `?` for an optional one (`"number?"`) and `...` for a rest parameter
   * (`"...string"`). Without them only the count is checked: at least `fn.length` arguments.
   */
  params?: Record<string, string[]>;
}

export interface ServedApp {
  url: string;
  app: FastifyInstance;
  close(): Promise<void>;
}

export async function serve(options: ServeFunctionsOptions): Promise<ServedApp> {
  const signatures = new Map<string, Param[]>();
  for (const [name, spec] of Object.entries(options.params ?? {})) {
    if (!Object.hasOwn(options.functions, name))
      throw new TypeError(`serve(): \`params.${name}\` names no function in \`functions\``);
    signatures.set(name, parseParams(name, spec));
  }
  const app = Fastify({ bodyLimit: options.bodyLimitBytes ?? 10 * 1024 * 1024 });

  app.get("/healthz", async () => ({ status: "ok", functions: Object.keys(options.functions) }));

  app.get("/session/events", async (request, reply) => {
    const session = sessionOf(request.headers) ?? crypto.randomUUID();
    reply.hijack();
    reply.raw.writeHead(200, {
      "content-type": "text/event-stream",
      "cache-control": "no-cache",
      "set-cookie": `infercache-session=${session}; Path=/; HttpOnly; SameSite=Lax`,
    });
    reply.raw.write(`event: session\ndata: ${JSON.stringify({ session })}\n\n`);
    const heartbeat = setInterval(() => reply.raw.write(": keep-alive\n\n"), 15_000);
    request.raw.once("close", () => {
      clearInterval(heartbeat);
      void endSession(session);
    });
  });

  app.post<{ Params: { name: string }; Body: unknown }>("/call/:name", async (request, reply) => {
    const fn = Object.hasOwn(options.functions, request.params.name)
      ? options.functions[request.params.name]
      : undefined;
    if (fn === undefined) {
      return reply
        .code(404)
        .send(
          error(
            `no function \`${request.params.name}\`; available: ${Object.keys(options.functions).join(", ")}`,
          ),
        );
    }
    const body = request.body as { args?: unknown } | undefined;
    if (body === undefined || !Array.isArray(body.args)) {
      return reply.code(400).send(error('the body must be JSON like { "args": [ ... ] }'));
    }
    let args: unknown[];
    try {
      args = body.args.map(decode);
    } catch (cause) {
      return reply.code(400).send(error((cause as Error).message));
    }
    const wrong = checkArgs(request.params.name, fn, signatures.get(request.params.name), args);
    if (wrong !== undefined) return reply.code(400).send(error(wrong));
    const session = sessionOf(request.headers);
    const streaming = (request.headers.accept ?? "").includes("text/event-stream");
    const status: CallStatus = {};
    const started = performance.now();
    const cached = (fn as { cache?: { with(options: object): AnyFunction } }).cache;
    const send = streaming ? startEvents(reply) : undefined;
    const onPosition = (update: QueuePosition) => send?.("position", update);
    const invoke = () => {
      const target = cached === undefined ? fn : cached.with({ status, onPosition });
      return target(...args);
    };
    const run = async () => {
      const output = invoke();
      if (isIterator(output)) {
        let last: unknown;
        for await (const value of output as AsyncIterable<unknown>) {
          last = value;
          send?.("yield", encode(value));
        }
        return last;
      }
      return await output;
    };
    try {
      const report = await (session === undefined
        ? trackCacheUsage(run)
        : runInSession(session, () => trackCacheUsage(run)));
      const source =
        status.source ??
        (report.usage === "none" ? "miss" : report.usage === "full" ? "hit" : "partial");
      const timing = serverTiming(
        source,
        performance.now() - started,
        status.computeMs ?? report.savedMs,
      );
      if (send !== undefined) {
        send("complete", {
          result: encode(report.result),
          source,
          durationMs: performance.now() - started,
          computeMs: status.computeMs,
        });
        reply.raw.end();
        return reply;
      }
      return reply
        .header("x-infercache", source)
        .header("server-timing", timing)
        .send({ result: encode(report.result) });
    } catch (cause) {
      const [code, message] = failure(cause);
      if (send !== undefined) {
        send("error", { status: code, message });
        reply.raw.end();
        return reply;
      }
      return reply.code(code).send(error(message));
    }
  });

  // node:http's close() waits forever on a connection that never sent a request (a browser's
  // preconnect, or the spare one fetch opens after an aborted stream); it is not "idle" to it.
  const unused = new Set<Socket>();
  app.server.on("connection", (socket: Socket) => {
    unused.add(socket);
    socket.once("close", () => unused.delete(socket));
  });
  app.server.on("request", (request: IncomingMessage) => unused.delete(request.socket));

  const host = options.host ?? "127.0.0.1";
  await app.listen({ port: options.port ?? 0, host });
  const address = app.server.address();
  const port = typeof address === "object" && address !== null ? address.port : 0;
  const url = `http://${host.includes(":") ? `[${host}]` : host}:${port}`;
  const close = async () => {
    const closing = app.close();
    for (const socket of unused) socket.destroy();
    await closing;
  };
  return { url, app, close };
}

function startEvents(reply: FastifyReply): (event: string, data: unknown) => void {
  reply.hijack();
  reply.raw.writeHead(200, { "content-type": "text/event-stream", "cache-control": "no-cache" });
  return (event, data) => {
    reply.raw.write(`event: ${event}\ndata: ${JSON.stringify(data)}\n\n`);
  };
}

function failure(cause: unknown): [number, string] {
  if (cause instanceof QueueFullError) return [503, cause.message];
  if (cause instanceof UnhashableError) return [400, cause.message];
  if (cause instanceof TypeError && /argument/i.test(cause.message)) return [400, cause.message];
  return [500, `the function failed: ${(cause as Error)?.message ?? String(cause)}`];
}

function serverTiming(source: string, durationMs: number, computeMs: number | undefined): string {
  const parts = [`total;desc="${source}";dur=${durationMs.toFixed(1)}`];
  if (source === "hit" && computeMs !== undefined)
    parts.push(
      `compute;desc="from cache: ~${(computeMs / 1000).toFixed(1)} s";dur=${computeMs.toFixed(1)}`,
    );
  return parts.join(", ");
}

function error(message: string) {
  return { error: { message } };
}
