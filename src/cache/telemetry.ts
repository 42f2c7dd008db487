/**
 * What a cache reports about its calls: counters (`stats()`), events, the `trackCacheUsage`
 * tracker of the current async context and the caller's `status` object. Every outcome goes
 * through `report`, so the four sinks can never disagree.
 *
 * Keys shown to users — in `status.key`, in events, by `fn.cache.key()` — are always the
 * canonical SHA-256 key (64 hex characters, the same in every process), never an in-memory
 * short key: those hold argument text. Computing it costs a hash, so the call paths pass it only
 * when someone will see it (`wantsKey`).
 */

import { Emitter } from "../base/emitter.js";
import type { Entry, EvictReason, Scope } from "../store/store.js";
import { type LookupOutcome, reportLookup } from "./usage.js";

/** What a call did, filled in when passed as `status` (lru-cache's idea). */
export interface CallStatus {
  /** `stale`: an entry past its ttl, within `staleWhileRevalidate` or `staleIfError`. */
  source?: "hit" | "miss" | "coalesced" | "stale";
  /** The call's key: the canonical SHA-256 of what was hashed (as `fn.cache.key()` gives it). */
  key?: string;
  /** Age of the entry served, ms (hits, stale answers). */
  ageMs?: number;
  /** How long the entry served had been stale, ms (stale answers). */
  staleMs?: number;
  /** Recorded compute time of the entry served (hits), or the compute time (misses), ms. */
  computeMs?: number;
}

/**
 * Why a stale entry was served: `revalidate` (within `staleWhileRevalidate`, a refresh runs in
 * the background) or `error` (within `staleIfError`, computing a fresh one failed).
 */
export type StaleReason = "revalidate" | "error";

/** Why a result was returned but not cached. */
export type WarningReason = "too-large" | "not-snapshotable" | "not-serializable";

export interface CacheEvents {
  hit: { key: string; session: string | undefined; ageMs: number; computeMs: number | undefined };
  miss: { key: string; session: string | undefined };
  coalesced: { key: string; session: string | undefined };
  stale: {
    key: string;
    session: string | undefined;
    ageMs: number;
    staleMs: number;
    reason: StaleReason;
  };
  set: { key: string; session: string | undefined; computeMs: number | undefined };
  evict: { key: string; session: string | undefined; reason: EvictReason };
  error: { operation: string; error: unknown };
  warning: { key: string; session: string | undefined; reason: WarningReason; message: string };
}

export interface CacheStats {
  /** Calls answered from the store. */
  hits: number;
  /** Calls that ran the function (or lookups that found nothing). */
  misses: number;
  /** Calls that joined an identical call already in flight instead of running it again. */
  coalesced: number;
  /** Calls answered with a stale entry (`staleWhileRevalidate`, `staleIfError`). */
  stale: number;
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

export type Outcome = "hit" | "miss" | "coalesced" | "stale";

export class Telemetry {
  hits = 0;
  misses = 0;
  coalesced = 0;
  stale = 0;
  sets = 0;
  rejected = 0;
  evictions = 0;
  errors = 0;
  timeSavedMs = 0;
  readonly events = new Emitter<CacheEvents>();
  readonly #now: () => number;
  /** Manual `Cache` lookups count differently in `trackCacheUsage` ("used cache"). */
  readonly #manual: boolean;

  constructor(now: () => number, manual: boolean) {
    this.#now = now;
    this.#manual = manual;
  }

  /** Whether reporting `outcome` needs the call's public key (someone will see it). */
  wantsKey(outcome: Outcome, status: CallStatus | undefined): boolean {
    return status !== undefined || this.events.has(outcome);
  }

  /**
   * Records what a lookup did, in every sink. `key` is the public key, given when `wantsKey`
   * said so; `entry` is the entry served (hits, stale answers, with `reason` why stale).
   */
  report(
    outcome: Outcome,
    key: string | undefined,
    scope: Scope,
    entry: Entry | undefined,
    status: CallStatus | undefined,
    reason: StaleReason = "revalidate",
  ): void {
    let savedMs = 0;
    switch (outcome) {
      case "hit":
        this.hits++;
        savedMs = entry?.computeMs ?? 0;
        this.timeSavedMs += savedMs;
        break;
      case "miss":
        this.misses++;
        break;
      case "coalesced":
        this.coalesced++;
        break;
      case "stale":
        this.stale++;
        savedMs = entry?.computeMs ?? 0;
        this.timeSavedMs += savedMs;
        break;
    }
    reportLookup(this.#lookupOutcome(outcome), savedMs);
    if (status !== undefined) {
      status.source = outcome;
      if (key !== undefined) status.key = key;
      if (entry !== undefined) {
        status.ageMs = this.#now() - entry.createdAt;
        if (entry.computeMs !== undefined) status.computeMs = entry.computeMs;
        if (outcome === "stale") status.staleMs = this.#now() - (entry.staleAt ?? entry.createdAt);
      }
    }
    if (key === undefined || !this.events.has(outcome)) return;
    const session = scope.session;
    if (outcome === "hit") {
      const e = entry as Entry;
      this.events.emit("hit", {
        key,
        session,
        ageMs: this.#now() - e.createdAt,
        computeMs: e.computeMs,
      });
    } else if (outcome === "stale") {
      const e = entry as Entry;
      const now = this.#now();
      this.events.emit("stale", {
        key,
        session,
        ageMs: now - e.createdAt,
        staleMs: now - (e.staleAt ?? e.createdAt),
        reason,
      });
    } else {
      this.events.emit(outcome, { key, session });
    }
  }

  /** A lookup of a manual `Cache` that found nothing (counted as a miss, not as work run). */
  manualMiss(key: string | undefined, scope: Scope): void {
    this.misses++;
    reportLookup("manual-miss", 0);
    if (key !== undefined && this.events.has("miss")) {
      this.events.emit("miss", { key, session: scope.session });
    }
  }

  stored(key: string | undefined, scope: Scope, entry: Entry): void {
    this.sets++;
    if (key !== undefined && this.events.has("set")) {
      this.events.emit("set", { key, session: scope.session, computeMs: entry.computeMs });
    }
  }

  warn(key: string, scope: Scope, reason: WarningReason, message: string): void {
    this.rejected++;
    this.events.emit("warning", { key, session: scope.session, reason, message });
  }

  fail(operation: string, error: unknown): void {
    this.errors++;
    this.events.emit("error", { operation, error });
  }

  evicted(key: string, scope: Scope, reason: EvictReason): void {
    this.evictions++;
    if (this.events.has("evict")) {
      this.events.emit("evict", { key, session: scope.session, reason });
    }
  }

  stats(usage: { entries: number; bytes: number }): CacheStats {
    return {
      hits: this.hits,
      misses: this.misses,
      coalesced: this.coalesced,
      stale: this.stale,
      sets: this.sets,
      rejected: this.rejected,
      evictions: this.evictions,
      errors: this.errors,
      entries: usage.entries,
      bytes: usage.bytes,
      timeSavedMs: this.timeSavedMs,
    };
  }

  #lookupOutcome(outcome: Outcome): LookupOutcome {
    if (!this.#manual || outcome === "coalesced") return outcome;
    return outcome === "hit" || outcome === "stale" ? "manual-hit" : "manual-miss";
  }
}
