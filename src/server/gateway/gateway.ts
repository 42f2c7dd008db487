/**
 * The caching gateway: the LLM request pipeline behind a route table on node:http.
 *
 *   GET  /                  the dashboard page
 *   GET  /dashboard/*       its script, style and chart library (content-hashed names)
 *   GET  /events            dashboard aggregates (SSE)
 *   GET  /session/events    holds a session; its end drops the session's entries
 *   GET  /healthz           ok, or degraded with the store's reason
 *   GET  /metrics           Prometheus text
 *        /admin/*           stats, purge, forget an entry, the per-request feed (bearer token)
 *        /v1/*              the upstream's paths (its base URL's path: /v1, /v1beta, …) through the
 *                           pipeline: the protocols' routes are cached, the others pass through
 *
 * `createGateway()` builds the pieces; each lives in its own file: `tenants.ts`, `sessions.ts`,
 * `admin.ts`, `dashboard/`, `metrics.ts`, `upstream-queue.ts`, and the pipeline in `llm/`.
 */

import { randomBytes } from "node:crypto";
import type { Clock } from "../../base/clock.js";
import type { Duration } from "../../base/duration.js";
import { HookError } from "../../base/hook-error.js";
import type { CacheMode } from "../../base/mode.js";
import { nonNegativeInteger } from "../../base/validate.js";
import type { Answer } from "../../llm/answer.js";
import type { LlmResult } from "../../llm/call.js";
import { NAMESPACE_HEADER, type SamplingPolicy, sessionOf } from "../../llm/controls.js";
import type { LlmHooks } from "../../llm/hooks.js";
import { LlmPipeline } from "../../llm/pipeline.js";
import { header, type LlmRequest, type Protocol } from "../../llm/protocol.js";
import type { ItemizedProtocol } from "../../llm/protocols/embeddings.js";
import { traceLlmRequest } from "../../llm/tracing.js";
import {
  type Deadlines,
  fetchUpstream,
  httpUpstream,
  type Upstream,
  UpstreamError,
} from "../../llm/upstream.js";
import { QueueFullError } from "../../queue/queue-full-error.js";
import type { Store } from "../../store/store.js";
import { HttpError, json } from "../http/errors.js";
import {
  fetchHandlerOf,
  type HttpRequest,
  type ListenOptions,
  type NodeServer,
  nodeServer,
  Router,
} from "../http/node-http.js";
import { adminRoutes } from "./admin.js";
import { ASSET_PREFIX, dashboardAssets } from "./dashboard/assets.js";
import { DashboardFeed } from "./dashboard/feed.js";
import { Metrics } from "./metrics.js";
import { Sessions } from "./sessions.js";
import { Tenants } from "./tenants.js";
import { queuedUpstream } from "./upstream-queue.js";

type FetchHandler = (request: Request) => Promise<Response>;

export interface GatewayOptions extends Deadlines, LlmHooks {
  /**
   * What to cache: an upstream's base URL (`https://api.openai.com/v1`,
   * `http://127.0.0.1:11434/v1`), or a fetch-style handler (the local engine's `handle`).
   */
  upstream: string | FetchHandler;
  /** Where answers live. @default a MemoryStore of 1,000 entries */
  store?: Store;
  /** @default "gateway" */
  namespace?: string;
  /** Share entries between credentials (one tenant for all). @default false */
  sharedCache?: boolean;
  /**
   * Key of the tenant hash. @default the store's persisted secret where it keeps one (SQLite,
   * Redis), else random per process
   */
  tenantSecret?: string;
  /** Bearer token of the admin API; without it the admin API is off. */
  adminToken?: string;
  /** @default 10 MiB */
  bodyLimitBytes?: number;
  /** How long answers are fresh. @default forever */
  ttl?: Duration;
  /**
   * How long past its lifetime an answer is served at once (`x-infercache: stale`) while one
   * refresh runs in the background, unless a request's `Cache-Control: stale-while-revalidate=N`
   * says otherwise: ms or `"1m"`. Applies to answers with a lifetime: `ttl`, or the request's
   * `max-age` / `s-maxage`. @default 0
   */
  staleWhileRevalidate?: Duration;
  /**
   * How long past its lifetime an answer is served when the upstream fails (a 5xx, a timeout, a
   * refused connection, a dead local model, a full upstream queue) instead of the error, unless
   * a request's `Cache-Control: stale-if-error=N` says otherwise: ms or `"1h"`. @default 0
   */
  staleIfError?: Duration;
  /** Upstream calls at once and how many may wait; more get 503. @default no limit */
  upstreamQueue?: { concurrency: number; maxQueue?: number };
  /** The API families to cache. @default `defaultProtocols`: chat, completions, embeddings, Gemini, audio, images, rerank, moderations */
  protocols?: readonly (Protocol | ItemizedProtocol)[];
  /** Where failures are logged (one line each, never a secret). @default console.warn */
  logger?: { warn(message: string): void };
  /** Source of time for ages and lifetimes (tests drive a fake one). @default Date.now */
  clock?: Clock;
  /**
   * Web page origins (`https://app.example.com`) allowed to send requests other than GET; any
   * other page's are refused with 403 (SDKs send no `Origin`, and the dashboard is same-origin).
   * @default none
   */
  allowedOrigins?: readonly string[];
  /**
   * The namespaces a request may pick with `x-infercache-namespace` (others get 400). Without
   * it any valid name is taken: each costs a little bookkeeping in the store (a Redis index key
   * per namespace and session), so set it where clients are not trusted. @default any
   */
  namespaces?: readonly string[];
  /**
   * Sampled requests (temperature > 0 without a seed, speech, images): cache them, never, or keep
   * a bucket of N answers; a request may pick its own with `x-infercache-sampling`.
   * @default "cache"
   */
  sampling?: SamplingPolicy;
  /**
   * The cache mode of requests without an `x-infercache-mode` header: `"read-write"`,
   * `"read-only"` (serve hits, store nothing), `"refresh"` (always ask the upstream, store),
   * `"replay"` (serve hits; anything else is a 504 `cache_miss` and never reaches the
   * upstream — for test suites on recorded answers) or `"record"` (as read-write, and also
   * store sampled requests and `n > 1`, so that replay finds them).
   * @default "read-write"
   */
  mode?: CacheMode;
}

export interface Gateway {
  /** The routes as a fetch-style handler (`Request` → `Response`). */
  handle(request: Request): Promise<Response>;
  readonly server: NodeServer;
  readonly pipeline: LlmPipeline;
  /** Starts listening and resolves the base URL, e.g. `http://127.0.0.1:8080`. */
  listen(options?: ListenOptions): Promise<string>;
  /** Stops accepting, ends event streams, lets requests in flight finish (up to `timeoutMs`). */
  close(timeoutMs?: number): Promise<void>;
  readonly metrics: Metrics;
}

export function createGateway(options: GatewayOptions): Gateway {
  const given = options as GatewayOptions & { engine?: unknown; concurrency?: unknown };
  if (given.engine !== undefined || given.concurrency !== undefined) {
    throw new TypeError(
      "createGateway(): `engine` is now `upstream: engine.handle`, and `concurrency`/`maxQueue` are `upstreamQueue: { concurrency, maxQueue }`",
    );
  }
  if (
    options.adminToken !== undefined &&
    (typeof options.adminToken !== "string" || options.adminToken.length < 8)
  ) {
    throw new TypeError(
      "Expected `adminToken` to be a string of at least 8 characters (an empty one would open the admin API to everyone); leave it out to turn the admin API off",
    );
  }
  const bodyLimit = nonNegativeInteger(
    options.bodyLimitBytes ?? 10 * 1024 * 1024,
    "bodyLimitBytes",
  );
  const namespace = options.namespace ?? "gateway";
  const logger = options.logger ?? { warn: (message: string) => console.warn(message) };
  const { base, upstream } = upstreamOf(options);
  const dashboard = dashboardAssets();
  const metrics = new Metrics({ clock: options.clock });
  const feed = new DashboardFeed(metrics, {
    adminApi: options.adminToken !== undefined,
    clock: options.clock,
  });
  let tenants: Tenants | undefined;
  const secret = tenantSecret(options);
  const ready = secret.then((value) => {
    if (options.sharedCache !== true) tenants = new Tenants(value);
  });
  const pipeline = new LlmPipeline({
    upstream,
    namespace,
    store: options.store,
    ttl: options.ttl,
    staleWhileRevalidate: options.staleWhileRevalidate,
    staleIfError: options.staleIfError,
    clock: options.clock,
    sampling: options.sampling,
    mode: options.mode,
    protocols: options.protocols,
    redact: options.redact,
    noStore: options.noStore,
    ...(options.sharedCache !== true && {
      tenant: (request: LlmRequest) => (tenants as Tenants).of(request),
    }),
    onResult: (result: LlmResult) => {
      metrics.record(result);
      feed.record(result);
    },
  });
  const store = pipeline.store;
  metrics.attach(
    () => pipeline.stats(),
    () => store.health?.() ?? { state: "ok" },
  );
  const failures = new FailureLog(logger);
  const sessions = new Sessions(store, (error) => {
    metrics.recordFailure("store");
    failures.log("store", "could not end a session", error);
  });

  // The gateway mirrors the upstream's paths: with `https://api.openai.com/v1` it serves
  // `/v1/*`, with Gemini's `…/v1beta` it serves `/v1beta/*`, each forwarded to the same path.
  const origin = new URL(base).origin;
  const mount = new URL(base).pathname.replace(/\/+$/, "");
  const namespaces = options.namespaces === undefined ? undefined : new Set(options.namespaces);
  const llm = async (request: HttpRequest): Promise<Answer> => {
    const picked = header(request.headers, NAMESPACE_HEADER);
    if (picked !== undefined && namespaces !== undefined && !namespaces.has(picked)) {
      throw new HttpError(
        400,
        `${NAMESPACE_HEADER} must be one of the gateway's namespaces: ${[...namespaces].join(", ")}`,
      );
    }
    const url = new URL(`${origin}${request.path}${request.search}`);
    // `..` and `%2e%2e` resolve here: what leaves the upstream's base is not ours to forward
    // (with Ollama's /v1 as the base, it would reach its unauthenticated /api/*).
    if (!url.pathname.startsWith(`${mount}/`)) {
      throw new HttpError(400, `the path must stay under ${mount}/`);
    }
    const body = await request.body();
    const llmRequest = new GatewayRequest(request, url, body);
    try {
      const lookup = await pipeline.lookup(llmRequest);
      switch (lookup.kind) {
        case "hit":
        case "answer":
          return lookup.answer;
        case "miss":
          return await pipeline.complete(lookup.call);
        case "pass":
          return await pipeline.forward(llmRequest);
      }
    } catch (error) {
      return failed(error, url);
    }
  };

  const failed = (error: unknown, url: URL): Answer => {
    if (error instanceof QueueFullError) {
      metrics.recordFailure("queue-full");
      return new HttpError(503, error.message).answer();
    }
    if (error instanceof HookError) {
      // The message names the hook and the error's class, never what the hook was given.
      metrics.recordFailure("hook");
      failures.log(`hook-${error.hook}`, error.message, undefined);
      return new HttpError(500, error.message).answer();
    }
    if (error instanceof UpstreamError) {
      metrics.recordFailure(error.reason);
      failures.log(error.reason, `upstream ${url.host}: ${error.message}`, error.cause);
      return new HttpError(error.status, error.message).answer();
    }
    metrics.recordFailure("gateway");
    failures.log("gateway", "a request failed in the gateway", error);
    return new HttpError(500, "infercache: the gateway failed to answer; see its log").answer();
  };

  const router = new Router()
    .on("GET", "/", dashboard.page)
    .under("GET", ASSET_PREFIX, dashboard.asset)
    .on("GET", "/events", () => feed.stream(false))
    .on("GET", "/session/events", (request) => {
      const url = new URL(`${base}${request.search}`);
      const tenant = tenants?.ofParts(
        request.headers,
        url.search === "" ? undefined : url.searchParams,
      );
      let id: string | undefined;
      try {
        id = sessionOf(request.headers);
      } catch (error) {
        throw new HttpError(400, (error as Error).message);
      }
      return sessions.stream(id, tenant);
    })
    .on("GET", "/healthz", () => {
      const health = store.health?.() ?? { state: "ok" as const };
      return json(
        health.state === "ok"
          ? { status: "ok" }
          : { status: "degraded", store: { reason: health.reason, since: health.since } },
      );
    })
    .on("GET", "/metrics", () => ({
      status: 200,
      headers: { "content-type": "text/plain; version=0.0.4" },
      body: metrics.render(),
    }))
    .under("*", `${mount}/`, (request) =>
      traceLlmRequest(request.method, request.path, request.headers, () => llm(request)),
    );
  adminRoutes(router, {
    token: options.adminToken,
    store,
    namespace,
    metrics,
    feed,
    now: () => (options.clock ?? Date).now(),
  });

  const routes = router.handler();
  const allowed = new Set(options.allowedOrigins ?? []);
  const handler = async (request: HttpRequest): Promise<Answer> => {
    await ready;
    // A web page may send this gateway a POST without asking (a "simple" cross-origin request):
    // it would spend the operator's upstream, or a local model, for a page the operator never
    // saw. Browsers name the page in `Origin`; SDKs send none.
    const origin = header(request.headers, "origin");
    if (origin !== undefined && request.method !== "GET" && request.method !== "HEAD") {
      const host = header(request.headers, "host");
      const same = origin === `http://${host}` || origin === `https://${host}`;
      if (!same && !allowed.has(origin)) {
        throw new HttpError(
          403,
          "cross-origin requests are refused; start the gateway with this origin in allowedOrigins (--allowed-origin) to let a web page call it",
        );
      }
    }
    return routes(request);
  };
  const server = nodeServer(handler, {
    bodyLimitBytes: bodyLimit,
    onError: (error) => {
      metrics.recordFailure("gateway");
      failures.log("gateway", "a request failed in the gateway", error);
      return new HttpError(500, "infercache: the gateway failed to answer; see its log").answer();
    },
  });
  return {
    handle: fetchHandlerOf(handler, bodyLimit),
    server,
    pipeline,
    metrics,
    listen: async (listen) => {
      await ready;
      return server.listen(listen);
    },
    close: async (drainMs = 10_000) => {
      // Event streams never end on their own: end them, so the drain waits only for work.
      feed.closeAll();
      sessions.closeAll();
      await server.close(drainMs);
    },
  };
}

function upstreamOf(options: GatewayOptions): { base: string; upstream: Upstream } {
  const deadlines: Deadlines = {
    ...(options.firstByteTimeoutMs !== undefined && {
      firstByteTimeoutMs: options.firstByteTimeoutMs,
    }),
    ...(options.idleTimeoutMs !== undefined && { idleTimeoutMs: options.idleTimeoutMs }),
  };
  let base: string;
  let upstream: Upstream;
  if (typeof options.upstream === "function") {
    base = "http://local/v1";
    const handle = options.upstream;
    upstream = fetchUpstream((input, init) => handle(new Request(input, init)), deadlines);
  } else if (typeof options.upstream === "string" && /^https?:\/\/[^/]/.test(options.upstream)) {
    base = options.upstream.replace(/\/+$/, "");
    upstream = httpUpstream(deadlines);
  } else {
    throw new TypeError(
      `Expected \`upstream\` to be an http(s) base URL such as https://api.openai.com/v1, or a fetch-style handler, got \`${String(options.upstream)}\``,
    );
  }
  const queue = options.upstreamQueue;
  if (queue !== undefined) {
    const concurrency = nonNegativeInteger(queue.concurrency, "upstreamQueue.concurrency");
    const maxQueue = nonNegativeInteger(queue.maxQueue ?? 0, "upstreamQueue.maxQueue");
    if (concurrency === 0) {
      throw new TypeError(
        "Expected `upstreamQueue.concurrency` to be at least 1 (upstream calls at once)",
      );
    }
    upstream = queuedUpstream(upstream, concurrency, maxQueue);
  }
  return { base, upstream };
}

/** The tenant secret: given, persisted with the store, or random for this process. */
async function tenantSecret(options: GatewayOptions): Promise<string> {
  if (options.tenantSecret !== undefined) return options.tenantSecret;
  const persisted = await options.store?.secret?.("tenant-secret").catch(() => undefined);
  return persisted ?? randomBytes(32).toString("hex");
}

/**
 * Logs failures, at most one line per reason every 10 s (with how many were folded in), so a
 * dead upstream does not flood the log. Messages carry reasons and hosts, never headers or bodies.
 */
class FailureLog {
  readonly #logger: { warn(message: string): void };
  readonly #last = new Map<string, { at: number; folded: number }>();

  constructor(logger: { warn(message: string): void }) {
    this.#logger = logger;
  }

  log(reason: string, message: string, cause: unknown): void {
    const now = Date.now();
    const last = this.#last.get(reason);
    if (last !== undefined && now - last.at < 10_000) {
      last.folded++;
      return;
    }
    const folded = last?.folded ?? 0;
    this.#last.set(reason, { at: now, folded: 0 });
    const code = (cause as { code?: unknown } | undefined)?.code;
    this.#logger.warn(
      `infercache gateway: ${message}${typeof code === "string" ? ` (${code})` : ""}${folded > 0 ? `; ${folded} more like it since the last line` : ""}`,
    );
  }
}

/**
 * A gateway request as the pipeline reads it. A class, so `signal` is a getter on the prototype
 * (made only when asked for: a hit never is) and V8 keeps one fast shape for every request, where
 * an object literal with a getter is a dictionary on every read.
 */
class GatewayRequest implements LlmRequest {
  readonly method: string;
  readonly headers: LlmRequest["headers"];
  readonly #http: HttpRequest;

  constructor(
    http: HttpRequest,
    readonly url: URL,
    readonly body: Uint8Array,
  ) {
    this.#http = http;
    this.method = http.method;
    this.headers = http.headers;
  }

  get signal(): AbortSignal {
    return this.#http.signal;
  }
}
