/**
 * `trackCacheUsage(fn)`: did this work come from a cache? Gradio shows "from cache" when a
 * result came wholly from `@gr.cache` and "used cache" when the function ran but reused part of
 * its work; this reports the same as data, with timings.
 *
 * Cached functions and manual caches report every lookup to the tracker of the current async
 * context. When no tracker is active anywhere, reporting is one integer comparison.
 */

import { AsyncLocalStorage } from "node:async_hooks";

/** `full`: every cached call in the scope was served from a cache (no cached function ran);
 * `partial`: some were, or a manual `Cache` lookup hit while the function ran;
 * `none`: nothing came from a cache. */
export type CacheUsage = "full" | "partial" | "none";

export interface CacheUsageReport<T> {
  result: T;
  usage: CacheUsage;
  /** Wall time of `fn`, ms. */
  durationMs: number;
  /** Recorded compute time of everything served from a cache, ms. */
  savedMs: number;
  hits: number;
  misses: number;
  coalesced: number;
  /** Calls answered with a stale entry (`staleWhileRevalidate`, `staleIfError`). */
  stale: number;
}

class Tracker {
  hits = 0;
  misses = 0;
  coalesced = 0;
  stale = 0;
  manualHits = 0;
  savedMs = 0;
}

const trackerStorage = new AsyncLocalStorage<Tracker>();
let activeTrackers = 0;

export type LookupOutcome = "hit" | "miss" | "coalesced" | "stale" | "manual-hit" | "manual-miss";

/** Called by caches on every lookup. */
export function reportLookup(outcome: LookupOutcome, savedMs: number): void {
  if (activeTrackers === 0) return;
  const tracker = trackerStorage.getStore();
  if (tracker === undefined) return;
  switch (outcome) {
    case "hit":
      tracker.hits++;
      break;
    case "coalesced":
      tracker.coalesced++;
      break;
    case "stale":
      tracker.stale++;
      break;
    case "miss":
      tracker.misses++;
      return;
    case "manual-hit":
      tracker.manualHits++;
      break;
    case "manual-miss":
      return;
  }
  tracker.savedMs += savedMs;
}

/**
 * Runs `fn` (sync or async) and reports whether its result came from a cache.
 * For a generator-returning `fn`, consume the generator inside `fn`.
 */
export async function trackCacheUsage<T>(fn: () => T | Promise<T>): Promise<CacheUsageReport<T>> {
  const tracker = new Tracker();
  const started = performance.now();
  activeTrackers++;
  let result: T;
  try {
    result = await trackerStorage.run(tracker, fn);
  } finally {
    activeTrackers--;
  }
  const served = tracker.hits + tracker.coalesced + tracker.stale;
  const usage: CacheUsage =
    tracker.manualHits > 0
      ? "partial"
      : served > 0 && tracker.misses === 0
        ? "full"
        : served > 0
          ? "partial"
          : "none";
  return {
    result,
    usage,
    durationMs: performance.now() - started,
    savedMs: tracker.savedMs,
    hits: tracker.hits + tracker.manualHits,
    misses: tracker.misses,
    coalesced: tracker.coalesced,
    stale: tracker.stale,
  };
}
