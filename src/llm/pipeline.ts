/**
 * The request pipeline every LLM route goes through, whatever serves it (`cachingFetch` for
 * SDKs, the gateway): one parsed call per request — parse once, key once, read the store once —
 * then `Hit | Miss`, and a miss continues with the same call (`complete`).
 *
 *   lookup(request) ─┬─ hit     → an answer from the record (converted if the request differs)
 *                    ├─ stale   → (stale-while-revalidate) the stored answer, one refresh behind
 *                    ├─ miss    → complete(call): join a flight, or take the cross-process lock,
 *                    │            call the upstream, record, store what is an answer
 *                    ├─ pass    → not a cached route: forward(request)
 *                    └─ answer  → refused (4xx), or `only-if-cached` with nothing cached (504)
 *
 * What an API means (its key, stream grammar, conversions, errors, usage) is in its protocol
 * (`protocols/`); this file knows none of it. A byte-identical body finds its key in a bounded
 * memo without being parsed and hashed again (`KeyMemo` below), so a repeated hit costs a Map
 * lookup and a store read.
 *
 * Freshness: an answer is fresh until its `staleAt` (its lifetime: the ttl, `max-age`,
 * `s-maxage`) and younger than the request's `max-age`. Past that, within the request's
 * stale-while-revalidate window it answers at once (`x-infercache: stale`) and one refresh runs
 * in the background; within its stale-if-error window it is kept aside and answers if the
 * upstream fails (`complete`). Every other read (`read`: buckets, embeddings' items, the
 * cross-process wait) takes only fresh answers. Serving stale writes nothing.
 */

import type { Clock } from "../base/clock.js";
import { type Duration, parseDuration } from "../base/duration.js";
import {
  CacheMissError,
  type CacheMode,
  currentCacheMode,
  modeWrites,
  parseMode,
} from "../base/mode.js";
import type { StaleWindows } from "../base/stale.js";
import { positiveInteger } from "../base/validate.js";
import { CacheCore } from "../cache/core.js";
import { FlightTable } from "../cache/flight-table.js";
import type { CacheStats } from "../cache/telemetry.js";
import { hashKey } from "../key/hash-key.js";
import type { Entry, FlightLease, Scope, Store } from "../store/store.js";
import { type Answer, isByteStream } from "./answer.js";
import { type CacheControl, parseCacheControl } from "./cache-control.js";
import { cacheStatus } from "./cache-status.js";
import type { Call, CallMode, LlmResult, Outcome, WholeCall } from "./call.js";
import { Completion, type Pending } from "./completion.js";
import {
  checkPolicy,
  modeHeaderOf,
  namespaceOf,
  type SamplingPolicy,
  SESSION_COOKIE,
  samplingOf,
  sessionOf,
} from "./controls.js";
import { entryTags, requestTags } from "./entry-tags.js";
import { connectionListed, headerRole } from "./headers.js";
import { applyHooks, checkHooks, type LlmHooks } from "./hooks.js";
import { completeItems } from "./itemized.js";
import {
  type AnswerRecord,
  header,
  type LlmRequest,
  type ParsedCall,
  type Protocol,
  RequestError,
} from "./protocol.js";
import type { ItemizedProtocol } from "./protocols/embeddings.js";
import { defaultProtocols } from "./protocols/index.js";
import { openaiError } from "./protocols/openai.js";
import { renderRecord } from "./render.js";
import { traceLlmCall, traceLlmRequest, traceLlmResult, traceLlmUsage } from "./tracing.js";
import type { Upstream, UpstreamRequest } from "./upstream.js";

export interface PipelineOptions extends LlmHooks {
  /** Where answers live. @default a MemoryStore of 1,000 entries */
  store?: Store | undefined;
  /** Namespace of the entries in the store. @default "llm" */
  namespace?: string | undefined;
  upstream: Upstream;
  /** How long answers are fresh. @default forever */
  ttl?: Duration | undefined;
  /**
   * Default `stale-while-revalidate` (a request's `Cache-Control` overrides it): how long past
   * its lifetime an answer is served at once while one refresh runs. Applies to answers with a
   * lifetime (`ttl`, or the request's `max-age` / `s-maxage`). @default 0
   */
  staleWhileRevalidate?: Duration | undefined;
  /**
   * Default `stale-if-error`: how long past its lifetime an answer is served when the upstream
   * fails (5xx, timeout, refused connection). Applies as `staleWhileRevalidate` does. @default 0
   */
  staleIfError?: Duration | undefined;
  /** Bump to stop serving everything cached before. */
  version?: string | number | undefined;
  /** The API families to cache. @default `defaultProtocols`: chat, completions, embeddings, Gemini, audio, images, rerank, moderations */
  protocols?: readonly (Protocol | ItemizedProtocol)[] | undefined;
  /** A tenant per request (a keyed hash of its credentials): tenants never share entries. */
  tenant?: ((request: LlmRequest) => string | undefined) | undefined;
  /** Sampled requests (temperature > 0 without a seed). @default "cache" */
  sampling?: SamplingPolicy | undefined;
  /** Cache requests with `n > 1`. @default false */
  cacheMultipleChoices?: boolean | undefined;
  /** Delay between replayed stream events, ms (to look like a live stream). @default 0 */
  replayDelayMs?: number | undefined;
  /**
   * The cache mode of requests without an `x-infercache-mode` header (see `base/mode.ts`):
   * `replay` never calls the upstream, `record` also stores sampled requests and `n > 1`.
   * @default "read-write"
   */
  mode?: CacheMode | undefined;
  /** Called after every cacheable request with what happened (metrics, dashboards). */
  onResult?: ((result: LlmResult) => void) | undefined;
  /**
   * The largest answer recorded, bytes: a larger one is passed on as it streams and not stored
   * (and no identical request joins it). @default 32 MiB
   */
  maxRecordBytes?: number | undefined;
  clock?: Clock | undefined;
}

export type Lookup =
  | { kind: "hit"; answer: Answer }
  | { kind: "miss"; call: Call }
  | { kind: "pass" }
  | { kind: "answer"; answer: Answer };

export interface PipelineStats extends CacheStats {
  bypassed: number;
  tokensSaved: number;
}

/** Query parameters that carry credentials (any case): part of the tenant, not of the key. */
export const CREDENTIAL_PARAMS = ["key", "api-key", "api_key", "access_token", "token"] as const;

export function isCredentialParam(name: string): boolean {
  return (CREDENTIAL_PARAMS as readonly string[]).includes(name.toLowerCase());
}

export class LlmPipeline {
  readonly core: CacheCore<Pending>;
  readonly options: PipelineOptions;
  readonly upstream: Upstream;
  readonly sampling: SamplingPolicy;
  readonly mode: CacheMode;
  readonly #protocols: (Protocol | ItemizedProtocol)[];
  readonly #memo = new KeyMemo();
  readonly #completion: Completion;
  /** Items (embedding inputs) being fetched, joined by requests that ask for the same item. */
  readonly itemFlights = new FlightTable<Promise<unknown>>();
  readonly #version: string;
  readonly #hooks: LlmHooks | undefined;
  bypassed = 0;
  tokensSaved = 0;
  readonly maxRecordBytes: number;
  /** The operator's default stale windows (a request's `Cache-Control` overrides them). */
  readonly stale: StaleWindows;

  constructor(options: PipelineOptions) {
    this.options = options;
    this.upstream = options.upstream;
    this.sampling = checkPolicy(options.sampling ?? "cache", "sampling");
    this.mode = options.mode === undefined ? "read-write" : parseMode(options.mode, "mode");
    this.maxRecordBytes = positiveInteger(
      options.maxRecordBytes ?? 32 * 1024 * 1024,
      "maxRecordBytes",
    );
    this.stale = {
      whileRevalidateMs:
        options.staleWhileRevalidate === undefined
          ? 0
          : parseDuration(options.staleWhileRevalidate, "staleWhileRevalidate"),
      ifErrorMs:
        options.staleIfError === undefined
          ? 0
          : parseDuration(options.staleIfError, "staleIfError"),
    };
    const replayDelay = options.replayDelayMs ?? 0;
    if (!(Number.isFinite(replayDelay) && replayDelay >= 0)) {
      throw new TypeError(
        `Expected \`replayDelayMs\` to be a non-negative number, got \`${String(replayDelay)}\``,
      );
    }
    this.core = new CacheCore<Pending>(
      {
        ...(options.store !== undefined ? { store: options.store } : { maxSize: 1000 }),
        namespace: options.namespace ?? "llm",
        ...(options.ttl !== undefined && { ttl: options.ttl }),
        ...(options.clock !== undefined && { clock: options.clock }),
      } as ConstructorParameters<typeof CacheCore>[0],
      "cachingFetch()",
      "llm",
    );
    // Longest paths first: `/chat/completions` before `/completions`.
    this.#protocols = [...(options.protocols ?? defaultProtocols)].sort(
      (a, b) =>
        Math.max(...b.paths.map((p) => p.length)) - Math.max(...a.paths.map((p) => p.length)),
    );
    // Records of this format: a new record shape, a new version (old entries are never read).
    this.#version = `r2:${options.version === undefined ? "" : `${typeof options.version}:${options.version}`}`;
    this.#completion = new Completion(this);
    this.#hooks = checkHooks(options, "cachingFetch()");
  }

  get store(): Store {
    return this.core.store;
  }

  get namespace(): string {
    return this.core.namespace;
  }

  stats(): PipelineStats {
    return { ...this.core.stats(), bypassed: this.bypassed, tokensSaved: this.tokensSaved };
  }

  /** The protocol answering `path` (the upstream URL's path), if any. */
  protocolOf(path: string): Protocol | ItemizedProtocol | undefined {
    const trimmed = path.endsWith("/") ? path.replace(/\/+$/, "") : path;
    return this.#protocols.find((protocol) =>
      protocol.paths.some((p) => trimmed === p || trimmed.endsWith(p)),
    );
  }

  /** Looks a request up: one parse, one key, one store read. */
  async lookup(request: LlmRequest): Promise<Lookup> {
    const protocol = request.method === "POST" ? this.protocolOf(request.url.pathname) : undefined;
    if (protocol === undefined) {
      const refusal = this.passRefusal(request.headers);
      return refusal === undefined ? { kind: "pass" } : { kind: "answer", answer: refusal };
    }
    let noStore = false;
    if (this.#hooks !== undefined) {
      // Before parsing: the redacted body is what is keyed and what the upstream gets.
      const hooked = await applyHooks(request, this.#hooks);
      request = hooked.request;
      noStore = hooked.noStore;
    }
    let call: Call;
    try {
      call = this.#call(request, protocol);
    } catch (error) {
      if (error instanceof RequestError) {
        return { kind: "answer", answer: errorAnswer(protocol, error.status, error.message) };
      }
      throw error;
    }
    if (noStore) {
      if (call.itemized) call.parsed = { ...call.parsed, bypass: "noStore" };
      else call.mode = { kind: "bypass", reason: "noStore" };
    }
    traceLlmCall(call);
    if (call.itemized) return { kind: "miss", call };
    return this.#lookupWhole(call);
  }

  /**
   * The mode of a request (its header, else `withCacheMode`'s, else the pipeline's).
   * @throws RequestError for a header naming no mode
   */
  modeOf(headers: LlmRequest["headers"]): CacheMode {
    return modeHeaderOf(headers) ?? currentCacheMode() ?? this.mode;
  }

  /**
   * What answers a request the cache does not handle (another route, GET): nothing in most
   * modes — it is forwarded — but in `replay` nothing reaches the upstream, so a cache_miss.
   */
  passRefusal(headers: LlmRequest["headers"]): Answer | undefined {
    let mode: CacheMode;
    try {
      mode = this.modeOf(headers);
    } catch (error) {
      if (error instanceof RequestError)
        return errorAnswer(OPENAI_SHAPE, error.status, error.message);
      throw error;
    }
    return mode === "replay"
      ? cacheMissAnswer(OPENAI_SHAPE, undefined, "this route is not cached")
      : undefined;
  }

  /** Whether a call's answer may be stored: its mode and its `Cache-Control` allow it. */
  stores(call: Call): boolean {
    const control = call.control;
    return modeWrites(call.cacheMode) && !control.noStore && control.ttlMs !== 0;
  }

  /**
   * Completes a miss: the same call the lookup made. With a stale answer kept aside
   * (stale-if-error), an upstream failure — a 5xx, or a thrown timeout, refused connection, dead
   * local model, full queue — is answered with it instead.
   */
  complete(call: Call): Promise<Answer> {
    if (call.itemized) return completeItems(this, call);
    return call.stale === undefined ? this.#completion.complete(call) : this.#orStale(call);
  }

  async #orStale(call: WholeCall): Promise<Answer> {
    const stale = call.stale as { entry: Entry; record: AnswerRecord };
    let answer: Answer;
    try {
      answer = await this.#completion.complete(call);
      if (answer.status < 500) return answer;
    } catch (error) {
      if (call.request.signal?.aborted === true) throw error;
      return this.#staleAnswer(call, stale.record, stale.entry, "error") ?? Promise.reject(error);
    }
    const served = this.#staleAnswer(call, stale.record, stale.entry, "error");
    if (served === undefined) return answer;
    if (isByteStream(answer.body)) answer.body.cancel();
    return served;
  }

  /** A stale answer, reported as one; `undefined` when the record cannot take this form. */
  #staleAnswer(
    call: WholeCall,
    record: AnswerRecord,
    entry: Entry,
    reason: "revalidate" | "error",
  ): Answer | undefined {
    const answer = this.render(call, record, entry, "stale");
    if (answer !== undefined) {
      this.core.telemetry.report("stale", call.key, call.scope, entry, undefined, reason);
      // The request went upstream and failed: RFC 9211's fwd=stale, with the stale freshness.
      if (reason === "error") {
        const now = this.core.clock.now();
        const ttlMs = Math.min(0, (entry.staleAt ?? entry.expiresAt ?? now) - now);
        answer.headers["cache-status"] = cacheStatus({ kind: "forward", fwd: "stale", ttlMs });
      }
    }
    return answer;
  }

  /** The stale windows of a call: its request's, else the operator's. */
  windowsOf(call: Call): StaleWindows {
    const control = call.control;
    return control.staleWhileRevalidateMs === undefined && control.staleIfErrorMs === undefined
      ? this.stale
      : {
          whileRevalidateMs: control.staleWhileRevalidateMs ?? this.stale.whileRevalidateMs,
          ifErrorMs: control.staleIfErrorMs ?? this.stale.ifErrorMs,
        };
  }

  /**
   * Refreshes a call's answer in the background, once per key (a stale read while it runs, or
   * while an identical call is in flight, starts none). The refresh is no client's: no signal
   * stops it and it is not in the request metrics; its failure is reported as a `refresh` error.
   */
  #revalidate(call: WholeCall): void {
    // An identical call in flight will store a fresh answer anyway.
    if (this.core.flights.get(FlightTable.id(call.scope, call.key)) !== undefined) return;
    const request = call.request;
    const detached: LlmRequest = {
      method: request.method,
      url: request.url,
      headers: request.headers,
      body: request.body,
      signal: undefined,
    };
    const refresh: WholeCall = { ...call, request: detached, stale: undefined, background: true };
    this.core.refreshInBackground(call.scope, call.key, async () => {
      const answer = await this.#completion.complete(refresh);
      // A stream is recorded as it is read: read it to its end.
      if (isByteStream(answer.body)) for await (const _ of answer.body);
      if (answer.status >= 400) {
        throw new Error(
          `infercache: the background refresh got ${answer.status} from the upstream`,
        );
      }
    });
  }

  /** Lookup, then complete a miss or forward what is not cached (in a span, when traced). */
  handle(request: LlmRequest): Promise<Answer> {
    return traceLlmRequest(request.method, request.url.pathname, undefined, () =>
      this.#handle(request),
    );
  }

  async #handle(request: LlmRequest): Promise<Answer> {
    const lookup = await this.lookup(request);
    switch (lookup.kind) {
      case "hit":
      case "answer":
        return lookup.answer;
      case "miss":
        return this.complete(lookup.call);
      case "pass":
        return this.forward(request);
    }
  }

  /** Sends a request upstream as it is (routes that are not cached). */
  async forward(request: LlmRequest): Promise<Answer> {
    const response = await this.upstream(
      this.upstreamRequest(request, request.body, request.signal),
    );
    return {
      status: response.status,
      headers: responseHeaders(response.headers),
      body: response.body,
    };
  }

  /** What goes upstream for a request: its headers minus ours and the connection's. */
  upstreamRequest(
    request: LlmRequest,
    body: Uint8Array | string,
    signal: AbortSignal | undefined,
  ): UpstreamRequest {
    const headers: Record<string, string> = {};
    const listed = connectionListed(request.headers.connection);
    for (const [name, value] of Object.entries(request.headers)) {
      if (value === undefined || headerRole(name) === "hop" || listed?.has(name)) continue;
      const text = Array.isArray(value) ? value.join(", ") : value;
      if (name === "cookie") {
        const kept = text
          .split(/;\s*/)
          .filter((part) => !part.startsWith(`${SESSION_COOKIE}=`))
          .join("; ");
        if (kept !== "") headers.cookie = kept;
        continue;
      }
      headers[name] = text;
    }
    // Records keep bytes as sent: ask for them uncompressed.
    headers["accept-encoding"] = "identity";
    const hasBody = request.method !== "GET" && request.method !== "HEAD";
    return {
      method: request.method,
      url: request.url,
      headers,
      body: hasBody ? body : undefined,
      signal,
    };
  }

  /** Reads an entry the call may be served as fresh: before its `staleAt`, within its `max-age`. */
  async read(key: string, call: Call): Promise<Entry | undefined> {
    const entry = await this.core.read(key, call.scope);
    if (entry === undefined) return undefined;
    const accept = call.control.acceptAgeMs;
    if (accept !== undefined && this.core.clock.now() - entry.createdAt > accept) return undefined;
    return entry;
  }

  /**
   * Reads an entry stale or not, with how long it has been stale for this call (`undefined`:
   * fresh): past its `staleAt`, or older than the request's `max-age`, whichever is longer.
   */
  async #readStale(
    key: string,
    call: Call,
  ): Promise<{ entry: Entry | undefined; staleMs: number | undefined }> {
    const entry = await this.core.readEntry(key, call.scope);
    if (entry === undefined) return { entry, staleMs: undefined };
    const accept = call.control.acceptAgeMs;
    const now = this.core.clock.now();
    let staleMs =
      entry.staleAt === undefined || now < entry.staleAt ? undefined : now - entry.staleAt;
    if (accept !== undefined && now - entry.createdAt > accept) {
      staleMs = Math.max(staleMs ?? 0, now - entry.createdAt - accept);
    }
    return { entry, staleMs };
  }

  /** Stores a value for a call unless its controls say not to. */
  async write(call: Call, key: string, value: unknown): Promise<void> {
    const control = call.control;
    if (!this.stores(call)) return;
    const core = this.core;
    // A client may ask for a shorter life than the operator's ttl, never a longer one.
    const ttl =
      control.ttlMs === undefined
        ? undefined
        : core.ttl > 0
          ? Math.min(control.ttlMs, core.ttl)
          : control.ttlMs;
    // Kept the longer of the operator's and the request's stale windows past its lifetime.
    const windows = this.windowsOf(call);
    const keep =
      windows === this.stale
        ? windows
        : {
            whileRevalidateMs: Math.max(windows.whileRevalidateMs, this.stale.whileRevalidateMs),
            ifErrorMs: Math.max(windows.ifErrorMs, this.stale.ifErrorMs),
          };
    traceLlmUsage(value);
    const entry = core.entry(value, core.clock.now() - call.startedAt, undefined, ttl, keep);
    entry.tags = entryTags(call);
    await core.write(key, call.scope, entry, () => key);
  }

  /** Releases a flight and its cross-process lease. */
  settle(id: string, pending: Pending): void {
    this.core.flights.release(id, pending);
    const lease: FlightLease | undefined = pending.lease;
    if (lease !== undefined) {
      pending.lease = undefined;
      this.core.releaseAfter(lease, undefined);
    }
  }

  report(call: Call, outcome: Outcome, status: number, savedMs: number, savedTokens: number): void {
    if (call.background === true) return;
    if (outcome === "bypass") this.bypassed++;
    this.tokensSaved += savedTokens;
    traceLlmResult(outcome, savedTokens);
    this.options.onResult?.({
      route: call.protocol.name,
      outcome,
      status,
      stream: call.itemized ? false : call.parsed.stream,
      durationMs: performance.now() - call.started,
      savedMs,
      savedTokens,
      model: call.parsed.model,
      key: call.itemized ? undefined : call.key,
      tenant: call.tenant,
    });
  }

  /**
   * The answer for a record, converted to what the call asked for, and reported; `undefined` when
   * the record cannot be turned into that form exactly (the caller then treats it as a miss).
   */
  render(
    call: WholeCall,
    record: AnswerRecord,
    entry: Entry | undefined,
    outcome: Outcome,
  ): Answer | undefined {
    const answer = renderRecord(this, call, record, entry, outcome);
    if (answer === undefined) return undefined;
    if (outcome === "hit" && entry !== undefined) {
      this.core.telemetry.report("hit", call.key, call.scope, entry, undefined);
    }
    this.report(
      call,
      outcome,
      answer.status,
      entry?.computeMs ?? 0,
      outcome === "hit" || outcome === "stale" ? record.usage.total : 0,
    );
    return answer;
  }

  async #lookupWhole(call: WholeCall): Promise<Lookup> {
    const mode = call.mode;
    const replay = call.cacheMode === "replay";
    if (mode.kind === "bypass" || mode.kind === "refresh") {
      // Nothing stored may answer these: with only-if-cached or replay there is no answer at all.
      if (replay) {
        return {
          kind: "answer",
          answer: this.#replayMiss(
            call,
            mode.kind === "bypass"
              ? `this request is never cached (${mode.reason})`
              : "the request asks for a fresh answer (Cache-Control no-cache or max-age=0)",
          ),
        };
      }
      if (call.control.onlyIfCached) return { kind: "answer", answer: notCached(call) };
      return { kind: "miss", call };
    }
    if (mode.kind === "bucket") {
      // A refresh writes the first slot of the bucket; otherwise fill or serve the bucket.
      if (call.control.noCache || call.cacheMode === "refresh") {
        return { kind: "miss", call: { ...call, mode: { ...mode, key: `${call.key}:bucket:0` } } };
      }
      return this.#lookupBucket(call, mode.size);
    }
    const { entry, staleMs } = await this.#readStale(call.key, call);
    const record = entry === undefined ? undefined : recordOf(entry, call.protocol);
    let stale: WholeCall["stale"];
    if (entry !== undefined && record !== undefined) {
      if (staleMs === undefined) {
        const answer = this.render(call, record, entry, "hit");
        if (answer !== undefined) return { kind: "hit", answer };
      } else {
        const windows = this.windowsOf(call);
        // Replay serves fresh answers only; read-only serves stale ones but refreshes nothing.
        if (replay) {
          // falls through to the replay miss below
        } else if (staleMs < windows.whileRevalidateMs) {
          const answer = this.#staleAnswer(call, record, entry, "revalidate");
          if (answer !== undefined) {
            if (modeWrites(call.cacheMode)) this.#revalidate(call);
            return { kind: "hit", answer };
          }
        } else if (staleMs < windows.ifErrorMs) {
          stale = { entry, record };
        }
      }
    }
    if (replay) return { kind: "answer", answer: this.#replayMiss(call, undefined) };
    if (call.control.onlyIfCached) return { kind: "answer", answer: notCached(call) };
    return { kind: "miss", call: stale === undefined ? call : { ...call, stale } };
  }

  /** A whole call in replay mode found nothing it may serve: reported as a miss, answered 504. */
  #replayMiss(call: WholeCall, reason: string | undefined): Answer {
    const key = call.key === "" ? undefined : call.key;
    if (key !== undefined)
      this.core.telemetry.report("miss", key, call.scope, undefined, undefined);
    const answer = cacheMissAnswer(call.protocol, key, reason);
    this.report(call, "miss", answer.status, 0, 0);
    return answer;
  }

  /** A sampled call with a bucket of N answers: served at random once the bucket is full. */
  async #lookupBucket(call: WholeCall, size: number): Promise<Lookup> {
    const base = call.key;
    const keys = Array.from({ length: size }, (_, i) => `${base}:bucket:${i}`);
    const entries = await Promise.all(keys.map((key) => this.read(key, call)));
    const filled: [Entry, AnswerRecord][] = [];
    for (const entry of entries) {
      const record = entry === undefined ? undefined : recordOf(entry, call.protocol);
      if (entry !== undefined && record !== undefined) filled.push([entry, record]);
    }
    if (filled.length === size) {
      const [entry, record] = filled[Math.floor(Math.random() * filled.length)] as [
        Entry,
        AnswerRecord,
      ];
      const answer = this.render(call, record, entry, "hit");
      if (answer !== undefined) return { kind: "hit", answer };
    }
    if (call.control.onlyIfCached) return { kind: "answer", answer: notCached(call) };
    // No single-flight: concurrent sampled calls are meant to produce different answers.
    const free = keys[entries.indexOf(undefined)] ?? (keys[0] as string);
    return { kind: "miss", call: { ...call, mode: { kind: "bucket", size, key: free } } };
  }

  /** Parses a request into a call. @throws RequestError */
  #call(request: LlmRequest, protocol: Protocol | ItemizedProtocol): Call {
    const headers = request.headers;
    const control = parseCacheControl(header(headers, "cache-control"));
    const namespace = namespaceOf(headers) ?? this.core.namespace;
    const session = sessionOf(headers);
    const tenant = this.options.tenant?.(request);
    const tags = requestTags(headers);
    const sampling = samplingOf(headers);
    const cacheMode = this.modeOf(headers);
    // A session is private to its tenant: another tenant's session of the same id is another.
    // (Objects here are written out whole: in V8 `{ ...a, b }` costs ~0.7 µs, a literal ~0.01.)
    const scope: Scope =
      session === undefined
        ? { namespace }
        : { namespace, session: tenant === undefined ? session : `${tenant}/${session}` };
    const started = performance.now();
    const startedAt = this.core.clock.now();
    const context = this.#keyContext(request.url, request.headers, protocol, tenant);
    if ("itemized" in protocol) {
      const parsed = protocol.parse(request.body, header(headers, "content-type"));
      const keys = parsed.items.map((item) =>
        hashKey(parsed.keyMaterialOf(item), { context, root: "request" }),
      );
      return {
        request,
        control,
        scope,
        tenant,
        tags,
        started,
        startedAt,
        cacheMode,
        itemized: true,
        protocol,
        parsed,
        keys,
      };
    }
    // The memo holds what `parse` made of the body, so it is keyed by all `parse` sees: the
    // request's own URL (context), the content type (a multipart boundary) and the bytes.
    const contentType = header(headers, "content-type");
    const memoContext = contentType === undefined ? context : `${context}\u0000${contentType}`;
    let known = this.#memo.get(memoContext, request.body);
    if (known === undefined) {
      const parsed = protocol.parse(request.body, contentType, request.url);
      const keyContext =
        protocol.keyUrl === undefined
          ? context
          : this.#keyContext(protocol.keyUrl(request.url), headers, protocol, tenant);
      const key =
        parsed.bypass === undefined
          ? hashKey(parsed.keyMaterial, { context: keyContext, root: "request" })
          : "";
      known = { parsed, key };
      // The memo keeps what a hit needs, not the key material (it can weigh 20x the body).
      this.#memo.set(memoContext, request.body, {
        parsed: { ...parsed, keyMaterial: undefined },
        key,
      });
    }
    const call: WholeCall = {
      request,
      control,
      scope,
      tenant,
      tags,
      started,
      startedAt,
      cacheMode,
      itemized: false,
      protocol,
      parsed: known.parsed,
      key: known.key,
      mode: CACHE_MODE,
    };
    call.mode = this.#modeOf(call, control, sampling);
    return call;
  }

  /**
   * What scopes a key besides the body: the record format's version and the pipeline's, the
   * protocol, the upstream URL's origin and exact path (a path may name the model, as Gemini's
   * does), the tenant, every header that may change the answer (`headers.ts`: the protocol's key
   * headers and any header that is not transport, a credential or the connection's), and the
   * query string without its credential parameters (sorted, so their order does not matter).
   * `url` is the request's, or the one its protocol keys it by (`Protocol.keyUrl`).
   */
  #keyContext(
    url: URL,
    headers: LlmRequest["headers"],
    protocol: { name: string; keyHeaders: readonly string[] },
    tenant: string | undefined,
  ): string {
    const keyed: [string, string][] = [];
    for (const name in headers) {
      const value = headers[name];
      if (value === undefined) continue;
      if (headerRole(name) === "keyed" || protocol.keyHeaders.includes(name)) {
        keyed.push([name, Array.isArray(value) ? value.join(", ") : value]);
      }
    }
    if (keyed.length > 1) keyed.sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    let params: [string, string][] = [];
    if (url.search !== "") {
      params = [...url.searchParams].filter(([name]) => !isCredentialParam(name));
      params.sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    }
    return JSON.stringify([
      this.#version,
      protocol.name,
      `${url.origin}${url.pathname}`,
      tenant ?? "",
      keyed,
      params,
    ]);
  }

  #modeOf(call: WholeCall, control: CacheControl, sampling: SamplingPolicy | undefined): CallMode {
    const parsed: ParsedCall = call.parsed;
    if (parsed.bypass !== undefined) return { kind: "bypass", reason: parsed.bypass };
    // Record keeps one answer of whatever the policies would not keep, and replay reads it there.
    const keepsAll = call.cacheMode === "record" || call.cacheMode === "replay";
    if ((parsed.choices ?? 1) > 1 && this.options.cacheMultipleChoices !== true && !keepsAll) {
      return { kind: "bypass", reason: "n > 1" };
    }
    if (parsed.sampled && !keepsAll) {
      const policy = sampling ?? this.sampling;
      if (policy === "bypass") return { kind: "bypass", reason: "sampled" };
      if (typeof policy === "object") return { kind: "bucket", size: policy.bucket };
    }
    if (control.noCache || control.acceptAgeMs === 0 || call.cacheMode === "refresh") {
      return { kind: "refresh" };
    }
    return { kind: "cache" };
  }
}

/** The record in an entry, if it is one of this protocol's (anything else reads as a miss). */
export function recordOf(entry: Entry, protocol: { name: string }): AnswerRecord | undefined {
  const record = entry.value as Partial<AnswerRecord> | undefined;
  return typeof record === "object" && record !== null && record.protocol === protocol.name
    ? (record as AnswerRecord)
    : undefined;
}

export function errorAnswer(
  protocol: { errorBody(status: number, message: string): string },
  status: number,
  message: string,
): Answer {
  return {
    status,
    headers: { "content-type": "application/json" },
    body: protocol.errorBody(status, message),
  };
}

function notCached(call: WholeCall): Answer {
  const answer = errorAnswer(
    call.protocol,
    504,
    "not in the cache, and the request says only-if-cached",
  );
  answer.headers["x-infercache"] = "miss";
  answer.headers["cache-status"] = cacheStatus({ kind: "not-forwarded", detail: "only-if-cached" });
  return answer;
}

/** The error shape of routes no protocol answers (the gateway's own errors are OpenAI's). */
const OPENAI_SHAPE = { errorBody: openaiError };

/**
 * The answer to a replay miss, in the protocol's own error shape with `cache_miss` as its
 * code/type: 504, as for `only-if-cached` (RFC 9111 §5.2.1.7: the cache cannot answer and will
 * not ask), with `x-should-retry: false` so the OpenAI and Anthropic SDKs fail at once instead
 * of retrying a miss that cannot turn into a hit. `key` names what was not recorded.
 */
export function cacheMissAnswer(
  protocol: { errorBody(status: number, message: string): string },
  key: string | undefined,
  reason: string | undefined,
): Answer {
  const message =
    key !== undefined && reason === undefined
      ? new CacheMissError(key).message
      : `infercache: cache_miss: ${reason ?? "nothing recorded"}${key === undefined ? "" : ` (key ${key})`}, and the mode is "replay", which never calls the upstream; use another mode for it`;
  const answer = errorAnswer(protocol, 504, message);
  answer.body = withErrorCode(answer.body as string, "cache_miss");
  answer.headers["x-infercache"] = "miss";
  if (key !== undefined) answer.headers["x-infercache-key"] = key;
  answer.headers["x-should-retry"] = "false";
  answer.headers["cache-status"] = cacheStatus({ kind: "not-forwarded", detail: "cache-miss" });
  return answer;
}

/**
 * `body` (a protocol's error) with `code` where that shape keeps one: OpenAI's `code` and
 * `type`, Anthropic's `type`, and for Google's numeric `code` an `ErrorInfo` detail.
 */
function withErrorCode(body: string, code: string): string {
  let parsed: { error?: Record<string, unknown> };
  try {
    parsed = JSON.parse(body) as { error?: Record<string, unknown> };
  } catch {
    return body;
  }
  const error = parsed.error;
  if (typeof error !== "object" || error === null) return body;
  if (typeof error.code === "number") {
    error.details = [
      {
        "@type": "type.googleapis.com/google.rpc.ErrorInfo",
        reason: code.toUpperCase(),
        domain: "infercache",
      },
    ];
  } else {
    if ("code" in error) error.code = code;
    if ("type" in error) error.type = code;
  }
  return JSON.stringify(parsed);
}

/** Response headers from upstream that a client gets, minus the connection's. */
export function responseHeaders(
  headers: Record<string, string | string[] | undefined>,
): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [name, value] of Object.entries(headers)) {
    if (value === undefined) continue;
    if (
      name === "connection" ||
      name === "keep-alive" ||
      name === "transfer-encoding" ||
      name === "content-length" ||
      name === "set-cookie" ||
      // Ours only: an upstream (another gateway) must not speak for this cache.
      name.startsWith("x-infercache")
    ) {
      continue;
    }
    out[name] = Array.isArray(value) ? value.join(", ") : value;
  }
  return out;
}

/** The mode of a call cached normally (one object: calls never change a mode, they replace it). */
const CACHE_MODE: CallMode = { kind: "cache" };

interface Known {
  parsed: ParsedCall;
  key: string;
}

/**
 * Byte-identical request bodies in the same context find their parsed call and key without
 * being parsed and hashed again. Two levels, context then body, so a lookup hashes the body's
 * bytes (as a latin1 string: one character per byte, no decoding, byte-exact) and not a copy of
 * the context joined to them. Bounded by entries and bytes, the oldest context's oldest body
 * leaving first; bodies over 64 KiB are not remembered (their hash is cheap next to their size).
 */
class KeyMemo {
  readonly #contexts = new Map<string, Map<string, Known>>();
  #entries = 0;
  #bytes = 0;
  static readonly MAX_BODY = 64 * 1024;
  static readonly MAX_ENTRIES = 4096;
  static readonly MAX_BYTES = 32 * 1024 * 1024;

  get(context: string, body: Uint8Array): Known | undefined {
    if (body.byteLength > KeyMemo.MAX_BODY) return undefined;
    return this.#contexts.get(context)?.get(latin1(body));
  }

  set(context: string, body: Uint8Array, value: Known): void {
    if (body.byteLength > KeyMemo.MAX_BODY) return;
    let bodies = this.#contexts.get(context);
    if (bodies === undefined) {
      bodies = new Map();
      this.#contexts.set(context, bodies);
      this.#bytes += context.length;
    }
    const text = latin1(body);
    if (!bodies.has(text)) {
      this.#entries++;
      this.#bytes += text.length;
    }
    bodies.set(text, value);
    while (this.#entries > KeyMemo.MAX_ENTRIES || this.#bytes > KeyMemo.MAX_BYTES) this.#dropOne();
  }

  #dropOne(): void {
    const [context, bodies] = this.#contexts.entries().next().value as [string, Map<string, Known>];
    const oldest = bodies.keys().next().value as string;
    bodies.delete(oldest);
    this.#entries--;
    this.#bytes -= oldest.length;
    if (bodies.size === 0) {
      this.#contexts.delete(context);
      this.#bytes -= context.length;
    }
  }
}

function latin1(body: Uint8Array): string {
  return (
    body instanceof Buffer ? body : Buffer.from(body.buffer, body.byteOffset, body.byteLength)
  ).toString("latin1");
}
