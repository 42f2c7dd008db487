/**
 * The OpenAI-compatible caching gateway, as a fetch-style handler (`(request) => Response`), so
 * it runs on node:http, Fastify or anything that speaks Request/Response.
 *
 * - `/v1/chat/completions`, `/v1/completions`, `/v1/embeddings` go through `cachingFetch` to the
 *   upstream (a base URL, or the local llama engine); other `/v1/*` requests pass through.
 * - Tenants: by default entries are partitioned by a keyed hash (HMAC-SHA-256) of the
 *   `Authorization` header, so one API key never reads another's answers; `sharedCache` turns
 *   that off. Authorization headers and bodies are never logged or echoed.
 * - `/healthz`, `/metrics` (Prometheus text), an admin API behind a bearer token
 *   (`/admin/stats`, `POST /admin/purge`), and a dashboard at `/` fed by `/events` (SSE).
 * - Limits: request bodies over `bodyLimitBytes` get 413; an upstream that does not answer within
 *   `upstreamTimeoutMs` gets 504.
 */

import { createHmac, randomBytes, timingSafeEqual } from "node:crypto";
import { type CachingFetch, cachingFetch, type LlmResult } from "../llm/caching-fetch.js";
import type { Store } from "../store/store.js";
import { DASHBOARD_HTML, DashboardFeed } from "./dashboard.js";
import { Metrics } from "./metrics.js";

export interface GatewayOptions {
  /** The upstream's base URL, e.g. `https://api.openai.com/v1` or `http://127.0.0.1:11434/v1`. */
  upstream?: string;
  /** A local engine instead of an upstream URL (`LlamaEngine`). */
  engine?: { handle(request: Request): Promise<Response> };
  /** Where answers live. @default a MemoryStore */
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
}

export interface Gateway {
  handle(request: Request): Promise<Response>;
  readonly metrics: Metrics;
  readonly fetch: CachingFetch;
}

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
  const bodyLimit = options.bodyLimitBytes ?? 10 * 1024 * 1024;
  const timeoutMs = options.upstreamTimeoutMs ?? 120_000;
  const secret = options.tenantSecret ?? randomBytes(32).toString("hex");
  const metrics = new Metrics();
  const feed = new DashboardFeed();
  const engine = options.engine;
  const upstream = async (input: string | URL | Request, init?: RequestInit): Promise<Response> => {
    const signal = AbortSignal.any([
      AbortSignal.timeout(timeoutMs),
      ...(init?.signal ? [init.signal] : []),
    ]);
    const request = new Request(input, { ...init, signal });
    return engine !== undefined ? engine.handle(request) : fetch(request);
  };
  const fetchThrough = cachingFetch({
    fetch: upstream,
    namespace: options.namespace ?? "gateway",
    ...(options.store !== undefined && { store: options.store }),
    ...(options.sharedCache !== true && {
      tenant: (request: Request) => {
        const authorization = request.headers.get("authorization");
        return authorization === null
          ? undefined
          : createHmac("sha256", secret).update(authorization).digest("hex");
      },
    }),
    onResult: (result: LlmResult) => {
      metrics.record(result);
      feed.record(result);
    },
  });
  metrics.attach(() => fetchThrough.cache.stats());

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
    if (path === "/metrics")
      return new Response(metrics.render(), {
        headers: { "content-type": "text/plain; version=0.0.4" },
      });
    if (path.startsWith("/admin/")) return admin(request, path);
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
    const target = `${upstreamBase ?? "http://local/v1"}${path.slice("/v1".length)}${url.search}`;
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

  const admin = async (request: Request, path: string): Promise<Response> => {
    const token = options.adminToken;
    if (token === undefined)
      return error(404, "the admin API is off: start the gateway with an admin token");
    const given = (request.headers.get("authorization") ?? "").replace(/^Bearer\s+/i, "");
    if (!sameSecret(given, token))
      return error(401, "the admin API needs `Authorization: Bearer <admin token>`");
    if (path === "/admin/stats" && request.method === "GET") return json(metrics.snapshot());
    if (path === "/admin/purge" && request.method === "POST") {
      const text = await request.text();
      const wanted = text === "" ? {} : (JSON.parse(text) as { namespace?: string });
      const store = fetchThrough.cache.store;
      const removed = await store.clear(
        wanted.namespace === undefined
          ? { namespace: fetchThrough.cache.namespace }
          : { namespace: wanted.namespace },
      );
      return json({ removed });
    }
    return error(404, `no admin route for ${request.method} ${path}`);
  };

  return { handle, metrics, fetch: fetchThrough };
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

function error(status: number, message: string): Response {
  return json(
    { error: { message, type: status >= 500 ? "upstream_error" : "invalid_request_error" } },
    status,
  );
}
