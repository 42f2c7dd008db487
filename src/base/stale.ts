/**
 * Serving stale (RFC 5861's `stale-while-revalidate` and `stale-if-error`, in the cache's terms).
 * An entry that may be served stale is written with `staleAt` (when it stops being fresh) and an
 * `expiresAt` that many ms later (the longest stale window asked for when it was written): the
 * store keeps it until then. Every reader asks `staleFor` before serving: `undefined` is a fresh
 * entry, a number is how long it has been stale, to compare with the window the caller allows.
 * Serving a stale entry never rewrites it, so stale answers never extend its life.
 */

/** The times of a stored entry that freshness depends on (the store's `Entry` has them). */
export interface Lifetime {
  readonly expiresAt?: number | undefined;
  readonly staleAt?: number | undefined;
}

/** How long past its freshness an entry may still be served, ms (0: never). */
export interface StaleWindows {
  /** Served stale while one refresh runs in the background. */
  readonly whileRevalidateMs: number;
  /** Served stale when computing a fresh one fails (an upstream 5xx, a timeout, a dead model). */
  readonly ifErrorMs: number;
}

export const NO_STALE: StaleWindows = { whileRevalidateMs: 0, ifErrorMs: 0 };

/**
 * The entry's times for a lifetime of `ttlMs` (undefined or 0: forever) written at `createdAt`:
 * fresh until `createdAt + ttl`, kept the longer stale window past that.
 */
export function lifetimeTimes(
  createdAt: number,
  ttlMs: number | undefined,
  windows: StaleWindows,
): { expiresAt?: number; staleAt?: number } {
  if (ttlMs === undefined || ttlMs <= 0) return {};
  const fresh = createdAt + ttlMs;
  const keep = Math.max(windows.whileRevalidateMs, windows.ifErrorMs);
  return keep > 0 ? { staleAt: fresh, expiresAt: fresh + keep } : { expiresAt: fresh };
}

/** `undefined` while `entry` is fresh at `now`; else how many ms it has been stale. */
export function staleFor(entry: Lifetime, now: number): number | undefined {
  const staleAt = entry.staleAt ?? entry.expiresAt;
  return staleAt === undefined || now < staleAt ? undefined : now - staleAt;
}
