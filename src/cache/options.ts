/**
 * The options `cache(fn)` and `new Cache()` share, as a union that makes the impossible
 * combinations type errors (limits of the default MemoryStore next to a store of your own, a
 * store of your own without a namespace), and their validation, done once at construction for
 * JavaScript callers the types cannot stop.
 */

import { type Clock, systemClock } from "../base/clock.js";
import { type Duration, parseDuration } from "../base/duration.js";
import { type CacheMode, parseMode } from "../base/mode.js";
import type { Size } from "../base/size.js";
import { NO_STALE, type StaleWindows } from "../base/stale.js";
import { MemoryStore } from "../store/memory.js";
import type { Store } from "../store/store.js";

/** Options that apply whichever store holds the entries. */
export interface CommonCacheOptions {
  /**
   * How long an entry is fresh: ms or `"10m"`, `"1h30m"`. With `staleWhileRevalidate` or
   * `staleIfError` the store keeps it the longer window past that, to be served stale.
   * @default forever
   */
  ttl?: Duration;
  /**
   * For how long after its `ttl` an entry may still answer a call at once while one refresh
   * runs in the background (RFC 5861's `stale-while-revalidate`): ms or `"1m"`. The caller
   * gets `status.source === "stale"`; a refresh that fails is reported (`error` event with
   * `operation: "refresh"`, `stats().errors`) and leaves the stale entry as it was. Needs `ttl`.
   * @default 0 (never)
   */
  staleWhileRevalidate?: Duration;
  /**
   * For how long after its `ttl` an entry may answer a call whose computation throws or
   * rejects, instead of the error (RFC 5861's `stale-if-error`): ms or `"1h"`. Needs `ttl`.
   * Serving stale never extends an entry's life; only a successful computation writes a new one.
   * @default 0 (never)
   */
  staleIfError?: Duration;
  /**
   * Isolate entries per session (see `runInSession`): a session reads only its own entries and
   * `endSession(id)` drops them. Outside a session, calls use the shared entries.
   * @default false
   */
  perSession?: boolean;
  /** Part of every key: bump it to stop serving everything cached before. */
  version?: string | number;
  /**
   * Give every hit its own deep copy, so a caller that mutates a result cannot change what
   * others get. Off by default: hits share the stored value, as in lru-cache and Gradio.
   * @default false
   */
  clone?: boolean;
  /** Source of time for `ttl`, ages and compute times. @default Date.now */
  clock?: Clock;
  /**
   * With a store shared by processes (Redis): how long to wait for another process computing the
   * same call before computing here too, ms.
   * @default 30000
   */
  waitTimeoutMs?: number;
  /**
   * How calls use the cache: `"read-write"` (serve hits, store misses), `"read-only"` (serve
   * hits, store nothing), `"refresh"` (always compute, store), `"replay"` (serve hits; a miss
   * throws `CacheMissError` without computing) or `"record"` (as read-write; in the LLM layer
   * it also stores sampled requests). A call's own mode (`fn.cache.with({ mode })`) and
   * `withCacheMode(mode, fn)` around it come first.
   * @default "read-write"
   */
  mode?: CacheMode;
}

/** Entries in a MemoryStore of this cache's own, bounded by these limits. */
export interface MemoryCacheOptions extends CommonCacheOptions {
  store?: undefined;
  /** Maximum entries (LRU) of the default MemoryStore. 0 = unlimited. @default 128 */
  maxSize?: number;
  /** Maximum bytes of the default MemoryStore: a number or `"512mb"`, `"1.5GiB"`. @default unlimited */
  maxMemory?: Size;
  /** Maximum entries one session may hold in the default MemoryStore. @default unlimited */
  maxSizePerSession?: number;
  /** Maximum bytes one session may hold in the default MemoryStore. @default unlimited */
  maxMemoryPerSession?: Size;
  /** Separates this cache's entries from others'. @default the function's name, or a fresh one */
  namespace?: string;
}

/** Entries in a store you give (SQLite, Redis, a shared MemoryStore): set its limits on it. */
export interface StoreCacheOptions extends CommonCacheOptions {
  /** Where entries live. Its own options bound it. */
  store: Store;
  /** Separates this cache's entries from other caches in the same store. */
  namespace: string;
  maxSize?: never;
  maxMemory?: never;
  maxSizePerSession?: never;
  maxMemoryPerSession?: never;
}

/** Options shared by `cache(fn)` and `new Cache()`. */
export type CacheOptions = MemoryCacheOptions | StoreCacheOptions;

/** The options as the core uses them, checked. */
export interface ResolvedCacheOptions {
  store: Store;
  /** Whether the store was created here (it is this cache's alone). */
  ownStore: boolean;
  namespace: string;
  perSession: boolean;
  clone: boolean;
  ttl: number;
  /** How long past `ttl` entries may be served stale (`NO_STALE` without the options). */
  stale: StaleWindows;
  clock: Clock;
  waitTimeoutMs: number;
  mode: CacheMode;
  /** The hash context every key of this cache carries (its version). */
  context: string;
}

let anonymousNamespaces = 0;

const MEMORY_LIMITS = ["maxSize", "maxMemory", "maxSizePerSession", "maxMemoryPerSession"] as const;

/** Checks `options` and fills in the defaults. `what` names the API in messages. */
export function resolveCacheOptions(
  options: CacheOptions,
  what: string,
  defaultNamespace: string | undefined,
): ResolvedCacheOptions {
  const given = options as MemoryCacheOptions & { store?: Store };
  if (given.store !== undefined) {
    for (const limit of MEMORY_LIMITS) {
      if (given[limit] !== undefined) {
        throw new TypeError(
          `${what}: \`${limit}\` applies to the default MemoryStore; with your own \`store\`, set \`${limit}\` on the store instead`,
        );
      }
    }
    if (given.namespace === undefined) {
      throw new TypeError(
        `${what}: pass a \`namespace\` with \`store\`, so this cache's entries cannot mix with other caches in the same store`,
      );
    }
  }
  if (
    given.namespace !== undefined &&
    (typeof given.namespace !== "string" || given.namespace === "")
  ) {
    throw new TypeError(
      `Expected \`namespace\` to be a non-empty string, got \`${String(given.namespace)}\` (${typeof given.namespace})`,
    );
  }
  const version = given.version;
  if (version !== undefined && typeof version !== "string" && typeof version !== "number") {
    throw new TypeError(
      `Expected \`version\` to be a string or a number, got \`${String(version)}\` (${typeof version})`,
    );
  }
  const clock = given.clock ?? systemClock;
  const store =
    given.store ??
    new MemoryStore({
      ...(given.maxSize !== undefined && { maxSize: given.maxSize }),
      ...(given.maxMemory !== undefined && { maxMemory: given.maxMemory }),
      ...(given.maxSizePerSession !== undefined && { maxSizePerSession: given.maxSizePerSession }),
      ...(given.maxMemoryPerSession !== undefined && {
        maxMemoryPerSession: given.maxMemoryPerSession,
      }),
      clock,
    });
  const ttl = given.ttl === undefined ? 0 : parseDuration(given.ttl, "ttl");
  return {
    store,
    ownStore: given.store === undefined,
    namespace: given.namespace ?? defaultNamespace ?? `anonymous-${++anonymousNamespaces}`,
    perSession: given.perSession ?? false,
    clone: given.clone ?? false,
    ttl,
    stale: staleWindows(given, ttl, what),
    clock,
    waitTimeoutMs: given.waitTimeoutMs ?? 30_000,
    mode: given.mode === undefined ? "read-write" : parseMode(given.mode, "mode"),
    context: version === undefined ? "" : `version=${typeof version}:${version}`,
  };
}

/**
 * The stale windows of `options`, ms. A window needs a lifetime to start from: without a `ttl`
 * entries are fresh forever and a window would never apply, so it is refused, naming the fix.
 */
export function staleWindows(
  options: { staleWhileRevalidate?: Duration | undefined; staleIfError?: Duration | undefined },
  ttl: number,
  what: string,
): StaleWindows {
  const whileRevalidateMs =
    options.staleWhileRevalidate === undefined
      ? 0
      : parseDuration(options.staleWhileRevalidate, "staleWhileRevalidate");
  const ifErrorMs =
    options.staleIfError === undefined ? 0 : parseDuration(options.staleIfError, "staleIfError");
  if (whileRevalidateMs === 0 && ifErrorMs === 0) return NO_STALE;
  if (ttl <= 0) {
    const option = whileRevalidateMs > 0 ? "staleWhileRevalidate" : "staleIfError";
    throw new TypeError(
      `${what}: \`${option}\` needs a \`ttl\`: an entry is served stale once its ttl is over, and without one it is fresh forever; pass \`ttl\` too (for example ttl: "10m")`,
    );
  }
  return { whileRevalidateMs, ifErrorMs };
}
