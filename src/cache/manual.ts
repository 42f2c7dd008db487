/**
 * `Cache`: a manual cache, like Gradio's `gr.Cache()`: `get` / `set` of named fields under any
 * hashable key, with LRU and memory limits, TTL, per-session isolation, single-flight
 * `getOrSet`, and `longestPrefix` for KV-prefix reuse.
 *
 * `longestPrefix` uses a radix tree per scope, built from the store on first use and kept up to
 * date by this instance's writes, deletes and the store's evictions. Every candidate is checked
 * against the store before it is returned, so an entry that expired or was removed elsewhere is
 * never served; it is dropped from the tree instead.
 */

import type { Duration } from "../base/duration.js";
import { parseDuration } from "../base/duration.js";
import type { Listener } from "../base/emitter.js";
import { RadixTree, type Sequence } from "../prefix/radix-tree.js";
import type { Entry, Scope } from "../store/store.js";
import { runComputation } from "./computation.js";
import { CacheCore, type CacheEvents, type CacheOptions } from "./core.js";
import { Flight } from "./flight.js";
import { snapshot } from "./snapshot.js";
import type { CacheStats } from "./stats.js";
import { reportLookup } from "./usage.js";

export interface CacheSetOptions {
  /** How long this entry is served: ms or `"10m"`. @default the cache's `ttl` */
  ttl?: Duration;
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

interface Trees {
  text: RadixTree<Map<string, unknown>>;
  tokens: RadixTree<Map<string, unknown>>;
}

export class Cache<F extends object = Record<string, unknown>> {
  readonly #core: CacheCore;
  /** Prefix indexes per scope ("" = shared entries), built on first `longestPrefix`. */
  readonly #trees = new Map<string, Trees>();

  constructor(options: CacheOptions = {}) {
    this.#core = new CacheCore(options, "new Cache()", undefined);
    this.#core.onEvict((event) => this.#unindex(event.scope, event.key, event.entry?.rawKey));
    this.#core.onSessionCleared((id) => this.#trees.delete(id));
  }

  /** The namespace of this cache's entries in its store. */
  get namespace(): string {
    return this.#core.namespace;
  }

  /** The stored fields for `key`, or `undefined`. A hit counts as "used cache" in `trackCacheUsage`. */
  async get(key: unknown): Promise<F | undefined> {
    const core = this.#core;
    const scope = core.scope();
    const storeKey = this.#keyOf(key);
    const entry = await this.#read(storeKey, scope);
    if (entry === undefined) {
      core.miss(storeKey, scope);
      reportLookup("manual-miss", 0);
      return undefined;
    }
    this.#hit(storeKey, scope, entry);
    return this.#out(entry.value as F);
  }

  /** Stores `fields` under `key`, replacing what was there. Resolves to whether it was kept. */
  async set(key: unknown, fields: F, options?: CacheSetOptions): Promise<boolean> {
    return this.#set(key, fields, options, undefined);
  }

  /**
   * The fields for `key`, computing and storing them on a miss. Concurrent calls for the same
   * key share one computation; a computation that throws stores nothing.
   */
  async getOrSet(
    key: unknown,
    compute: () => F | Promise<F>,
    options?: CacheSetOptions & { signal?: AbortSignal },
  ): Promise<F> {
    const found = await this.get(key);
    if (found !== undefined) return found;
    const core = this.#core;
    const scope = core.scope();
    const storeKey = this.#keyOf(key);
    const id = core.flightId(storeKey, scope);
    const existing = core.flights.get(id);
    if (existing instanceof Flight) {
      core.coalesced(storeKey, scope);
      reportLookup("coalesced", 0);
      return existing.join(options?.signal) as Promise<F>;
    }
    const flight: Flight<F> = new Flight(
      async (signal) => {
        const started = performance.now();
        const fields = await runComputation(signal, compute);
        if (!signal.aborted) await this.#set(key, fields, options, performance.now() - started);
        return fields;
      },
      () => {
        if (core.flights.get(id) === flight) core.flights.delete(id);
      },
    );
    core.flights.set(id, flight);
    const done = () => {
      if (core.flights.get(id) === flight) core.flights.delete(id);
    };
    flight.promise.then(done, done);
    return flight.join(options?.signal);
  }

  async has(key: unknown): Promise<boolean> {
    const core = this.#core;
    return (await this.#read(this.#keyOf(key), core.scope())) !== undefined;
  }

  async delete(key: unknown): Promise<boolean> {
    const core = this.#core;
    const scope = core.scope();
    const storeKey = this.#keyOf(key);
    this.#unindex(scope, storeKey, key);
    return core.remove(storeKey, scope);
  }

  /** Drops every entry of this cache, in every session. */
  async clear(): Promise<number> {
    this.#trees.clear();
    return this.#core.clear();
  }

  /** Entries visible to the current scope: the current session's when `perSession` (as `keys()`). */
  size(): Promise<number> {
    return this.#core.size();
  }

  /** The raw keys visible to the current scope, least recently used first. */
  async *keys(): AsyncGenerator<unknown, void, undefined> {
    const core = this.#core;
    try {
      for await (const [, entry] of core.store.entries(core.scope())) yield entry.rawKey;
    } catch (error) {
      core.fail("keys", error);
    }
  }

  /**
   * The longest stored key that is a prefix of `key` (or equal to it), with its fields: for
   * string keys by character, for token-array keys by token. `undefined` when none is.
   */
  async longestPrefix(key: PrefixKey): Promise<PrefixHit<F> | undefined> {
    const kind = prefixKind(key);
    const core = this.#core;
    const scope = core.scope();
    const trees = await this.#treesFor(scope);
    const tree = kind === "text" ? trees.text : trees.tokens;
    for (const candidate of tree.prefixes(key as Sequence)) {
      for (const [storeKey, rawKey] of candidate.value) {
        const entry = await this.#read(storeKey, scope);
        if (entry === undefined) {
          this.#unindex(scope, storeKey, rawKey);
          continue;
        }
        this.#hit(storeKey, scope, entry);
        return {
          key: rawKey as PrefixKey,
          length: candidate.length,
          value: this.#out(entry.value as F),
        };
      }
    }
    reportLookup("manual-miss", 0);
    return undefined;
  }

  stats(): CacheStats {
    return this.#core.stats();
  }

  on<K extends keyof CacheEvents>(type: K, listener: Listener<CacheEvents[K]>): () => void {
    return this.#core.events.on(type, listener);
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
    const scope = core.scope();
    const storeKey = this.#keyOf(key);
    // Keep our own copy of a token array: the caller may reuse its array.
    const rawKey = isTokenArray(key) ? (key as number[] | Uint32Array).slice() : key;
    const value = core.clone ? snapshot(fields, "fields") : fields;
    const stored = await core.write(storeKey, scope, core.entry(value, computeMs, rawKey, ttl));
    if (stored) this.#index(scope, storeKey, rawKey);
    else this.#unindex(scope, storeKey, rawKey);
    return stored;
  }

  #keyOf(key: unknown): string {
    const core = this.#core;
    return isPrimitiveKey(key) ? core.keyOfTuple([key], key, "key") : core.keyOf(key, "key");
  }

  async #read(storeKey: string, scope: Scope): Promise<Entry | undefined> {
    const core = this.#core;
    return core.sync !== undefined
      ? core.readSync(core.sync, storeKey, scope)
      : core.read(storeKey, scope);
  }

  #hit(storeKey: string, scope: Scope, entry: Entry): void {
    this.#core.hit(storeKey, scope, entry);
    reportLookup("manual-hit", entry.computeMs ?? 0);
  }

  #out(value: F): F {
    return this.#core.clone ? snapshot(value) : value;
  }

  async #treesFor(scope: Scope): Promise<Trees> {
    const id = scope.session ?? "";
    let trees = this.#trees.get(id);
    if (trees !== undefined) return trees;
    trees = { text: new RadixTree(), tokens: new RadixTree() };
    this.#trees.set(id, trees);
    try {
      for await (const [storeKey, entry] of this.#core.store.entries(scope)) {
        this.#index(scope, storeKey, entry.rawKey);
      }
    } catch (error) {
      this.#core.fail("entries", error);
    }
    return trees;
  }

  #index(scope: Scope, storeKey: string, rawKey: unknown): void {
    const trees = this.#trees.get(scope.session ?? "");
    if (trees === undefined) return;
    const tree = treeFor(trees, rawKey);
    if (tree === undefined) return;
    const sequence = rawKey as Sequence;
    let keys = tree.get(sequence);
    if (keys === undefined) {
      keys = new Map();
      tree.set(sequence, keys);
    }
    keys.set(storeKey, rawKey);
  }

  #unindex(scope: Scope, storeKey: string, rawKey: unknown): void {
    const trees = this.#trees.get(scope.session ?? "");
    if (trees === undefined) return;
    const tree = treeFor(trees, rawKey);
    const keys = tree?.get(rawKey as Sequence);
    if (tree === undefined || keys === undefined) return;
    keys.delete(storeKey);
    if (keys.size === 0) tree.delete(rawKey as Sequence);
  }
}

function isPrimitiveKey(value: unknown): boolean {
  return (typeof value !== "object" || value === null) && typeof value !== "function";
}

function treeFor(trees: Trees, rawKey: unknown): Trees["text"] | undefined {
  if (typeof rawKey === "string") return trees.text;
  if (isTokenArray(rawKey)) return trees.tokens;
  return undefined;
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
