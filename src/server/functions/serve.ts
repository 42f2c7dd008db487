/**
 * `serve({ functions })`: cached functions over HTTP — Gradio's queue-backed app without the
 * UI — on the HTTP plumbing the gateway shares (`../http/`: a `Router` on node:http, `SseChannel`
 * event streams, `HttpError` answers).
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
 * - Bad input gets a 4xx JSON error saying what is wrong (`ArgumentError`, a body not sent as
 *   `application/json`, one past `bodyLimitBytes`); what the function throws is a 500 that keeps
 *   its message to the server (`onError`); a full queue gets 503 while hits still answer. Every
 *   error is `{ "error": { "message": … } }`.
 */

import type { Server } from "node:http";
import { positiveInteger } from "../../base/validate.js";
import type { Answer } from "../../llm/answer.js";
import { header, type RawHeaders } from "../../llm/protocol.js";
import { HttpError, json } from "../http/errors.js";
import {
  closeWhenIdle,
  type Handler,
  type HttpRequest,
  nodeServer,
  Router,
} from "../http/node-http.js";
import { ArgumentError } from "./argument-error.js";
import { answer, type OnError } from "./call.js";
import { errorAnswer } from "./error-answer.js";
import { type AnyFunction, checkArgs, type Param, parseParams } from "./params.js";
import { SessionEvents } from "./session-events.js";
import { decodeArgs } from "./wire.js";

export interface ServeFunctionsOptions {
  /** The functions to expose, by name: usually `cache(fn, { queue })` results. */
  functions: Record<string, AnyFunction>;
  /** @default 0 (a free port) */
  port?: number;
  /** @default "127.0.0.1" */
  host?: string;
  /** Request bodies past this get 413. @default 10 MiB */
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
  /** e.g. `http://127.0.0.1:41234` (IPv6 hosts in brackets) */
  url: string;
  /** The node:http server it listens with. */
  server: Server;
  /**
   * Stops accepting, ends session streams (which ends their sessions), lets calls in flight
   * finish for up to `timeoutMs`, then cuts what is left (their clients' signals fire).
   * @default timeoutMs 10000
   */
  close(timeoutMs?: number): Promise<void>;
}

const CALL = "/call/";

export async function serve(options: ServeFunctionsOptions): Promise<ServedApp> {
  const { functions } = options;
  const bodyLimitBytes = positiveInteger(
    options.bodyLimitBytes ?? 10 * 1024 * 1024,
    "bodyLimitBytes",
  );
  const signatures = new Map<string, Param[]>();
  for (const [name, spec] of Object.entries(options.params ?? {})) {
    if (!Object.hasOwn(functions, name))
      throw new TypeError(`serve(): \`params.${name}\` names no function in \`functions\``);
    signatures.set(name, parseParams(name, spec));
  }
  const onError = options.onError ?? logError;
  const sessions = new SessionEvents();

  const health = (): Answer => json({ status: "ok", functions: Object.keys(functions) });
  const call = async (request: HttpRequest): Promise<Answer> => {
    const name = nameOf(request.path);
    const fn = Object.hasOwn(functions, name) ? functions[name] : undefined;
    if (fn === undefined) {
      const available = Object.keys(functions).join(", ");
      throw new HttpError(404, `no function \`${name}\`; available: ${available}`);
    }
    requireJson(request.headers);
    const body = await request.body();
    let args: unknown[];
    try {
      args = argumentsOf(name, fn, signatures.get(name), body);
    } catch (cause) {
      if (cause instanceof ArgumentError) throw new HttpError(400, cause.message);
      throw cause;
    }
    return answer({ name, fn, args, request, onError });
  };
  const router = new Router()
    .on("GET", "/healthz", health)
    .on("HEAD", "/healthz", health)
    .on("GET", "/session/events", (request) => sessions.stream(request))
    .under("POST", CALL, call);

  // One place turns errors into answers, in serve()'s own shape.
  const handler: Handler = async (request) => {
    try {
      const route = router.match(request.method, request.path);
      if (route instanceof HttpError) return errorAnswer(route);
      return await route(request);
    } catch (error) {
      if (error instanceof HttpError) return errorAnswer(error);
      throw error;
    }
  };
  const served = nodeServer(handler, {
    bodyLimitBytes,
    onError: (error) => {
      console.error("infercache: serve() failed to answer a request:", error);
      return errorAnswer(
        new HttpError(500, "infercache: the server failed to answer; its log has the error"),
      );
    },
  });
  const closeIdle = closeWhenIdle(served.server);
  const url = await served.listen({ port: options.port ?? 0, host: options.host ?? "127.0.0.1" });
  return {
    url,
    server: served.server,
    close: async (timeoutMs = 10_000) => {
      // Session streams never end on their own: end them, so the drain waits only for calls.
      sessions.closeAll();
      const closing = served.close(timeoutMs);
      closeIdle();
      await closing;
    },
  };
}

/** The function's name in `/call/<name>`, percent-decoded. */
function nameOf(path: string): string {
  try {
    return decodeURIComponent(path.slice(CALL.length));
  } catch {
    throw new HttpError(
      400,
      "the function name in the path is not valid percent-encoding; encode it with encodeURIComponent",
    );
  }
}

/**
 * Only `application/json` bodies are read. Besides saying what to send, this keeps a web page
 * from calling functions with a form or a `text/plain` fetch, which browsers send cross-origin
 * without asking the server first (a CORS preflight).
 */
function requireJson(headers: RawHeaders): void {
  const type = header(headers, "content-type") ?? "";
  const media = (type.split(";")[0] as string).trim().toLowerCase();
  if (media === "application/json") return;
  const named =
    media === ""
      ? "none"
      : /^[\w.+/-]{1,64}$/.test(media)
        ? `\`${media}\``
        : `(a ${media.length}-character content type)`;
  throw new HttpError(
    415,
    `send the body as JSON with content-type: application/json, not ${named}`,
  );
}

function argumentsOf(
  name: string,
  fn: AnyFunction,
  params: Param[] | undefined,
  body: Buffer,
): unknown[] {
  let parsed: unknown;
  try {
    parsed = JSON.parse(body.toString("utf8"));
  } catch {
    // Not the parser's message: it quotes the body.
    throw new ArgumentError('the body is not valid JSON; send { "args": [ ... ] }');
  }
  const args = (parsed as { args?: unknown } | null)?.args;
  if (!Array.isArray(args))
    throw new ArgumentError('the body must be JSON like { "args": [ ... ] }');
  const decoded = decodeArgs(name, args);
  checkArgs(name, fn, params, decoded);
  return decoded;
}

function logError(cause: unknown, call: { name: string }): void {
  console.error(`infercache: served function \`${call.name}\` failed:`, cause);
}
