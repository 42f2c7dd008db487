/**
 * Cache modes: how a call uses the cache, the same in `cache(fn)`, `Cache`, `cachingFetch` and
 * the gateway (`--mode`, `x-infercache-mode`).
 *
 * - `read-write` (default): serve hits; compute a miss and store it.
 * - `read-only`: serve hits; compute a miss and store nothing.
 * - `refresh`: never serve a hit; always compute and store (overwrites what was there).
 * - `replay`: serve hits; a miss never reaches the model or upstream and fails at once with
 *   `CacheMissError` (`cache_miss` in the gateway), naming the key. For test suites that run on
 *   recorded answers, deterministic and free (VCR's and Polly.js's replay).
 * - `record`: serve hits; compute a miss and store it, also where the sampling policy would
 *   bypass the cache (a sampled LLM request), so that `replay` finds every answer it recorded.
 *
 * Which mode a call runs in, first given wins: the call's own (`fn.cache.with({ mode })`, a
 * `Cache` method's `{ mode }`, the `x-infercache-mode` header), then the innermost
 * `withCacheMode(mode, fn)` around it, then the cache's `mode` option, then `read-write`.
 */

import { AsyncLocalStorage } from "node:async_hooks";

export const CACHE_MODES = ["read-write", "read-only", "refresh", "replay", "record"] as const;

export type CacheMode = (typeof CACHE_MODES)[number];

/** Whether a mode serves entries it finds. */
export function modeReads(mode: CacheMode): boolean {
  return mode !== "refresh";
}

/** Whether a mode stores what it computes. */
export function modeWrites(mode: CacheMode): boolean {
  return mode !== "read-only" && mode !== "replay";
}

/** Whether a mode may run the computation (or call the upstream) on a miss. */
export function modeComputes(mode: CacheMode): boolean {
  return mode !== "replay";
}

const scopes = new AsyncLocalStorage<CacheMode>();
/**
 * Whether `withCacheMode` was ever called: until then no call pays for an async-context read
 * (a cached sync function's hit costs ~50-80 ns, and a store lookup would be a third of it).
 */
let scoped = false;

/**
 * Runs `fn` with `mode` as the mode of every cached call inside it (its async continuations
 * included), unless a call names its own. For test suites: `withCacheMode("replay", run)`.
 */
export function withCacheMode<T>(mode: CacheMode, fn: () => T): T {
  const checked = parseMode(mode, "mode");
  scoped = true;
  return scopes.run(checked, fn);
}

/** Whether any `withCacheMode` scope was ever entered (until then, a call's mode is its cache's). */
export function anyModeScope(): boolean {
  return scoped;
}

/** The mode of the innermost `withCacheMode` around the current async context, if any. */
export function currentCacheMode(): CacheMode | undefined {
  return scoped ? scopes.getStore() : undefined;
}

/** The mode named by `value`; `name` is the option or header it came from, for the message. */
export function parseMode(value: unknown, name: string): CacheMode {
  if (typeof value === "string" && (CACHE_MODES as readonly string[]).includes(value))
    return value as CacheMode;
  const shown = typeof value === "string" ? `\`${value.slice(0, 40)}\`` : String(value);
  throw new TypeError(
    `Expected \`${name}\` to be one of ${CACHE_MODES.map((m) => `"${m}"`).join(", ")}, got ${shown} (${typeof value})`,
  );
}

/**
 * A miss in `replay` mode: nothing recorded for this call, and replay never computes. `key` is the
 * call's canonical key (as `fn.cache.key()` and `x-infercache-key` show it), never argument text.
 */
export class CacheMissError extends Error {
  override readonly name = "CacheMissError";
  readonly code = "cache_miss";
  constructor(readonly key: string) {
    super(
      `infercache: cache_miss: nothing recorded for key ${key} and the mode is "replay", which never computes; record it first (mode "record", or \`infercache warm\`), or use another mode`,
    );
  }
}
