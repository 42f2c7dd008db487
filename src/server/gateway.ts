/**
 * The OpenAI-compatible caching gateway: a Fastify app (`gateway.listen()`) and the same routes as
 * a fetch-style handler (`gateway.handle(request)`) for any server that speaks Request/Response.
 *
 * - `/v1/chat/completions`, `/v1/completions`, `/v1/embeddings` go through `cachingFetch` to the
 *   upstream (a base URL, or the local llama engine); other `/v1/*` requests pass through. On the
 *   Fastify app, a chat or text completion that is a plain hit is answered from the raw body
 *   without Web Request/Response objects (the fast path); everything else takes the fetch path.
 * - Tenants: by default entries are partitioned by a keyed hash (HMAC-SHA-256) of the
 *   `Authorization` header, so one API key never reads another's answers; `sharedCache` turns
 *   that off. Authorization headers and bodies are never logged or echoed.
 * - Sessions: a request with an `x-session-id` header (or `infercache-session` cookie) reads and
 *   writes only that session's entries; `GET /session/events` holds the session, and when that
 *   stream disconnects the session's entries are dropped. Requests without a session use the
 *   tenant's shared entries, bounded by the store's limits.
 * - Queue: `concurrency` bounds the upstream calls at once (a stream holds its slot until it
 *   ends) and `maxQueue` the calls waiting for one; a full queue answers 503 while hits still
 *   answer, since hits never reach the upstream.
 * - `/healthz`, `/metrics` (Prometheus text), an admin API behind a bearer token
 *   (`GET /admin/stats`, `POST /admin/purge`, `DELETE /admin/entries/:key`), and a dashboard at
 *   `/` fed by `/events` (SSE).
 * - Limits: request bodies over `bodyLimitBytes` get 413; an upstream that does not answer within
 *   `upstreamTimeoutMs` gets 504; `close()` drains the requests in flight.
 */

import { createHmac, randomBytes, timingSafeEqual } from "node:crypto";
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest } from "fastify";
import { nonNegativeInteger } from "../base/validate.js";
import {
  type CachingFetch,
  cachingFetch,
  type LlmResult,
  type RequestHead,
} from "../llm/caching-fetch.js";
import { abortOnClose, toWebRequest, writeFailure, writeWebResponse } from "../llm/http-adapter.js";
import { Queue } from "../queue/queue.js";
import { QueueFullError } from "../queue/queue-full-error.js";
import type { Store } from "../store/store.js";
import { DASHBOARD_HTML, DashboardFeed } from "./dashboard.js";
import { Metrics } from "./metrics.js";
import { sessionOf } from "./session-id.js";

export interface GatewayOptions {
  /** The upstream's base URL, e.g. `https://api.openai.com/v1` or `http://127.0.0.1:11434/v1`. */
  upstream?: string;
  /** A local engine instead of an upstream URL (`LlamaEngine`). */
  engine?: { handle(request: Request): Promise<Response> };
  /** Where answers live. @default a MemoryStore of 1,000 entries */
  store?: Store;
  /** @default "gateway" */
  namespace?: string;
  /** Share entries between API keys. @default false */
  sharedCache?: boolean;
  /** Key of the tenant hash; set it to keep tenants' entries across restarts. @default random per process */
  tenantSecret?: string;
  /** Bearer token of the admin API; without it the admin API is off. */
  adminToken?: string;
  /** @default 10 MiB */
  bodyLimitBytes?: number;
  /** @default 120000 */
  upstreamTimeoutMs?: number;
  /** Upstream calls at once (cache misses). 0 = no limit. @default 0 */
  concurrency?: number;
  /** With `concurrency`: upstream calls allowed to wait for a slot; more get 503. 0 = no limit. @default 0 */
  maxQueue?: number;
}

export interface ListenOptions {
  /** @default 0 (a free port) */
  port?: number;
  /** @default "127.0.0.1" */
  host?: string;
}

export interface Gateway {
  /** The routes as a fetch-style handler. */
  handle(request: Request): Promise<Response>;
  /** The Fastify app (with the fast path for hits); `listen()` starts it. */
  readonly app: FastifyInstance;
  /** Starts the Fastify app and resolves its base URL, e.g. `http://127.0.0.1:8080`. */
  listen(options?: ListenOptions): Promise<string>;
  /** Stops accepting, lets requests in flight finish (up to `timeoutMs`), then closes. */
  close(timeoutMs?: number): Promise<void>;
  readonly metrics: Metrics;
  readonly fetch: CachingFetch;
}

type Upstream = (input: string | URL | Request, init?: RequestInit) => Promise<Response>;

export function createGateway(options: GatewayOptions): Gateway {
  if ((options.upstream === undefined) === (options.engine === undefined)) {
    throw new TypeError(
      "createGateway() needs exactly one of `upstream` (a base URL such as https://api.openai.com/v1) or `engine`",
    );
  }
  const upstreamBase = options.upstream?.replace(/\/+$/, "");
  if (upstreamBase !== undefined && !/^https?:\/\//.test(upstreamBase)) {
    throw new TypeError(
      `Expected \`upstream\` to be an http(s) base URL such as https://api.openai.com/v1, got \`${upstreamBase}\``,
    );
  }
  const base = upstreamBase ?? "http://local/v1";
  const bodyLimit = options.bodyLimitBytes ?? 10 * 1024 * 1024;
  const timeoutMs = options.upstreamTimeoutMs ?? 120_000;
  const secret = options.tenantSecret ?? randomBytes(32).toString("hex");
  const namespace = options.namespace ?? "gateway";
  const metrics = new Metrics();
  const feed = new DashboardFeed();
  const engine = options.engine;
  const direct: Upstream = (input, init) => {
    const signal = AbortSignal.any([
      AbortSignal.timeout(timeoutMs),
      ...(init?.signal ? [init.signal] : []),
    ]);
    const request = new Request(input, { ...init, signal });
    return engine !== undefined ? engine.handle(request) : fetch(request);
  };
  const concurrency = nonNegativeInteger(options.concurrency ?? 0, "concurrency");
  const maxQueue = nonNegativeInteger(options.maxQueue ?? 0, "maxQueue");
  if (maxQueue > 0 && concurrency === 0) {
    throw new TypeError(
      "createGateway(): `maxQueue` bounds the calls waiting for an upstream slot; set `concurrency` too",
    );
  }
  const upstream = concurrency > 0 ? slotted(direct, concurrency, maxQueue) : direct;

  const tenants = new Map<string, string>();
  const tenantOf = (authorization: string): string => {
    let tenant = tenants.get(authorization);
    if (tenant === undefined) {
      tenant = createHmac("sha256", secret).update(authorization).digest("hex");
      if (tenants.size >= 10_000) tenants.clear();
      tenants.set(authorization, tenant);
    }
    return tenant;
  };
  const fetchThrough = cachingFetch({
    fetch: upstream,
    namespace,
    ...(options.store !== undefined && { store: options.store }),
    ...(options.sharedCache !== true && {
      tenant: (head: RequestHead) => {
        const authorization = head.headers.get("authorization");
        return authorization === null ? undefined : tenantOf(authorization);
      },
    }),
    session: (head: RequestHead) => sessionOf(head.headers),
    onResult: (result: LlmResult) => {
      metrics.record(result);
      feed.record(result);
    },
  });
  metrics.attach(() => fetchThrough.cache.stats());
  const store = fetchThrough.cache.store;

  // Every namespace: a session may have picked others with x-infercache-namespace.
  const endSession = async (session: string): Promise<void> => {
    await store.clear({ session }).catch(() => {
      metrics.errors++;
    });
  };

  const openSessions = new Set<() => Promise<void>>();

  const handle = async (request: Request): Promise<Response> => {
    const url = new URL(request.url);
    const path = url.pathname;
    if (path === "/healthz") return json({ status: "ok" });
    if (path === "/" && request.method === "GET") {
      return new Response(DASHBOARD_HTML, {
        headers: { "content-type": "text/html; charset=utf-8" },
      });
    }
    if (path === "/events" && request.method === "GET")
      return feed.stream(() => metrics.snapshot());
    if (path === "/session/events" && request.method === "GET")
      return sessionStream(sessionOf(request.headers), endSession, openSessions);
    if (path === "/metrics")
      return new Response(metrics.render(), {
        headers: { "content-type": "text/plain; version=0.0.4" },
      });
    if (path.startsWith("/admin/")) return admin(request, url);
    if (!path.startsWith("/v1/")) return error(404, `no route for ${path}; the API is under /v1`);
    const length = Number(request.headers.get("content-length") ?? 0);
    if (length > bodyLimit)
      return error(413, `the request body is ${length} bytes; the limit is ${bodyLimit}`);
    let body: ArrayBuffer | undefined;
    if (request.method !== "GET" && request.method !== "HEAD") {
      body = await request.arrayBuffer();
      if (body.byteLength > bodyLimit)
        return error(413, `the request body is over the limit of ${bodyLimit} bytes`);
    }
    const target = `${base}${path.slice("/v1".length)}${url.search}`;
    const headers = new Headers(request.headers);
    headers.delete("host");
    headers.delete("content-length");
    try {
      return await fetchThrough(target, {
        method: request.method,
        headers,
        ...(body !== undefined && { body }),
        signal: request.signal,
      });
    } catch (cause) {
      if (cause instanceof QueueFullError) return error(503, cause.message);
      metrics.errors++;
      const timedOut = (cause as { name?: string }).name === "TimeoutError";
      return error(
        timedOut ? 504 : 502,
        timedOut
          ? `the upstream did not answer within ${timeoutMs} ms`
          : "the upstream could not be reached",
      );
    }
  };

  const admin = async (request: Request, url: URL): Promise<Response> => {
    const token = options.adminToken;
    if (token === undefined)
      return error(404, "the admin API is off: start the gateway with an admin token");
    const given = (request.headers.get("authorization") ?? "").replace(/^Bearer\s+/i, "");
    if (!sameSecret(given, token))
      return error(401, "the admin API needs `Authorization: Bearer <admin token>`");
    const path = url.pathname;
    if (path === "/admin/stats" && request.method === "GET") return json(metrics.snapshot());
    if (path === "/admin/purge" && request.method === "POST") {
      const text = await request.text();
      let wanted: { namespace?: unknown };
      try {
        wanted = text === "" ? {} : (JSON.parse(text) as { namespace?: unknown });
      } catch {
        return error(400, 'the body must be JSON like { "namespace": "gateway" } (or empty)');
      }
      if (wanted.namespace !== undefined && typeof wanted.namespace !== "string")
        return error(400, "`namespace` must be a string");
      const removed = await store.clear({ namespace: wanted.namespace ?? namespace });
      return json({ removed });
    }
    if (path.startsWith("/admin/entries/") && request.method === "DELETE") {
      const key = decodeURIComponent(path.slice("/admin/entries/".length));
      if (key === "")
        return error(400, "name the entry: DELETE /admin/entries/<x-infercache-key of a response>");
      const session = url.searchParams.get("session");
      const deleted = await store.delete(key, {
        namespace: url.searchParams.get("namespace") ?? namespace,
        ...(session !== null && { session }),
      });
      return json({ deleted });
    }
    return error(404, `no admin route for ${request.method} ${path}`);
  };

  const app = Fastify({ bodyLimit, forceCloseConnections: "idle" });
  app.removeAllContentTypeParsers();
  app.addContentTypeParser("*", { parseAs: "buffer" }, (_request, body, done) => done(null, body));
  app.setErrorHandler(
    (cause: { statusCode?: number; code?: string; message: string }, request, reply) => {
      if (cause.code === "FST_ERR_CTP_BODY_TOO_LARGE") {
        const length = request.headers["content-length"];
        const message =
          length === undefined
            ? `the request body is over the limit of ${bodyLimit} bytes`
            : `the request body is ${length} bytes; the limit is ${bodyLimit}`;
        return reply.code(413).send(errorBody(413, message));
      }
      const status =
        cause.statusCode !== undefined && cause.statusCode < 500 ? cause.statusCode : 500;
      return reply.code(status).send(errorBody(status, cause.message));
    },
  );
  const viaFetch = (request: FastifyRequest, reply: FastifyReply) => bridge(handle, request, reply);
  const fast = async (request: FastifyRequest, reply: FastifyReply) => {
    const body = request.body;
    if (Buffer.isBuffer(body)) {
      const head = headOf(`${base}${request.url.slice("/v1".length)}`, request);
      const answer = await fetchThrough.cache.answer(head, body.toString("utf8"));
      if (answer !== undefined)
        return reply.code(answer.status).headers(answer.headers).send(answer.body);
    }
    return bridge(handle, request, reply);
  };
  app.post("/v1/chat/completions", fast);
  app.post("/v1/completions", fast);
  app.all("/*", viaFetch);
  app.all("/", viaFetch);

  return {
    handle,
    app,
    metrics,
    fetch: fetchThrough,
    listen: async (listen = {}) => {
      const host = listen.host ?? "127.0.0.1";
      await app.listen({ port: listen.port ?? 0, host });
      const address = app.server.address();
      const port = typeof address === "object" && address !== null ? address.port : 0;
      return `http://${host.includes(":") ? `[${host}]` : host}:${port}`;
    },
    close: async (drainMs = 10_000) => {
      // Event streams never finish on their own: end them, so the drain waits only for work.
      feed.closeAll();
      await Promise.all([...openSessions].map((end) => end()));
      const timer = setTimeout(() => app.server.closeAllConnections(), drainMs);
      try {
        await app.close();
      } finally {
        clearTimeout(timer);
      }
    },
  };
}

/** Serves a Fastify request through the fetch-style handler. */
async function bridge(
  handle: (request: Request) => Promise<Response>,
  request: FastifyRequest,
  reply: FastifyReply,
): Promise<void> {
  reply.hijack();
  const controller = abortOnClose(reply.raw);
  try {
    const body = Buffer.isBuffer(request.body) ? request.body : undefined;
    const response = await handle(toWebRequest(request.raw, body, controller.signal));
    await writeWebResponse(response, reply.raw, controller.signal);
  } catch (cause) {
    writeFailure(reply.raw, cause);
  }
}

function headOf(url: string, request: FastifyRequest): RequestHead {
  const headers = request.headers;
  return {
    url,
    method: request.method,
    headers: {
      get: (name: string) => {
        const value = headers[name.toLowerCase()];
        return value === undefined ? null : Array.isArray(value) ? value.join(", ") : value;
      },
    },
  };
}

/**
 * Bounds the upstream calls at once; a call holds its slot until its response body is read to
 * the end or cancelled (a stream keeps its slot while it streams).
 */
function slotted(upstream: Upstream, concurrency: number, maxQueue: number): Upstream {
  const queue = new Queue({ maxSize: maxQueue });
  const lane = queue.lane({ concurrency, name: "upstream" });
  return (input, init) =>
    new Promise<Response>((resolve, reject) => {
      lane
        .run(async () => {
          const response = await upstream(input, init);
          if (response.body === null) return response;
          let release!: () => void;
          const released = new Promise<void>((done) => {
            release = done;
          });
          const reader = response.body.getReader();
          const body = new ReadableStream<Uint8Array>({
            pull: async (controller) => {
              try {
                const { done, value } = await reader.read();
                if (done) {
                  controller.close();
                  release();
                } else controller.enqueue(value);
              } catch (cause) {
                controller.error(cause);
                release();
              }
            },
            cancel: async (reason) => {
              release();
              await reader.cancel(reason);
            },
          });
          resolve(
            new Response(body, {
              status: response.status,
              statusText: response.statusText,
              headers: response.headers,
            }),
          );
          await released;
          return response;
        })
        .catch(reject);
    });
}

/** The event stream that holds a session: its end (a disconnect) drops the session's entries. */
function sessionStream(
  given: string | undefined,
  end: (session: string) => Promise<void>,
  open: Set<() => Promise<void>>,
): Response {
  const session = given ?? crypto.randomUUID();
  const encoder = new TextEncoder();
  let heartbeat: ReturnType<typeof setInterval> | undefined;
  // The client left (cancel) or the gateway closes (shutdown): either way the session ends once.
  const finish = async () => {
    if (!open.delete(shutdown)) return;
    clearInterval(heartbeat);
    await end(session);
  };
  let shutdown = finish;
  const body = new ReadableStream<Uint8Array>({
    start: (controller) => {
      shutdown = async () => {
        controller.close();
        await finish();
      };
      open.add(shutdown);
      controller.enqueue(
        encoder.encode(`event: session\ndata: ${JSON.stringify({ session })}\n\n`),
      );
      heartbeat = setInterval(() => controller.enqueue(encoder.encode(": keep-alive\n\n")), 15_000);
    },
    cancel: finish,
  });
  return new Response(body, {
    headers: {
      "content-type": "text/event-stream",
      "cache-control": "no-cache",
      "set-cookie": `infercache-session=${session}; Path=/; HttpOnly; SameSite=Lax`,
    },
  });
}

function sameSecret(given: string, expected: string): boolean {
  const a = Buffer.from(given);
  const b = Buffer.from(expected);
  return a.length === b.length && timingSafeEqual(a, b);
}

function json(value: unknown, status = 200): Response {
  return new Response(JSON.stringify(value), {
    status,
    headers: { "content-type": "application/json" },
  });
}

function errorBody(status: number, message: string) {
  return { error: { message, type: status >= 500 ? "upstream_error" : "invalid_request_error" } };
}

function error(status: number, message: string): Response {
  return json(errorBody(status, message), status);
}
