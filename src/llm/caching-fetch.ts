/**
 * `cachingFetch(options)`: a `fetch` for the OpenAI SDK (`new OpenAI({ fetch })`) and any
 * OpenAI-compatible client, that answers repeated requests from a cache.
 *
 * It caches POST `/chat/completions`, `/completions` and `/embeddings`; everything else passes
 * through untouched. Keys are the whole request minus transport fields (`keys.ts`), scoped by
 * upstream, tenant, namespace and version.
 *
 * - Streams: a streamed miss goes to the client as it arrives and is recorded; it is stored only
 *   once complete (`[DONE]`, no error event). A streamed hit is replayed byte for byte (optionally
 *   paced). A streamed request can be served from a plain record and a plain one from a stream.
 * - Never cached: error statuses, failed or aborted upstream calls, incomplete streams, `n > 1`
 *   (unless `cacheMultipleChoices`).
 * - Embeddings are cached per input; a request whose inputs are partly cached sends only the
 *   missing ones upstream and answers with one merged response in the original order.
 * - Sampling without a seed at temperature > 0 follows a policy: `cache`, `bypass`, or
 *   `{ bucket: N }` (keep up to N answers, serve one at random).
 * - Identical concurrent requests share one upstream call, streams included: a late joiner gets
 *   what was streamed so far, then follows live.
 * - Responses say what happened: `x-infercache: hit | miss | coalesced | bypass | partial`, `Age`,
 *   `Server-Timing`.
 * - A store failure never fails a request: it goes upstream uncached.
 */

import type { Duration } from "../base/duration.js";
import type { Listener } from "../base/emitter.js";
import { CacheCore } from "../cache/core.js";
import { FlightTable } from "../cache/flight-table.js";
import type { CacheEvents, CacheStats } from "../cache/telemetry.js";
import type { Entry, FlightCoordinator, FlightLease, Scope, Store } from "../store/store.js";
import { type CacheControl, parseCacheControl } from "./cache-control.js";
import { chatKey, completionKey, embeddingKey, type KeyScope } from "./keys.js";
import { assemble, isComplete, splitEvents, synthesize } from "./sse.js";
import { StreamRecorder } from "./stream-recorder.js";

type Json = Record<string, unknown>;
type Fetch = (input: string | URL | Request, init?: RequestInit) => Promise<Response>;

/** What `tenant` and `session` see of a request: a `Request` is one. */
export interface RequestHead {
  readonly url: string;
  readonly method: string;
  readonly headers: { get(name: string): string | null };
}

/** An answer as plain parts, for servers that write it without a Web `Response`. */
export interface PlainAnswer {
  status: number;
  headers: Record<string, string>;
  body: string;
}

/** What to do with sampled (temperature > 0, no seed) requests. */
export type SamplingPolicy = "cache" | "bypass" | { bucket: number };

export interface CachingFetchOptions {
  /** Where answers live. @default a MemoryStore of 1,000 entries */
  store?: Store;
  /** Namespace of the entries in the store. @default "llm" */
  namespace?: string;
  /** The upstream fetch. @default globalThis.fetch */
  fetch?: Fetch;
  /** How long answers are served. @default forever */
  ttl?: Duration;
  /** Bump to stop serving everything cached before. */
  version?: string | number;
  /** A tenant per request (e.g. a keyed hash of its API key): tenants never share entries. */
  tenant?: (request: RequestHead) => string | undefined;
  /**
   * A session per request: a request with one reads and writes only that session's entries
   * (drop them with `store.clear({ namespace, session })` when the session ends).
   */
  session?: (request: RequestHead) => string | undefined;
  /** Sampled requests (temperature > 0 without a seed). @default "cache" */
  sampling?: SamplingPolicy;
  /** Cache requests with `n > 1`. @default false */
  cacheMultipleChoices?: boolean;
  /** Delay between replayed stream events, ms (to look like a live stream). @default 0 */
  replayDelayMs?: number;
  /** Request header that picks a namespace per request. @default "x-infercache-namespace" */
  namespaceHeader?: string;
  /** Request header that picks the sampling policy per request (`cache`, `bypass`, `bucket=3`). @default "x-infercache-sampling" */
  samplingHeader?: string;
  /** Called after every cacheable request with what happened (for metrics and dashboards). */
  onResult?: (result: LlmResult) => void;
}

/** What one request did. */
export interface LlmResult {
  route: "chat" | "completion" | "embeddings";
  outcome: Outcome;
  status: number;
  stream: boolean;
  /** Time to answer (for streams: to the first byte), ms. */
  durationMs: number;
  /** Recorded upstream time of what was served from cache, ms. */
  savedMs: number;
  /** Tokens of what was served from cache (from the recorded usage). */
  savedTokens: number;
  model: string | undefined;
  /** The store key (chat and text completions; the `x-infercache-key` response header). */
  key: string | undefined;
}

type Outcome = "hit" | "miss" | "coalesced" | "bypass" | "partial";

export interface CachingFetchStats extends CacheStats {
  bypassed: number;
  tokensSaved: number;
}

export type CachingFetch = Fetch & {
  readonly cache: {
    readonly store: Store;
    readonly namespace: string;
    stats(): CachingFetchStats;
    clear(): Promise<number>;
    on<K extends keyof CacheEvents>(type: K, listener: Listener<CacheEvents[K]>): () => void;
    /**
     * Answers a chat or text completion from the cache without Web `Request`/`Response` objects
     * (a server's fast path for hits): `head.url` is the upstream URL the request would go to,
     * `body` its JSON text. Resolves `undefined` when the request is not a plain hit — then send
     * it through the fetch itself, which also counts the miss. Hits are counted and reported
     * exactly as the fetch does.
     */
    answer(head: RequestHead, body: string): Promise<PlainAnswer | undefined>;
  };
};

/** A stored answer (chat or text completion). */
interface AnswerRecord {
  kind: "chat" | "completion";
  format: "json" | "sse";
  status: number;
  contentType: string;
  body: string;
  tokens: number;
}

interface EmbeddingRecord {
  embedding: unknown;
  tokens: number;
}

/** An upstream call in flight that identical requests join. */
type Pending = (
  | { format: "sse"; recorder: StreamRecorder; upstream: Promise<Response> }
  | { format: "json"; answer: Promise<AnswerRecord | undefined> }
) & {
  /** The cross-process lock of a shared store, released when the flight settles. */
  lease?: FlightLease | undefined;
};

const ROUTES: [suffix: string, route: LlmResult["route"]][] = [
  ["/chat/completions", "chat"],
  ["/completions", "completion"],
  ["/embeddings", "embeddings"],
];

const decoder = new TextDecoder();

export function cachingFetch(options: CachingFetchOptions = {}): CachingFetch {
  return new CachingFetcher(options).fetch;
}

class CachingFetcher {
  readonly fetch: CachingFetch;
  readonly #core: CacheCore<Pending>;
  readonly #upstream: Fetch;
  readonly #options: CachingFetchOptions;
  /** Embedding inputs being fetched, joined by requests that ask for the same input. */
  readonly #embeddingFlights = new FlightTable<Promise<EmbeddingRecord | undefined>>();
  readonly #sampling: SamplingPolicy;
  #bypassed = 0;
  #tokensSaved = 0;

  constructor(options: CachingFetchOptions) {
    this.#options = options;
    this.#upstream = options.fetch ?? ((input, init) => globalThis.fetch(input, init));
    this.#sampling = checkPolicy(options.sampling ?? "cache", "sampling");
    this.#core = new CacheCore<Pending>(
      {
        ...(options.store !== undefined ? { store: options.store } : { maxSize: 1000 }),
        namespace: options.namespace ?? "llm",
        ...(options.ttl !== undefined && { ttl: options.ttl }),
      },
      "cachingFetch()",
      "llm",
    );
    const core = this.#core;
    const fetch = ((input: string | URL | Request, init?: RequestInit) =>
      this.#handle(input, init)) as CachingFetch;
    Object.defineProperty(fetch, "cache", {
      value: {
        store: core.store,
        namespace: core.namespace,
        stats: (): CachingFetchStats => ({
          ...core.stats(),
          bypassed: this.#bypassed,
          tokensSaved: this.#tokensSaved,
        }),
        clear: () => core.store.clear({ namespace: core.namespace }),
        on: <K extends keyof CacheEvents>(type: K, listener: Listener<CacheEvents[K]>) =>
          core.telemetry.events.on(type, listener),
        answer: (head: RequestHead, body: string) => this.#answerPlain(head, body),
      },
    });
    this.fetch = fetch;
  }

  async #handle(input: string | URL | Request, init: RequestInit | undefined): Promise<Response> {
    const request = new Request(input, init);
    if (request.method !== "POST" || routeOf(new URL(request.url).pathname) === undefined)
      return this.#upstream(input, init);
    let text: string;
    try {
      // A body given as a string or bytes is read as it is; only a stream needs a clone.
      const given = init?.body;
      text =
        typeof given === "string"
          ? given
          : given instanceof ArrayBuffer || ArrayBuffer.isView(given)
            ? decoder.decode(given)
            : await request.clone().text();
    } catch {
      return this.#upstream(input, init);
    }
    const call = this.#call(request, text, request);
    if (call === undefined) return this.#upstream(input, init);
    if (call.route === "embeddings") return this.#embeddings(call);
    return this.#answer(call);
  }

  /** Parses a cacheable request; `undefined` when it is not (not JSON, not an object, no route). */
  #call(head: RequestHead, text: string, request: Request | undefined): Call | undefined {
    const url = new URL(head.url);
    const path = url.pathname.replace(/\/+$/, "");
    const match = routeOf(path);
    if (match === undefined) return undefined;
    let body: Json;
    try {
      const parsed = JSON.parse(text) as unknown;
      if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) return undefined;
      body = parsed as Json;
    } catch {
      return undefined;
    }
    const [suffix, route] = match;
    const namespaceHeader = this.#options.namespaceHeader ?? "x-infercache-namespace";
    const session = this.#options.session?.(head);
    return {
      head,
      request,
      route,
      body,
      text,
      started: performance.now(),
      control: parseCacheControl(head.headers.get("cache-control")),
      scope: {
        namespace: head.headers.get(namespaceHeader) ?? this.#core.namespace,
        ...(session !== undefined && { session }),
      },
      keyScope: {
        upstream: `${url.origin}${path.slice(0, path.length - suffix.length)}`,
        tenant: this.#options.tenant?.(head),
        version: this.#options.version,
      },
      stream: body.stream === true,
    };
  }

  /** The fast path: a plain hit answered as plain parts, or `undefined`. */
  async #answerPlain(head: RequestHead, text: string): Promise<PlainAnswer | undefined> {
    if ((this.#options.replayDelayMs ?? 0) > 0) return undefined;
    const call = this.#call(head, text, undefined);
    if (call === undefined || call.route === "embeddings" || call.control.noCache) return undefined;
    if (this.#policyFor(call) !== "cache") return undefined;
    const key = this.#keyOf(call);
    const entry = await this.#read(key, call);
    if (entry === undefined) return undefined;
    const answer = this.#render(call, key, entry.value as AnswerRecord, entry, "hit");
    return {
      status: answer.status,
      headers: answer.headers,
      body: typeof answer.body === "string" ? answer.body : answer.body.map(sseEvent).join(""),
    };
  }

  /** Chat and text completions. */
  async #answer(call: Call): Promise<Response> {
    const policy = this.#policyFor(call);
    if (policy === "bypass") return this.#bypass(call);
    const base = this.#keyOf(call);
    if (typeof policy === "object") return this.#bucket(call, base, policy.bucket);
    if (!call.control.noCache) {
      const entry = await this.#read(base, call);
      if (entry !== undefined)
        return this.#serve(call, base, entry.value as AnswerRecord, entry, "hit");
      const pending = this.#core.flights.get(FlightTable.id(call.scope, base));
      if (pending !== undefined) return this.#join(call, base, pending);
      if (this.#core.store.flights !== undefined) {
        // A store shared by processes: one of them calls the upstream, the others wait for it.
        const shared = await this.#shared(base, call);
        if (shared.entry !== undefined) {
          this.#core.telemetry.report("coalesced", base, call.scope, undefined, undefined);
          return this.#serve(
            call,
            base,
            shared.entry.value as AnswerRecord,
            shared.entry,
            "coalesced",
          );
        }
        return this.#miss(call, base, true, shared.lease);
      }
    }
    return this.#miss(call, base, true);
  }

  /** Keeps up to N answers for a sampled request and serves one at random once there are N. */
  async #bucket(call: Call, base: string, size: number): Promise<Response> {
    const keys = Array.from({ length: size }, (_, i) => `${base}:bucket:${i}`);
    const entries = call.control.noCache
      ? []
      : await Promise.all(keys.map((key) => this.#read(key, call)));
    const filled = entries.filter((entry): entry is Entry => entry !== undefined);
    if (!call.control.noCache && filled.length === size) {
      const pick = filled[Math.floor(Math.random() * filled.length)] as Entry;
      return this.#serve(call, base, pick.value as AnswerRecord, pick, "hit");
    }
    const free = keys[entries.indexOf(undefined)] ?? (keys[0] as string);
    // No single-flight: concurrent sampled calls are meant to produce different answers.
    return this.#miss(call, free, false);
  }

  /**
   * Cross-process single-flight on a shared store: the lease when this process should call the
   * upstream, or the entry another process stored while this one waited (bounded). Lock failures
   * fall back to calling the upstream, like every store failure.
   */
  async #shared(key: string, call: Call): Promise<{ entry?: Entry; lease?: FlightLease }> {
    const coordinator = this.#core.store.flights as FlightCoordinator;
    try {
      const lease = await coordinator.acquire(key, call.scope);
      if (lease !== undefined) return { lease };
      await coordinator.waitFor(key, call.scope, this.#core.waitTimeoutMs);
    } catch (error) {
      this.#core.telemetry.fail("lock", error);
      return {};
    }
    const entry = await this.#read(key, call);
    return entry === undefined ? {} : { entry };
  }

  async #miss(call: Call, key: string, coalesce: boolean, lease?: FlightLease): Promise<Response> {
    this.#core.telemetry.report("miss", key, call.scope, undefined, undefined);
    const controller = new AbortController();
    const upstream = this.#callUpstream(call, controller.signal);
    const id = FlightTable.id(call.scope, key);
    if (call.stream) {
      const recorder = new StreamRecorder(() =>
        controller.abort(new Error("infercache: every reader left")),
      );
      const pending: Pending = { format: "sse", recorder, upstream, lease };
      if (coalesce) this.#core.flights.start(id, pending);
      let response: Response;
      try {
        response = await upstream;
      } catch (error) {
        recorder.fail(error);
        this.#settle(id, pending);
        throw error;
      }
      if (!response.ok || !isEventStream(response) || response.body === null) {
        // Errors (and anything that is not a stream) go to the client as they are, uncached.
        recorder.fail(new Error(`infercache: upstream answered ${response.status}`));
        this.#settle(id, pending);
        return this.#report(call, "miss", response, 0, 0);
      }
      void this.#record(call, key, id, pending, response.body, recorder);
      return this.#report(
        call,
        "miss",
        streamResponse(recorder.reader(), response.headers, "miss", call),
        0,
        0,
      );
    }
    const answer = (async (): Promise<{ response: Response; record?: AnswerRecord }> => {
      const response = await upstream;
      if (!response.ok) return { response };
      const text = await response.text();
      const record: AnswerRecord = {
        kind: call.route as AnswerRecord["kind"],
        format: "json",
        status: response.status,
        contentType: response.headers.get("content-type") ?? "application/json",
        body: text,
        tokens: tokensOf(text),
      };
      return {
        response: new Response(text, { status: response.status, headers: response.headers }),
        record,
      };
    })();
    const pending: Pending = {
      format: "json",
      answer: answer.then(
        (a) => a.record,
        () => undefined,
      ),
      lease,
    };
    if (coalesce) this.#core.flights.start(id, pending);
    let outcome: { response: Response; record?: AnswerRecord };
    try {
      outcome = await answer;
    } catch (error) {
      this.#settle(id, pending);
      throw error;
    }
    if (outcome.record === undefined || !isJson(outcome.record.body)) {
      this.#settle(id, pending);
      return this.#report(call, "miss", outcome.response, 0, 0);
    }
    const written = this.#write(call, key, outcome.record);
    void written.finally(() => this.#settle(id, pending));
    return this.#report(
      call,
      "miss",
      withHeaders(outcome.response, { "x-infercache": "miss" }, call),
      0,
      0,
    );
  }

  /** Pumps a streamed miss into the recorder; stores it once complete. */
  async #record(
    call: Call,
    key: string,
    id: string,
    pending: Pending,
    body: ReadableStream<Uint8Array>,
    recorder: StreamRecorder,
  ): Promise<void> {
    const reader = body.getReader();
    try {
      for (;;) {
        if (recorder.state === "abandoned") {
          await reader.cancel().catch(() => {});
          break;
        }
        const { done, value } = await reader.read();
        if (done) {
          recorder.end();
          break;
        }
        recorder.push(value);
      }
    } catch (error) {
      recorder.fail(error);
    }
    if (recorder.state === "done" && isComplete(recorder.text)) {
      const record: AnswerRecord = {
        kind: call.route as AnswerRecord["kind"],
        format: "sse",
        status: 200,
        contentType: "text/event-stream",
        body: recorder.text,
        tokens: tokensOfStream(recorder.text),
      };
      await this.#write(call, key, record);
    }
    this.#settle(id, pending);
  }

  /** An identical request is in flight: share its answer. */
  async #join(call: Call, key: string, pending: Pending): Promise<Response> {
    this.#core.telemetry.report("coalesced", key, call.scope, undefined, undefined);
    if (pending.format === "sse") {
      if (call.stream) {
        const response = await pending.upstream.catch(() => undefined);
        if (response?.ok && pending.recorder.state !== "failed") {
          return this.#report(
            call,
            "coalesced",
            streamResponse(pending.recorder.reader(), response.headers, "coalesced", call),
            0,
            0,
          );
        }
        return this.#miss(call, key, false);
      }
      await pending.recorder.finished();
      if (pending.recorder.state !== "done" || !isComplete(pending.recorder.text))
        return this.#miss(call, key, false);
      const record: AnswerRecord = {
        kind: call.route as AnswerRecord["kind"],
        format: "sse",
        status: 200,
        contentType: "text/event-stream",
        body: pending.recorder.text,
        tokens: 0,
      };
      return this.#serve(call, key, record, undefined, "coalesced");
    }
    const record = await pending.answer;
    if (record === undefined) return this.#miss(call, key, false);
    return this.#serve(call, key, record, undefined, "coalesced");
  }

  /** Answers from a record, converting between stream and JSON when the request differs. */
  #serve(
    call: Call,
    key: string,
    record: AnswerRecord,
    entry: Entry | undefined,
    outcome: Outcome,
  ): Response {
    const answer = this.#render(call, key, record, entry, outcome);
    return new Response(
      typeof answer.body === "string"
        ? answer.body
        : eventStream(answer.body, this.#options.replayDelayMs ?? 0),
      { status: answer.status, headers: answer.headers },
    );
  }

  /** The status, headers and body (text, or SSE events) of an answer from a record; reports it. */
  #render(
    call: Call,
    key: string,
    record: AnswerRecord,
    entry: Entry | undefined,
    outcome: Outcome,
  ): { status: number; headers: Record<string, string>; body: string | string[] } {
    if (outcome === "hit" && entry !== undefined) {
      this.#core.telemetry.report("hit", key, call.scope, entry, undefined);
      this.#tokensSaved += record.tokens;
    }
    const headers: Record<string, string> = {
      "content-type": call.stream ? "text/event-stream" : "application/json",
      "x-infercache": outcome,
      "x-infercache-key": key,
    };
    if (call.stream) headers["cache-control"] = "no-cache";
    if (entry !== undefined) {
      headers.age = String(
        Math.max(0, Math.floor((this.#core.clock.now() - entry.createdAt) / 1000)),
      );
    }
    const savedMs = entry?.computeMs ?? 0;
    headers["server-timing"] =
      `cache;desc="${outcome}";dur=${(performance.now() - call.started).toFixed(3)}, upstream;desc="recorded";dur=${savedMs.toFixed(1)}`;
    let status: number;
    let body: string | string[];
    if (call.stream) {
      const includeUsage =
        (call.body.stream_options as { include_usage?: boolean } | undefined)?.include_usage ===
        true;
      status = 200;
      body =
        record.format === "sse"
          ? splitEvents(record.body)
          : synthesize(record.kind, JSON.parse(record.body) as Json, includeUsage);
    } else {
      status = record.status;
      body =
        record.format === "json" ? record.body : JSON.stringify(assemble(record.kind, record.body));
    }
    this.#emit(call, outcome, status, savedMs, outcome === "hit" ? record.tokens : 0);
    return { status, headers, body };
  }

  async #embeddings(call: Call): Promise<Response> {
    const { body } = call;
    const model = typeof body.model === "string" ? body.model : "";
    const input = body.input;
    const single =
      typeof input === "string" ||
      (Array.isArray(input) && input.every((item) => typeof item === "number"));
    const inputs: unknown[] | undefined = single
      ? [input]
      : Array.isArray(input)
        ? input
        : undefined;
    if (inputs === undefined || inputs.length === 0) return this.#upstream(requestOf(call));
    const { model: _model, input: _input, ...rest } = body;
    const options = rest as Json;
    const keys = inputs.map((item) => embeddingKey(model, item, options, call.keyScope));
    const entries: (Entry | undefined)[] = call.control.noCache
      ? inputs.map(() => undefined)
      : await Promise.all(keys.map((key) => this.#read(key, call)));
    const results = entries.map((entry) => entry?.value as EmbeddingRecord | undefined);
    // Inputs another request is already fetching: wait for those instead of asking again.
    const joined: Promise<void>[] = [];
    const joinedAt: number[] = [];
    const missing: number[] = [];
    for (const [i, key] of keys.entries()) {
      if (results[i] !== undefined) continue;
      const inFlight = call.control.noCache
        ? undefined
        : this.#embeddingFlights.get(FlightTable.id(call.scope, key));
      if (inFlight === undefined) {
        missing.push(i);
        continue;
      }
      joinedAt.push(i);
      joined.push(
        inFlight.then((record) => {
          results[i] = record;
        }),
      );
    }
    let usage: unknown;
    if (missing.length > 0) {
      for (const i of missing)
        this.#core.telemetry.report("miss", keys[i] as string, call.scope, undefined, undefined);
      let settle!: (records: (EmbeddingRecord | undefined)[]) => void;
      const fetched = new Promise<(EmbeddingRecord | undefined)[]>((resolve) => {
        settle = resolve;
      });
      for (const [j, i] of missing.entries()) {
        const id = FlightTable.id(call.scope, keys[i] as string);
        const one = fetched.then((records) => records[j]);
        this.#embeddingFlights.start(id, one);
        this.#embeddingFlights.releaseAfter(id, one, one);
      }
      const wanted = single ? body.input : missing.map((i) => inputs[i]);
      let response: Response;
      try {
        response = await this.#callUpstream(
          call,
          undefined,
          JSON.stringify({ ...body, input: wanted }),
        );
      } catch (error) {
        settle([]);
        throw error;
      }
      if (!response.ok) {
        settle([]);
        return this.#report(call, "miss", response, 0, 0);
      }
      const json = (await response.json()) as {
        data?: { index: number; embedding: unknown }[];
        usage?: { prompt_tokens?: number };
      };
      usage = json.usage;
      const perInput = Math.round((json.usage?.prompt_tokens ?? 0) / missing.length);
      const records: (EmbeddingRecord | undefined)[] = missing.map(() => undefined);
      for (const item of json.data ?? []) {
        const i = missing[item.index];
        if (i === undefined) continue;
        const record: EmbeddingRecord = { embedding: item.embedding, tokens: perInput };
        records[item.index] = record;
        results[i] = record;
        if (!call.control.noStore) void this.#writeEntry(keys[i] as string, call, record);
      }
      settle(records);
    }
    await Promise.all(joined);
    if (results.some((record) => record === undefined)) {
      // An input the shared upstream call did not bring back: send the request as it is.
      return this.#report(call, "miss", await this.#callUpstream(call), 0, 0);
    }
    let savedMs = 0;
    let savedTokens = 0;
    let hits = 0;
    for (const [i, entry] of entries.entries()) {
      if (entry === undefined) continue;
      hits++;
      this.#core.telemetry.report("hit", keys[i] as string, call.scope, entry, undefined);
      savedMs += entry.computeMs ?? 0;
      savedTokens += (results[i] as EmbeddingRecord).tokens;
    }
    for (const i of joinedAt)
      this.#core.telemetry.report("coalesced", keys[i] as string, call.scope, undefined, undefined);
    const served = hits + joinedAt.length;
    const outcome: Outcome =
      missing.length > 0 ? (served > 0 ? "partial" : "miss") : hits > 0 ? "hit" : "coalesced";
    this.#tokensSaved += savedTokens;
    const merged = {
      object: "list",
      data: results.map((record, index) => ({
        object: "embedding",
        index,
        embedding: (record as EmbeddingRecord).embedding,
      })),
      model,
      usage: usage ?? { prompt_tokens: 0, total_tokens: 0 },
    };
    const response = new Response(JSON.stringify(merged), {
      status: 200,
      headers: {
        "content-type": "application/json",
        "x-infercache": outcome,
        "x-infercache-hits": `${served}/${inputs.length}`,
        "server-timing": `cache;desc="${outcome}";dur=${(performance.now() - call.started).toFixed(3)}`,
      },
    });
    return this.#report(call, outcome, response, savedMs, savedTokens);
  }

  #bypass(call: Call): Promise<Response> {
    this.#bypassed++;
    return this.#callUpstream(call).then((response) =>
      this.#report(call, "bypass", withHeaders(response, { "x-infercache": "bypass" }, call), 0, 0),
    );
  }

  /** The store key of a chat or text completion; the response headers and reports carry it. */
  #keyOf(call: Call): string {
    const key =
      call.route === "chat"
        ? chatKey(call.body, call.keyScope)
        : completionKey(call.body, call.keyScope);
    call.key = key;
    return key;
  }

  /** How a chat or text completion is cached: `n > 1` and sampled requests follow their policies. */
  #policyFor(call: Call): SamplingPolicy {
    const { body } = call;
    if (typeof body.n === "number" && body.n > 1 && this.#options.cacheMultipleChoices !== true)
      return "bypass";
    const sampled =
      (typeof body.temperature !== "number" || body.temperature > 0) && body.seed === undefined;
    if (!sampled) return "cache";
    const header = call.head.headers.get(this.#options.samplingHeader ?? "x-infercache-sampling");
    if (header !== null) return parsePolicyHeader(header) ?? this.#sampling;
    return this.#sampling;
  }

  /** Calls the upstream with the original request (minus our own control headers). */
  #callUpstream(call: Call, signal?: AbortSignal, body = call.text): Promise<Response> {
    const request = requestOf(call);
    const headers = new Headers(request.headers);
    headers.delete(this.#options.namespaceHeader ?? "x-infercache-namespace");
    headers.delete(this.#options.samplingHeader ?? "x-infercache-sampling");
    headers.delete("content-length");
    const signals = [request.signal, signal].filter((s): s is AbortSignal => s !== undefined);
    return this.#upstream(request.url, {
      method: "POST",
      headers,
      body,
      signal: signals.length === 1 ? (signals[0] as AbortSignal) : AbortSignal.any(signals),
    });
  }

  async #read(key: string, call: Call): Promise<Entry | undefined> {
    const entry = await this.#core.read(key, call.scope);
    if (entry === undefined) return undefined;
    const accept = call.control.acceptAgeMs;
    if (accept !== undefined && this.#core.clock.now() - entry.createdAt > accept) return undefined;
    return entry;
  }

  #write(call: Call, key: string, record: AnswerRecord): Promise<void> {
    if (call.control.noStore) return Promise.resolve();
    return this.#writeEntry(key, call, record);
  }

  async #writeEntry(key: string, call: Call, value: unknown): Promise<void> {
    const ttl = call.control.maxAgeMs;
    const entry = this.#core.entry(value, performance.now() - call.started, undefined, ttl);
    await this.#core.write(key, call.scope, entry, () => key);
  }

  #settle(id: string, pending: Pending): void {
    this.#core.flights.release(id, pending);
    const lease = pending.lease;
    if (lease !== undefined) {
      pending.lease = undefined;
      this.#core.releaseAfter(lease, undefined);
    }
  }

  #report(
    call: Call,
    outcome: Outcome,
    response: Response,
    savedMs: number,
    savedTokens: number,
  ): Response {
    this.#emit(call, outcome, response.status, savedMs, savedTokens);
    return response;
  }

  #emit(call: Call, outcome: Outcome, status: number, savedMs: number, savedTokens: number): void {
    this.#options.onResult?.({
      route: call.route,
      outcome,
      status,
      stream: call.stream,
      durationMs: performance.now() - call.started,
      savedMs,
      savedTokens,
      model: typeof call.body.model === "string" ? call.body.model : undefined,
      key: call.key,
    });
  }
}

interface Call {
  head: RequestHead;
  /** The Web request; absent on the plain fast path, which never goes upstream. */
  request: Request | undefined;
  route: LlmResult["route"];
  body: Json;
  text: string;
  started: number;
  control: CacheControl;
  scope: Scope;
  keyScope: KeyScope;
  stream: boolean;
  /** The store key of a chat or text completion, once computed. */
  key?: string;
}

function requestOf(call: Call): Request {
  if (call.request === undefined) throw new Error("infercache: the plain path never goes upstream");
  return call.request;
}

function routeOf(path: string): (typeof ROUTES)[number] | undefined {
  const trimmed = path.endsWith("/") ? path.replace(/\/+$/, "") : path;
  return ROUTES.find(([suffix]) => trimmed.endsWith(suffix));
}

function sseEvent(event: string): string {
  return `${event}\n\n`;
}

function eventStream(events: string[], delayMs: number): ReadableStream<Uint8Array> {
  const encoder = new TextEncoder();
  let index = 0;
  return new ReadableStream<Uint8Array>({
    pull: async (controller) => {
      if (index >= events.length) {
        controller.close();
        return;
      }
      if (delayMs > 0 && index > 0) await new Promise((resolve) => setTimeout(resolve, delayMs));
      controller.enqueue(encoder.encode(sseEvent(events[index++] as string)));
    },
  });
}

function streamResponse(
  body: ReadableStream<Uint8Array>,
  upstreamHeaders: Headers,
  outcome: Outcome,
  call: Call,
): Response {
  const headers = new Headers(upstreamHeaders);
  headers.delete("content-length");
  headers.set("x-infercache", outcome);
  if (call.key !== undefined) headers.set("x-infercache-key", call.key);
  return new Response(body, { status: 200, headers });
}

function withHeaders(response: Response, extra: Record<string, string>, call: Call): Response {
  const headers = new Headers(response.headers);
  for (const [name, value] of Object.entries(extra)) headers.set(name, value);
  if (call.key !== undefined) headers.set("x-infercache-key", call.key);
  headers.set("server-timing", `upstream;dur=${(performance.now() - call.started).toFixed(1)}`);
  return new Response(response.body, {
    status: response.status,
    statusText: response.statusText,
    headers,
  });
}

function isEventStream(response: Response): boolean {
  return (response.headers.get("content-type") ?? "").includes("text/event-stream");
}

function isJson(text: string): boolean {
  try {
    JSON.parse(text);
    return true;
  } catch {
    return false;
  }
}

function tokensOf(text: string): number {
  try {
    const usage = (JSON.parse(text) as { usage?: { total_tokens?: number } }).usage;
    return usage?.total_tokens ?? 0;
  } catch {
    return 0;
  }
}

function tokensOfStream(text: string): number {
  try {
    const usage = (assemble("chat", text) as { usage?: { total_tokens?: number } }).usage;
    return usage?.total_tokens ?? 0;
  } catch {
    return 0;
  }
}

function checkPolicy(policy: SamplingPolicy, option: string): SamplingPolicy {
  if (policy === "cache" || policy === "bypass") return policy;
  if (
    typeof policy === "object" &&
    policy !== null &&
    Number.isSafeInteger(policy.bucket) &&
    policy.bucket >= 1
  ) {
    return policy;
  }
  throw new TypeError(
    `Expected \`${option}\` to be "cache", "bypass" or { bucket: N } with N >= 1, got ${JSON.stringify(policy)}`,
  );
}

function parsePolicyHeader(value: string): SamplingPolicy | undefined {
  const text = value.trim().toLowerCase();
  if (text === "cache" || text === "bypass") return text;
  const match = /^bucket\s*=\s*(\d+)$/.exec(text);
  return match !== null && Number(match[1]) >= 1 ? { bucket: Number(match[1]) } : undefined;
}
