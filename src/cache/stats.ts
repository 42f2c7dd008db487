/** The counters behind `stats()`. */

export interface CacheStats {
  /** Calls answered from the store. */
  hits: number;
  /** Calls that ran the function (or lookups that found nothing). */
  misses: number;
  /** Calls that joined an identical call already in flight instead of running it again. */
  coalesced: number;
  /** Entries written. */
  sets: number;
  /** Results not stored: bigger than the memory budget, not snapshotable, or not serializable. */
  rejected: number;
  /** Entries this cache lost to the store's limits (size, memory, quota, expiry). */
  evictions: number;
  /** Store failures; each turned one call into an uncached call. */
  errors: number;
  /** Entries held now (this cache's namespace). */
  entries: number;
  /** Estimated bytes held now (this cache's namespace). */
  bytes: number;
  /** Sum of the recorded compute time of every hit and coalesced call, ms. */
  timeSavedMs: number;
}

export class Counters {
  hits = 0;
  misses = 0;
  coalesced = 0;
  sets = 0;
  rejected = 0;
  evictions = 0;
  errors = 0;
  timeSavedMs = 0;
}
