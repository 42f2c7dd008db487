/**
 * `cachingFetch(options)`: a `fetch` for the OpenAI SDK (`new OpenAI({ fetch })`) and any
 * OpenAI-compatible client, that answers repeated requests from a cache. It is the request
 * pipeline (`pipeline.ts`) behind a `fetch`: Web `Request` in, Web `Response` out, and the
 * given `fetch` as the upstream.
 *
 * It caches POST `/chat/completions`, `/completions` and `/embeddings`; everything else passes
 * through untouched. What is cached, how streams are recorded and replayed, what is never
 * stored and which request fields are in a key: see `pipeline.ts` and `protocols/`.
 */

import type { Clock } from "../base/clock.js";
import type { Duration } from "../base/duration.js";
import type { Listener } from "../base/emitter.js";
import type { CacheMode } from "../base/mode.js";
import { type PurgeOptions, purgeFilter } from "../cache/purge.js";
import type { CacheEvents } from "../cache/telemetry.js";
import type { Store } from "../store/store.js";
import { type Answer, isByteStream, toWebStream } from "./answer.js";
import type { LlmResult } from "./call.js";
import type { SamplingPolicy } from "./controls.js";
import { autoTag } from "./entry-tags.js";
import type { LlmHooks } from "./hooks.js";
import { LlmPipeline, type PipelineStats } from "./pipeline.js";
import type { LlmRequest, Protocol, RawHeaders } from "./protocol.js";
import type { ItemizedProtocol } from "./protocols/embeddings.js";
import { type Deadlines, fetchUpstream } from "./upstream.js";

type Fetch = (input: string | URL | Request, init?: RequestInit) => Promise<Response>;

/** What `tenant` and `session` see of a request. */
export interface RequestHead {
  readonly url: string;
  readonly method: string;
  readonly headers: { get(name: string): string | null };
}

export interface CachingFetchOptions extends Deadlines, LlmHooks {
  /** Where answers live. @default a MemoryStore of 1,000 entries */
  store?: Store;
  /** Namespace of the entries in the store. @default "llm" */
  namespace?: string;
  /** The upstream fetch. @default globalThis.fetch */
  fetch?: Fetch;
  /** How long answers are fresh. @default forever */
  ttl?: Duration;
  /**
   * How long past its lifetime an answer is served at once (`x-infercache: stale`) while one
   * refresh runs in the background; a request's `Cache-Control: stale-while-revalidate=N`
   * overrides it. Applies to answers with a lifetime (`ttl`, or the request's `max-age`). @default 0
   */
  staleWhileRevalidate?: Duration;
  /**
   * How long past its lifetime an answer is served instead of an upstream failure (a 5xx, a
   * timeout, a refused connection); a request's `Cache-Control: stale-if-error=N` overrides it.
   * @default 0
   */
  staleIfError?: Duration;
  /** Source of time for lifetimes and ages (tests drive a fake one). @default Date.now */
  clock?: Clock;
  /** Bump to stop serving everything cached before. */
  version?: string | number;
  /** A tenant per request (e.g. a keyed hash of its API key): tenants never share entries. */
  tenant?: (request: RequestHead) => string | undefined;
  /** Sampled requests (temperature > 0 without a seed). @default "cache" */
  sampling?: SamplingPolicy;
  /** Cache requests with `n > 1`. @default false */
  cacheMultipleChoices?: boolean;
  /**
   * The cache mode of requests that name none (`x-infercache-mode`, which is never sent on)
   * outside any `withCacheMode`: `"read-write"`, `"read-only"`, `"refresh"`, `"replay"` (a
   * miss is a 504 `cache_miss` answer, and nothing reaches `fetch`) or `"record"` (also stores
   * sampled requests and `n > 1`).
   * @default "read-write"
   */
  mode?: CacheMode;
  /** Delay between replayed stream events, ms (to look like a live stream). @default 0 */
  replayDelayMs?: number;
  /** The API families to cache. @default `defaultProtocols`: chat, completions, embeddings, Gemini, audio, images, rerank, moderations */
  protocols?: readonly (Protocol | ItemizedProtocol)[];
  /** Called after every cacheable request with what happened (for metrics and dashboards). */
  onResult?: (result: LlmResult) => void;
}

export type CachingFetchStats = PipelineStats;

export type CachingFetch = Fetch & {
  readonly cache: {
    readonly store: Store;
    readonly namespace: string;
    stats(): CachingFetchStats;
    clear(): Promise<number>;
    /**
     * Drops the answers carrying a tag (`x-infercache-tags`), for a model, or written before an
     * age (fields combine with AND); resolves to how many. Rejects on an empty filter.
     */
    purge(options: PurgeOptions & { model?: string }): Promise<number>;
    on<K extends keyof CacheEvents>(type: K, listener: Listener<CacheEvents[K]>): () => void;
  };
};

export function cachingFetch(options: CachingFetchOptions = {}): CachingFetch {
  const upstreamFetch: Fetch = options.fetch ?? ((input, init) => globalThis.fetch(input, init));
  const tenant = options.tenant;
  const pipeline = new LlmPipeline({
    store: options.store,
    namespace: options.namespace,
    ttl: options.ttl,
    staleWhileRevalidate: options.staleWhileRevalidate,
    staleIfError: options.staleIfError,
    clock: options.clock,
    version: options.version,
    sampling: options.sampling,
    cacheMultipleChoices: options.cacheMultipleChoices,
    mode: options.mode,
    replayDelayMs: options.replayDelayMs,
    protocols: options.protocols,
    onResult: options.onResult,
    redact: options.redact,
    noStore: options.noStore,
    upstream: fetchUpstream(upstreamFetch, options),
    ...(tenant !== undefined && { tenant: (request: LlmRequest) => tenant(headOf(request)) }),
  });
  const fetch = (async (input: string | URL | Request, init?: RequestInit): Promise<Response> => {
    const method = (
      init?.method ?? (input instanceof Request ? input.method : "GET")
    ).toUpperCase();
    const url = new URL(input instanceof Request ? input.url : String(input));
    if (method !== "POST" || pipeline.protocolOf(url.pathname) === undefined) {
      // Not cached: sent on as it is, except in replay, which never reaches the upstream.
      const given = init?.headers ?? (input instanceof Request ? input.headers : undefined);
      const refusal = pipeline.passRefusal(headersOf(new Headers(given)));
      return refusal === undefined ? upstreamFetch(input, init) : toResponse(refusal);
    }
    const request = new Request(input, init);
    const answer = await pipeline.handle({
      method,
      url,
      headers: headersOf(request.headers),
      body: await bodyOf(request, init?.body),
      signal: request.signal,
    });
    return toResponse(answer);
  }) as CachingFetch;
  Object.defineProperty(fetch, "cache", {
    value: {
      store: pipeline.store,
      namespace: pipeline.namespace,
      stats: () => pipeline.stats(),
      clear: () => pipeline.store.clear({ namespace: pipeline.namespace }),
      purge: async (purge: PurgeOptions & { model?: string }) => {
        const { model, ...rest } = purge ?? {};
        if (model !== undefined && (typeof model !== "string" || model === "")) {
          throw new TypeError(
            `Expected \`model\` to be a non-empty string, got \`${String(model)}\` (${typeof model})`,
          );
        }
        const modelTags = model === undefined ? undefined : [autoTag("model", model)];
        const alone =
          rest.tag === undefined && rest.tags === undefined && rest.olderThan === undefined;
        const filter =
          modelTags !== undefined && alone
            ? { namespace: pipeline.namespace, allTags: modelTags }
            : { ...purgeFilter(pipeline.namespace, rest, pipeline.core.clock), allTags: modelTags };
        return pipeline.core.purge(filter);
      },
      on: <K extends keyof CacheEvents>(type: K, listener: Listener<CacheEvents[K]>) =>
        pipeline.core.telemetry.events.on(type, listener),
    },
  });
  return fetch;
}

/** A Web `Response` for an answer. */
export function toResponse(answer: Answer): Response {
  const body = answer.body;
  return new Response(
    isByteStream(body) ? toWebStream(body) : (body as ConstructorParameters<typeof Response>[0]),
    {
      status: answer.status,
      headers: answer.headers,
    },
  );
}

export function headersOf(headers: Headers): RawHeaders {
  const out: Record<string, string> = {};
  headers.forEach((value, name) => {
    out[name] = value;
  });
  return out;
}

/** A body given as a string or bytes is taken as it is; only a stream is read. */
async function bodyOf(request: Request, given: unknown): Promise<Uint8Array> {
  if (typeof given === "string") return Buffer.from(given, "utf8");
  if (given instanceof ArrayBuffer) return new Uint8Array(given);
  if (ArrayBuffer.isView(given)) {
    return new Uint8Array(given.buffer, given.byteOffset, given.byteLength);
  }
  return new Uint8Array(await request.arrayBuffer());
}

function headOf(request: LlmRequest): RequestHead {
  return {
    url: request.url.href,
    method: request.method,
    headers: {
      get: (name: string) => {
        const value = request.headers[name.toLowerCase()];
        return value === undefined ? null : Array.isArray(value) ? value.join(", ") : value;
      },
    },
  };
}
