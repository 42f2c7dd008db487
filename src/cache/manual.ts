/**
 * `Cache`: a manual cache, like Gradio's `gr.Cache()`: `get` / `set` of named fields under any
 * hashable key, with LRU and memory limits, TTL, per-session isolation, single-flight
 * `getOrSet`, and `longestPrefix` for KV-prefix reuse.
 *
 * `longestPrefix` uses a radix tree per scope, built from the store on first use and kept up to
 * date by this instance's writes, deletes and the store's evictions. Every candidate is checked
 * against the store before it is returned, so an entry that expired or was removed elsewhere is
 * never served; it is dropped from the tree instead. A scope's trees go when its last indexed
 * entry goes or its session ends, so sessions that come and go leave nothing behind.
 */

import { type Duration, parseDuration } from "../base/duration.js";
import type { Listener } from "../base/emitter.js";
import { CacheMissError, type CacheMode, modeWrites, parseMode } from "../base/mode.js";
import { activeTracer, runSpan, startSpan, storeKind, traceCompute } from "../base/tracing.js";
import { unpinInPlace } from "../base/unpin.js";
import { RadixTree, type Sequence } from "../prefix/radix-tree.js";
import type { Entry, Scope } from "../store/store.js";
import { checkTags } from "../store/tags.js";
import { runComputation } from "./computation.js";
import { CacheCore } from "./core.js";
import { Flight } from "./flight.js";
import { FlightTable } from "./flight-table.js";
import { isPrimitive } from "./function-kind.js";
import { applyArgumentHooks, checkArgumentHooks } from "./hooks.js";
import type { CacheOptions } from "./options.js";
import { type PurgeOptions, purgeFilter } from "./purge.js";
import { snapshot } from "./snapshot.js";
import type { CacheEvents, CacheStats, StaleReason } from "./telemetry.js";

export interface CacheGetOptions {
  /**
   * This call's mode: `refresh` reads as a miss, `replay` throws `CacheMissError` on a miss (so
   * the code around it never computes), the others read. @default the current
   * `withCacheMode`'s, else the cache's `mode`
   */
  mode?: CacheMode;
}

export interface CacheSetOptions {
  /** How long this entry is served: ms or `"10m"`. @default the cache's `ttl` */
  ttl?: Duration;
  /** This call's mode: `read-only` and `replay` store nothing (`set` resolves to false). */
  mode?: CacheMode;
  /**
   * Labels to `purge({ tag })` this entry by: 1 to 200 characters without whitespace, commas or
   * control characters, at most 32. @default none
   */
  tags?: readonly string[];
}

/** The hooks of a manual `Cache`, on the key each method is given. */
export interface CacheKeyHooks {
  /**
   * The key to use instead of the one given, for every method (the stored raw key, `keys()` and
   * `longestPrefix` see it too). Keys that redact alike share one entry. Synchronous; runs
   * after `noStore`. A hook that throws fails the call (`HookError`).
   */
  redact?: (key: unknown) => unknown;
  /**
   * `true`: this key bypasses the cache: `get` and `has` find nothing, `set` stores nothing
   * (resolves `false`), `getOrSet` computes without reading or storing. Sees the key as given.
   */
  noStore?: (key: unknown) => boolean;
}

/** A key usable with `longestPrefix`: a string, or token ids. */
export type PrefixKey = string | readonly number[] | Uint32Array | Int32Array | Uint16Array;

export interface PrefixHit<F> {
  /** The stored key that matched, as it was given to `set`. */
  key: PrefixKey;
  /** How many characters or tokens of the query it covers. */
  length: number;
  value: F;
}

/** One scope's prefix index: the two trees, and each indexed store key's raw key. */
class ScopeIndex {
  readonly text = new RadixTree<Map<string, unknown>>();
  readonly tokens = new RadixTree<Map<string, unknown>>();
  /** Store key -> raw key, to unindex an eviction that reports only the store key. */
  readonly rawKeys = new Map<string, unknown>();

  treeFor(rawKey: unknown): RadixTree<Map<string, unknown>> | undefined {
    if (typeof rawKey === "string") return this.text;
    if (isTokenArray(rawKey)) return this.tokens;
    return undefined;
  }
}

export class Cache<F extends object = Record<string, unknown>> {
  readonly #core: CacheCore<Flight<unknown>>;
  /** Prefix indexes per scope ("" = shared entries), built on first `longestPrefix`. */
  readonly #indexes = new Map<string, ScopeIndex>();
  readonly #hooks:
    | { redact?: (...args: never[]) => unknown[]; noStore?: (...args: never[]) => boolean }
    | undefined;

  constructor(options: CacheOptions & CacheKeyHooks = {}) {
    checkArgumentHooks(options as Parameters<typeof checkArgumentHooks>[0], "new Cache()");
    const { redact, noStore } = options;
    this.#hooks =
      redact === undefined && noStore === undefined
        ? undefined
        : {
            ...(redact !== undefined && { redact: (key: unknown) => [redact(key)] }),
            ...(noStore !== undefined && { noStore }),
          };
    this.#core = new CacheCore(options, "new Cache()", undefined);
    this.#core.onEvict((event) => this.#unindex(event.scope, event.key));
    this.#core.onSessionCleared((id) => this.#indexes.delete(id));
  }

  /** The namespace of this cache's entries in its store. */
  get namespace(): string {
    return this.#core.namespace;
  }

  /**
   * The stored fields for `key`, or `undefined`. A hit counts as "used cache" in
   * `trackCacheUsage`. In `replay` mode a miss throws `CacheMissError`; in `refresh` mode every
   * `get` is a miss.
   */
  async get(given: unknown, options?: CacheGetOptions): Promise<F | undefined> {
    const { key, bypass } = this.#hooked(given);
    if (bypass) return undefined;
    const mode = this.#modeOf(options);
    return this.#traced("get", key, () => this.#get(key, mode));
  }

  /** `get` of a key the hooks have already seen. */
  async #get(key: unknown, mode: CacheMode): Promise<F | undefined> {
    const core = this.#core;
    const scope = core.scope();
    const storeKey = this.#keyOf(key);
    const entry = mode === "refresh" ? undefined : await core.readAny(storeKey, scope);
    if (entry === undefined) {
      core.telemetry.manualMiss(this.#shown("miss", storeKey, key), scope);
      if (mode === "replay") {
        throw new CacheMissError(core.publicKey(storeKey, () => this.#hashOf(key)));
      }
      return undefined;
    }
    this.#hit(storeKey, key, scope, entry);
    return this.#out(entry.value as F);
  }

  /**
   * Stores `fields` under `key`, replacing what was there. Resolves to whether it was kept
   * (never in `read-only` or `replay` mode).
   */
  async set(given: unknown, fields: F, options?: CacheSetOptions): Promise<boolean> {
    const { key, bypass } = this.#hooked(given);
    if (bypass) return false;
    return this.#traced("set", key, () => this.#set(key, fields, options, undefined));
  }

  /**
   * The fields for `key`, computing and storing them on a miss. Concurrent calls for the same
   * key share one computation; a computation that throws stores nothing.
   */
  async getOrSet(
    given: unknown,
    compute: () => F | Promise<F>,
    options?: CacheSetOptions & { signal?: AbortSignal },
  ): Promise<F> {
    const { key, bypass } = this.#hooked(given);
    if (bypass) return compute();
    return this.#traced("getOrSet", key, () => this.#getOrSet(key, compute, options));
  }

  async #getOrSet(
    key: unknown,
    compute: () => F | Promise<F>,
    options?: CacheSetOptions & { signal?: AbortSignal },
  ): Promise<F> {
    // The mode is settled once, so the flight stores (or not) as this call's mode says.
    const mode = this.#modeOf(options);
    // Replay: a stored (fresh) entry, else CacheMissError; never a computation.
    if (mode === "replay") return (await this.#get(key, mode)) as F;
    const core = this.#core;
    const scope = core.scope();
    const storeKey = this.#keyOf(key);
    const sync = core.sync;
    const entry =
      mode === "refresh"
        ? undefined
        : sync !== undefined
          ? core.readEntrySync(sync, storeKey, scope)
          : await core.readEntry(storeKey, scope);
    // Stale entries: within `staleWhileRevalidate` they answer and one refresh runs; within
    // `staleIfError` they answer if `compute` fails.
    let fallback: Entry | undefined;
    if (entry !== undefined) {
      const staleMs = core.staleMs(entry);
      if (staleMs === undefined) {
        this.#hit(storeKey, key, scope, entry);
        return this.#out(entry.value as F);
      }
      if (staleMs < core.stale.whileRevalidateMs) {
        this.#stale(storeKey, key, scope, entry, "revalidate");
        if (modeWrites(mode)) this.#revalidate(key, storeKey, scope, compute, options);
        return this.#out(entry.value as F);
      }
      if (staleMs < core.stale.ifErrorMs) fallback = entry;
    }
    core.telemetry.manualMiss(this.#shown("miss", storeKey, key), scope);
    const id = FlightTable.id(scope, storeKey);
    const flights = core.flights;
    const existing = mode === "refresh" ? undefined : flights.get(id);
    if (existing !== undefined) {
      core.telemetry.report(
        "coalesced",
        this.#shown("coalesced", storeKey, key),
        scope,
        undefined,
        undefined,
      );
      return existing.join(options?.signal) as Promise<F>;
    }
    const flight: Flight<F> = new Flight(
      async (signal) => {
        const started = core.clock.now();
        let fields: F;
        try {
          fields = (await runComputation(signal, () => traceCompute(compute, undefined, []))) as F;
        } catch (error) {
          if (fallback === undefined || signal.aborted) throw error;
          this.#stale(storeKey, key, scope, fallback, "error");
          return this.#out(fallback.value as F);
        }
        if (!signal.aborted) {
          await this.#set(key, fields, { ...options, mode }, core.clock.now() - started);
        }
        return fields;
      },
      () => flights.release(id, flight),
    );
    flights.start(id, flight);
    // `#set` has already awaited the write when the flight settles.
    const done = () => flights.release(id, flight);
    flight.promise.then(done, done);
    return flight.join(options?.signal);
  }

  /** One background refresh of an entry served stale; its failure is reported, never thrown. */
  #revalidate(
    key: unknown,
    storeKey: string,
    scope: Scope,
    compute: () => F | Promise<F>,
    options: CacheSetOptions | undefined,
  ): void {
    const core = this.#core;
    core.refreshInBackground(scope, storeKey, async () => {
      const started = core.clock.now();
      // No caller waits for a refresh, so nothing aborts it.
      const fields = await runComputation(new AbortController().signal, () =>
        traceCompute(compute, undefined, []),
      );
      await this.#set(key, fields as F, options, core.clock.now() - started);
    });
  }

  async has(given: unknown): Promise<boolean> {
    const { key, bypass } = this.#hooked(given);
    if (bypass) return false;
    const core = this.#core;
    return (await core.readAny(this.#keyOf(key), core.scope())) !== undefined;
  }

  async delete(given: unknown): Promise<boolean> {
    const { key } = this.#hooked(given);
    return this.#traced("delete", key, () => this.#delete(key));
  }

  async #delete(key: unknown): Promise<boolean> {
    const core = this.#core;
    const scope = core.scope();
    const storeKey = this.#keyOf(key);
    this.#unindex(scope, storeKey);
    return core.remove(storeKey, scope);
  }

  /** Drops every entry of this cache, in every session. */
  async clear(): Promise<number> {
    this.#indexes.clear();
    return this.#core.clear();
  }

  /**
   * Drops this cache's entries (every session) carrying a tag, or written before an age or a
   * `Date`: `purge({ tag: "doc:1" })`, `purge({ tags: [...], olderThan: "7d" })` (fields combine
   * with AND). Resolves to how many. Rejects on an empty filter and when the store cannot purge.
   */
  async purge(options: PurgeOptions): Promise<number> {
    const core = this.#core;
    return core.purge(purgeFilter(core.namespace, options, core.clock));
  }

  /** Entries visible to the current scope: the current session's when `perSession` (as `keys()`). */
  size(): Promise<number> {
    return this.#core.size();
  }

  /** The raw keys visible to the current scope, least recently used first. */
  async *keys(): AsyncGenerator<unknown, void, undefined> {
    const core = this.#core;
    try {
      for await (const [, entry] of core.store.entries(core.scope())) {
        // A stale entry (kept to be served stale by `getOrSet`) is not a key `get` would find.
        if (core.fresh(entry) !== undefined) yield entry.rawKey;
      }
    } catch (error) {
      core.telemetry.fail("keys", error);
    }
  }

  /**
   * The longest stored key that is a prefix of `key` (or equal to it), with its fields: for
   * string keys by character, for token-array keys by token. `undefined` when none is.
   */
  async longestPrefix(given: PrefixKey): Promise<PrefixHit<F> | undefined> {
    const { key: redacted, bypass } = this.#hooked(given);
    if (bypass) return undefined;
    const key = redacted as PrefixKey;
    const kind = prefixKind(key);
    const core = this.#core;
    const scope = core.scope();
    const index = await this.#indexFor(scope);
    const tree = kind === "text" ? index.text : index.tokens;
    for (const candidate of tree.prefixes(key as Sequence)) {
      for (const [storeKey, rawKey] of candidate.value) {
        const entry = await core.readAny(storeKey, scope);
        if (entry === undefined) {
          this.#unindex(scope, storeKey);
          continue;
        }
        this.#hit(storeKey, rawKey, scope, entry);
        return {
          key: rawKey as PrefixKey,
          length: candidate.length,
          value: this.#out(entry.value as F),
        };
      }
    }
    // Nothing indexed here (a session that never stored): keep no empty trees for it.
    this.#dropIfEmpty(scope, index);
    core.telemetry.manualMiss(undefined, scope);
    return undefined;
  }

  stats(): CacheStats {
    return this.#core.stats();
  }

  on<K extends keyof CacheEvents>(type: K, listener: Listener<CacheEvents[K]>): () => void {
    return this.#core.telemetry.events.on(type, listener);
  }

  /** The key after the hooks, and whether the call bypasses the cache. @throws HookError */
  #hooked(given: unknown): { key: unknown; bypass: boolean } {
    const hooks = this.#hooks;
    if (hooks === undefined) return { key: given, bypass: false };
    const { args, bypass } = applyArgumentHooks(hooks, undefined, [given]);
    return { key: args[0], bypass };
  }

  async #set(
    key: unknown,
    fields: F,
    options: CacheSetOptions | undefined,
    computeMs: number | undefined,
  ): Promise<boolean> {
    if (typeof fields !== "object" || fields === null) {
      throw new TypeError(
        `Expected the fields to be an object such as { result }, got \`${String(fields)}\` (${fields === null ? "null" : typeof fields})`,
      );
    }
    const core = this.#core;
    const ttl = options?.ttl === undefined ? undefined : parseDuration(options.ttl, "ttl");
    const tags = checkTags(options?.tags);
    if (!modeWrites(this.#modeOf(options))) return false;
    const scope = core.scope();
    const storeKey = this.#keyOf(key);
    // Keep our own copy of a token array: the caller may reuse its array. A string key the
    // prefix index keeps is unpinned (a slice would keep its parent alive there).
    const rawKey = isTokenArray(key) ? (key as number[] | Uint32Array).slice() : key;
    if (typeof rawKey === "string") unpinInPlace(rawKey);
    const value = core.clone ? snapshot(fields, "fields") : fields;
    const entry = core.entry(value, computeMs, rawKey, ttl);
    if (tags !== undefined) entry.tags = tags;
    const stored = await core.write(storeKey, scope, entry, () => this.#hashOf(key));
    if (stored) this.#index(scope, storeKey, rawKey);
    else this.#unindex(scope, storeKey);
    return stored;
  }

  #modeOf(options: { mode?: CacheMode | undefined } | undefined): CacheMode {
    const own = options?.mode;
    return this.#core.modeOf(own === undefined ? undefined : parseMode(own, "mode"));
  }

  /**
   * Runs a method in its span (`infercache.cache.get`, …) when a tracer is installed: the parent
   * of its store operations and computation, with the canonical key (a hash, never the key).
   */
  #traced<T>(operation: string, key: unknown, fn: () => Promise<T>): Promise<T> {
    const tracer = activeTracer();
    if (tracer === undefined) return fn();
    const core = this.#core;
    const span = startSpan(tracer, `infercache.cache.${operation}`, {
      "infercache.namespace": core.namespace,
      "infercache.store": storeKind(core.store),
    });
    try {
      span.setAttribute("infercache.key", this.#hashOf(key));
    } catch {
      // An unhashable key: the method itself rejects with the reason.
    }
    return runSpan(span, fn, (value) => {
      if (operation === "get")
        span.setAttribute("infercache.outcome", value === undefined ? "miss" : "hit");
    });
  }

  #keyOf(key: unknown): string {
    const core = this.#core;
    return isPrimitive(key) ? core.keyOfTuple([key], key, "key") : core.keyOf(key, "key");
  }

  #hashOf(key: unknown): string {
    return this.#core.hashOf(key, "key");
  }

  /** The public key of `key` for reporting `outcome`, when someone will see it. */
  #shown(
    outcome: "hit" | "miss" | "coalesced" | "stale",
    storeKey: string,
    key: unknown,
  ): string | undefined {
    const core = this.#core;
    if (!core.telemetry.wantsKey(outcome, undefined)) return undefined;
    return core.publicKey(storeKey, () => this.#hashOf(key));
  }

  #hit(storeKey: string, key: unknown, scope: Scope, entry: Entry): void {
    this.#core.telemetry.report("hit", this.#shown("hit", storeKey, key), scope, entry, undefined);
  }

  #stale(storeKey: string, key: unknown, scope: Scope, entry: Entry, reason: StaleReason): void {
    this.#core.telemetry.report(
      "stale",
      this.#shown("stale", storeKey, key),
      scope,
      entry,
      undefined,
      reason,
    );
  }

  #out(value: F): F {
    return this.#core.clone ? snapshot(value) : value;
  }

  async #indexFor(scope: Scope): Promise<ScopeIndex> {
    const id = scope.session ?? "";
    let index = this.#indexes.get(id);
    if (index !== undefined) return index;
    index = new ScopeIndex();
    this.#indexes.set(id, index);
    try {
      for await (const [storeKey, entry] of this.#core.store.entries(scope)) {
        this.#index(scope, storeKey, entry.rawKey);
      }
    } catch (error) {
      this.#core.telemetry.fail("entries", error);
    }
    return index;
  }

  #index(scope: Scope, storeKey: string, rawKey: unknown): void {
    const index = this.#indexes.get(scope.session ?? "");
    if (index === undefined) return;
    const tree = index.treeFor(rawKey);
    if (tree === undefined) return;
    const sequence = rawKey as Sequence;
    let keys = tree.get(sequence);
    if (keys === undefined) {
      keys = new Map();
      tree.set(sequence, keys);
    }
    keys.set(storeKey, rawKey);
    index.rawKeys.set(storeKey, rawKey);
  }

  #unindex(scope: Scope, storeKey: string): void {
    const index = this.#indexes.get(scope.session ?? "");
    if (index === undefined) return;
    const rawKey = index.rawKeys.get(storeKey);
    if (!index.rawKeys.delete(storeKey)) return;
    const tree = index.treeFor(rawKey);
    const keys = tree?.get(rawKey as Sequence);
    if (tree !== undefined && keys !== undefined) {
      keys.delete(storeKey);
      if (keys.size === 0) tree.delete(rawKey as Sequence);
    }
    this.#dropIfEmpty(scope, index);
  }

  #dropIfEmpty(scope: Scope, index: ScopeIndex): void {
    const id = scope.session ?? "";
    // The shared scope's index is kept: it is one per cache, and rebuilding it costs a scan.
    if (id !== "" && index.rawKeys.size === 0 && this.#indexes.get(id) === index) {
      this.#indexes.delete(id);
    }
  }
}

function isTokenArray(value: unknown): boolean {
  if (Array.isArray(value)) return value.every((item) => Number.isInteger(item));
  return (
    value instanceof Uint32Array || value instanceof Int32Array || value instanceof Uint16Array
  );
}

function prefixKind(key: unknown): "text" | "tokens" {
  if (typeof key === "string") return "text";
  if (isTokenArray(key)) return "tokens";
  throw new TypeError(
    `Expected the key of longestPrefix to be a string or an array of token ids (integers, or a Uint32Array), got ${Array.isArray(key) ? "an array with non-integer items" : typeof key}`,
  );
}
