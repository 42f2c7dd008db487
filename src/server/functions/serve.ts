/**
 * `serve({ functions })`: cached functions over HTTP, on Fastify — Gradio's queue-backed app
 * without the UI.
 *
 * - `POST /call/:name` with `{ "args": [...] }` answers `{ "result": … }`. With
 *   `Accept: text/event-stream` it streams events: `position` (queue position and ETA) while the
 *   call waits, `yield` for each value a generator yields, then `complete` (or `error`).
 * - Every answer says where it came from, as Gradio's badge does: `x-infercache: hit` ("from
 *   cache") or `coalesced` only when the served function is cached and its own call was answered
 *   that way; `partial` ("used cache") when it ran and cached work inside it was reused; else
 *   `miss`. `Server-Timing` carries the duration and the compute time the cache saved.
 * - A client that leaves stops its call: the call's signal aborts (a cached call leaves its
 *   flight; an uncached function sees it as `currentSignal()`) and a generator is closed.
 * - Sessions: a session id from the `x-session-id` header or the `infercache-session` cookie; calls
 *   run in that session (per-session caches see it). `GET /session/events` holds the session open;
 *   when it disconnects, `endSession` drops that session's per-session entries. Calls without a
 *   session use the shared entries.
 * - Binary values travel as `{ "$binary": "<base64>", "type": "Float32Array" }` (`./wire.ts`).
 * - Bad input gets a 4xx JSON error saying what is wrong (`ArgumentError`); what the function
 *   throws is a 500 that keeps its message to the server (`onError`); a full queue gets 503 while
 *   hits still answer.
 */

import type { IncomingMessage } from "node:http";
import type { Socket } from "node:net";
import Fastify, { type FastifyInstance } from "fastify";
import { endSession } from "../../cache/session.js";
import { sessionOf } from "../http/session-id.js";
import { ArgumentError } from "./argument-error.js";
import { answer, errorBody, type OnError } from "./call.js";
import { type AnyFunction, checkArgs, type Param, parseParams } from "./params.js";
import { decodeArgs } from "./wire.js";

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
  /**
   * Receives what a served function threw (its client gets a 500 without the message, which may
   * hold user content).
   * @default logs it with `console.error`
   */
  onError?: OnError;
}

export interface ServedApp {
  url: string;
  app: FastifyInstance;
  close(): Promise<void>;
}

export async function serve(options: ServeFunctionsOptions): Promise<ServedApp> {
  const { functions } = options;
  const signatures = new Map<string, Param[]>();
  for (const [name, spec] of Object.entries(options.params ?? {})) {
    if (!Object.hasOwn(functions, name))
      throw new TypeError(`serve(): \`params.${name}\` names no function in \`functions\``);
    signatures.set(name, parseParams(name, spec));
  }
  const onError = options.onError ?? logError;
  const app = Fastify({ bodyLimit: options.bodyLimitBytes ?? 10 * 1024 * 1024 });

  app.get("/healthz", async () => ({ status: "ok", functions: Object.keys(functions) }));

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
    const name = request.params.name;
    const fn = Object.hasOwn(functions, name) ? functions[name] : undefined;
    if (fn === undefined) {
      const available = Object.keys(functions).join(", ");
      return reply.code(404).send(errorBody(`no function \`${name}\`; available: ${available}`));
    }
    let args: unknown[];
    try {
      args = argumentsOf(name, fn, signatures.get(name), request.body);
    } catch (cause) {
      if (!(cause instanceof ArgumentError)) throw cause;
      return reply.code(400).send(errorBody(cause.message));
    }
    return answer({ name, fn, args, request, reply, onError });
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

function argumentsOf(
  name: string,
  fn: AnyFunction,
  params: Param[] | undefined,
  body: unknown,
): unknown[] {
  const args = (body as { args?: unknown } | undefined)?.args;
  if (!Array.isArray(args))
    throw new ArgumentError('the body must be JSON like { "args": [ ... ] }');
  const decoded = decodeArgs(name, args);
  checkArgs(name, fn, params, decoded);
  return decoded;
}

function logError(cause: unknown, call: { name: string }): void {
  console.error(`infercache: served function \`${call.name}\` failed:`, cause);
}
