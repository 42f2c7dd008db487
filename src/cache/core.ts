/**
 * The engine shared by `cache(fn)` and `Cache`: which store and scope an entry goes to, how a
 * value becomes a key, reading and writing with fail-open error handling, counters and events,
 * and the per-instance map of computations in flight.
 *
 * A store failure never reaches the caller: a read that throws is a miss, a write that throws
 * leaves the result uncached; both are counted in `stats().errors` and emitted as `error`.
 */

import { type Clock, systemClock } from "../base/clock.js";
import { type Duration, parseDuration } from "../base/duration.js";
import { Emitter } from "../base/emitter.js";
import type { Size } from "../base/size.js";
import { hashKey, shortKey } from "../key/index.js";
import { MemoryStore } from "../store/memory.js";
import type {
  Entry,
  EvictReason,
  FlightLease,
  Scope,
  SetOutcome,
  Store,
  StoreEvent,
  SyncStore,
} from "../store/store.js";
import { KeyMemo } from "./key-memo.js";
import { currentSession, registerSessionHolder, type SessionHolder } from "./session.js";
import { type CacheStats, Counters } from "./stats.js";

/** Options shared by `cache(fn)` and `new Cache()`. */
export interface CacheOptions {
  /** Maximum entries (LRU) of the default MemoryStore. 0 = unlimited. @default 128 */
  maxSize?: number;
  /** Maximum bytes of the default MemoryStore: a number or `"512mb"`, `"1.5GiB"`. @default unlimited */
  maxMemory?: Size;
  /** Maximum entries one session may hold in the default MemoryStore. @default unlimited */
  maxSizePerSession?: number;
  /** Maximum bytes one session may hold in the default MemoryStore. @default unlimited */
  maxMemoryPerSession?: Size;
  /** How long an entry is served: ms or `"10m"`, `"1h30m"`. @default forever */
  ttl?: Duration;
  /**
   * Isolate entries per session (see `runInSession`): a session reads only its own entries and
   * `endSession(id)` drops them. Outside a session, calls use the shared entries.
   * @default false
   */
  perSession?: boolean;
  /**
   * Where entries live. @default a new MemoryStore with `maxSize`/`maxMemory`. With a store of
   * your own, set the limits on the store, and give a `namespace`.
   */
  store?: Store;
  /** Separates this cache's entries from others in the same store. Required with `store`. */
  namespace?: string;
  /** Part of every key: bump it to stop serving everything cached before. */
  version?: string | number;
  /**
   * Give every hit its own deep copy, so a caller that mutates a result cannot change what
   * others get. Off by default: hits share the stored value, as in lru-cache and Gradio.
   * @default false
   */
  clone?: boolean;
  /** Source of time for `ttl`. @default Date.now */
  clock?: Clock;
  /**
   * With a store shared by processes (Redis): how long to wait for another process computing the
   * same call before computing here too, ms.
   * @default 30000
   */
  waitTimeoutMs?: number;
}

/** What a call did, filled in when passed as `status` (lru-cache's idea). */
export interface CallStatus {
  source?: "hit" | "miss" | "coalesced";
  /** The key the call was stored under. */
  key?: string;
  /** Age of the entry served, ms (hits). */
  ageMs?: number;
  /** Recorded compute time of the entry served (hits), or the compute time (misses), ms. */
  computeMs?: number;
}

/** Why a result was returned but not cached. */
export type WarningReason = "too-large" | "not-snapshotable" | "not-serializable";

export interface CacheEvents {
  hit: { key: string; session: string | undefined; ageMs: number; computeMs: number | undefined };
  miss: { key: string; session: string | undefined };
  coalesced: { key: string; session: string | undefined };
  set: { key: string; session: string | undefined; computeMs: number | undefined };
  evict: { key: string; session: string | undefined; reason: EvictReason };
  error: { operation: string; error: unknown };
  warning: { key: string; session: string | undefined; reason: WarningReason; message: string };
}

let anonymousNamespaces = 0;

export class CacheCore implements SessionHolder {
  readonly store: Store;
  readonly sync: SyncStore | undefined;
  readonly namespace: string;
  readonly perSession: boolean;
  readonly clone: boolean;
  readonly ttl: number;
  readonly clock: Clock;
  readonly waitTimeoutMs: number;
  readonly counters = new Counters();
  readonly events = new Emitter<CacheEvents>();
  readonly flights = new Map<string, unknown>();
  readonly #context: string;
  /** Argument tuples to store keys, for in-process stores (where keys are cheap to look up). */
  readonly #memo: KeyMemo | undefined;
  readonly #globalScope: Scope;
  readonly #evictHooks: ((event: StoreEvent) => void)[] = [];
  readonly #sessionHooks: ((id: string) => void)[] = [];

  constructor(options: CacheOptions, what: string, defaultNamespace: string | undefined) {
    if (options.store !== undefined) {
      for (const limit of [
        "maxSize",
        "maxMemory",
        "maxSizePerSession",
        "maxMemoryPerSession",
      ] as const) {
        if (options[limit] !== undefined) {
          throw new TypeError(
            `${what}: \`${limit}\` applies to the default MemoryStore; with your own \`store\`, set \`${limit}\` on the store instead`,
          );
        }
      }
      if (options.namespace === undefined) {
        throw new TypeError(
          `${what}: pass a \`namespace\` with \`store\`, so this cache's entries cannot mix with other caches in the same store`,
        );
      }
    }
    if (
      options.namespace !== undefined &&
      (typeof options.namespace !== "string" || options.namespace === "")
    ) {
      throw new TypeError(
        `Expected \`namespace\` to be a non-empty string, got \`${String(options.namespace)}\` (${typeof options.namespace})`,
      );
    }
    const version = options.version;
    if (version !== undefined && typeof version !== "string" && typeof version !== "number") {
      throw new TypeError(
        `Expected \`version\` to be a string or a number, got \`${String(version)}\` (${typeof version})`,
      );
    }
    this.clock = options.clock ?? systemClock;
    this.waitTimeoutMs = options.waitTimeoutMs ?? 30_000;
    this.store =
      options.store ??
      new MemoryStore({
        ...(options.maxSize !== undefined && { maxSize: options.maxSize }),
        ...(options.maxMemory !== undefined && { maxMemory: options.maxMemory }),
        ...(options.maxSizePerSession !== undefined && {
          maxSizePerSession: options.maxSizePerSession,
        }),
        ...(options.maxMemoryPerSession !== undefined && {
          maxMemoryPerSession: options.maxMemoryPerSession,
        }),
        clock: this.clock,
      });
    this.sync = this.store.sync;
    this.namespace = options.namespace ?? defaultNamespace ?? `anonymous-${++anonymousNamespaces}`;
    this.perSession = options.perSession ?? false;
    this.clone = options.clone ?? false;
    this.ttl = options.ttl === undefined ? 0 : parseDuration(options.ttl, "ttl");
    this.#context = version === undefined ? "" : `version=${typeof version}:${version}`;
    this.#globalScope = { namespace: this.namespace };
    this.#memo = this.sync === undefined ? undefined : new KeyMemo();
    if (this.perSession) registerSessionHolder(this);
    this.#subscribe();
  }

  /** The scope of the current call: the session's when per-session and inside a session. */
  scope(): Scope {
    if (!this.perSession) return this.#globalScope;
    const session = currentSession();
    return session === undefined ? this.#globalScope : { namespace: this.namespace, session };
  }

  /** The store key for `value`: a short key for in-process stores when possible, else a hash. */
  keyOf(value: unknown, root: string): string {
    if (this.sync !== undefined) {
      const short = shortKey(value, this.#context);
      if (short !== undefined) return short;
    }
    return hashKey(value, { context: this.#context, root });
  }

  /**
   * `keyOf(value)` through the memo of recent primitive tuples: `tuple` is what the memo is
   * keyed by — the argument list itself, or `[value]` for a single primitive key. One cache
   * uses one of the two forms, never both.
   */
  keyOfTuple(tuple: readonly unknown[], value: unknown, root: string): string {
    const memo = this.#memo;
    if (memo === undefined) return this.keyOf(value, root);
    let key = memo.get(tuple);
    if (key === undefined) {
      key = this.keyOf(value, root);
      memo.set(tuple, key);
    }
    return key;
  }

  /** The canonical hash of `value` under this cache's version, as other stores would key it. */
  hashOf(value: unknown, root: string): string {
    return hashKey(value, { context: this.#context, root });
  }

  /** Identifies a computation in flight: key plus session. */
  flightId(key: string, scope: Scope): string {
    return scope.session === undefined ? key : `${scope.session.length}:${scope.session}|${key}`;
  }

  /** Reads an entry; a store failure counts as an error and reads as a miss. */
  async read(key: string, scope: Scope): Promise<Entry | undefined> {
    try {
      return await this.store.get(key, scope);
    } catch (error) {
      this.fail("get", error);
      return undefined;
    }
  }

  /**
   * A read for a shared store that coordinates processes: on a miss it takes the cross-process
   * lock, or waits (bounded) for the process that holds it and reads again. `lease` is set when
   * this process must compute and release it; `waited` when the entry came from another process's
   * computation. Coordination failures fall back to computing, like every store failure.
   */
  async lookupShared(
    key: string,
    scope: Scope,
  ): Promise<{ entry?: Entry; lease?: FlightLease; waited?: boolean }> {
    const entry = await this.read(key, scope);
    if (entry !== undefined) return { entry };
    const coordinator = this.store.flights;
    if (coordinator === undefined) return {};
    try {
      const lease = await coordinator.acquire(key, scope);
      if (lease !== undefined) return { lease };
      await coordinator.waitFor(key, scope, this.waitTimeoutMs);
    } catch (error) {
      this.fail("lock", error);
      return {};
    }
    const after = await this.read(key, scope);
    return after === undefined ? {} : { entry: after, waited: true };
  }

  /** Releases a cross-process lease once the entry is written (or at once on failure). */
  releaseAfter(lease: FlightLease, written: Promise<void> | undefined): void {
    const release = () => lease.release().catch((error: unknown) => this.fail("unlock", error));
    if (written === undefined) void release();
    else void written.then(release, release);
  }

  readSync(sync: SyncStore, key: string, scope: Scope): Entry | undefined {
    try {
      return sync.getSync(key, scope);
    } catch (error) {
      this.fail("get", error);
      return undefined;
    }
  }

  /** Builds the entry for a computed value. `ttl` overrides the cache's. */
  entry(value: unknown, computeMs: number | undefined, rawKey?: unknown, ttl?: number): Entry {
    const createdAt = this.clock.now();
    const lifetime = ttl ?? this.ttl;
    const entry: Entry = { value, createdAt };
    if (lifetime > 0) entry.expiresAt = createdAt + lifetime;
    if (computeMs !== undefined) entry.computeMs = computeMs;
    if (rawKey !== undefined) entry.rawKey = rawKey;
    return entry;
  }

  /**
   * Writes an entry and says whether it was stored; synchronous for in-process stores. Never
   * throws: a store failure is counted and reads as not stored.
   */
  write(key: string, scope: Scope, entry: Entry): boolean | Promise<boolean> {
    const sync = this.sync;
    if (sync !== undefined) {
      try {
        return this.#written(key, scope, entry, sync.setSync(key, scope, entry));
      } catch (error) {
        this.fail("set", error);
        return false;
      }
    }
    return this.store.set(key, scope, entry).then(
      (outcome) => this.#written(key, scope, entry, outcome),
      (error: unknown) => {
        this.fail("set", error);
        return false;
      },
    );
  }

  /** Counts and reports a write; true when the entry was stored. */
  #written(key: string, scope: Scope, entry: Entry, outcome: SetOutcome): boolean {
    if (outcome === "stored") {
      this.counters.sets++;
      if (this.events.has("set")) {
        this.events.emit("set", { key, session: scope.session, computeMs: entry.computeMs });
      }
      return true;
    }
    this.warn(
      key,
      scope,
      outcome,
      outcome === "too-large"
        ? "the result is larger than the cache's memory budget; it was returned but not cached"
        : "the result has a part that cannot be serialized for this store (a class instance or a function); it was returned but not cached",
    );
    return false;
  }

  warn(key: string, scope: Scope, reason: WarningReason, message: string): void {
    this.counters.rejected++;
    this.events.emit("warning", { key, session: scope.session, reason, message });
  }

  fail(operation: string, error: unknown): void {
    this.counters.errors++;
    this.events.emit("error", { operation, error });
  }

  /** Records a hit (counters, events, status). */
  hit(key: string, scope: Scope, entry: Entry): void {
    const counters = this.counters;
    counters.hits++;
    if (entry.computeMs !== undefined) counters.timeSavedMs += entry.computeMs;
    if (this.events.has("hit")) {
      this.events.emit("hit", {
        key,
        session: scope.session,
        ageMs: this.clock.now() - entry.createdAt,
        computeMs: entry.computeMs,
      });
    }
  }

  miss(key: string, scope: Scope): void {
    this.counters.misses++;
    if (this.events.has("miss")) this.events.emit("miss", { key, session: scope.session });
  }

  coalesced(key: string, scope: Scope): void {
    this.counters.coalesced++;
    if (this.events.has("coalesced")) {
      this.events.emit("coalesced", { key, session: scope.session });
    }
  }

  /** Called with every eviction in this cache's namespace. */
  onEvict(hook: (event: StoreEvent) => void): void {
    this.#evictHooks.push(hook);
  }

  stats(): CacheStats {
    const usage = this.store.usage?.(this.namespace) ?? { entries: 0, bytes: 0 };
    const c = this.counters;
    return {
      hits: c.hits,
      misses: c.misses,
      coalesced: c.coalesced,
      sets: c.sets,
      rejected: c.rejected,
      evictions: c.evictions,
      errors: c.errors,
      entries: usage.entries,
      bytes: usage.bytes,
      timeSavedMs: c.timeSavedMs,
    };
  }

  /** The number of entries the current scope sees: the session's, or the shared ones. */
  async size(): Promise<number> {
    const scope = this.scope();
    try {
      return await this.store.size({ namespace: this.namespace, session: scope.session ?? null });
    } catch (error) {
      this.fail("size", error);
      return 0;
    }
  }

  /** Drops every entry of this cache, in every session. */
  async clear(): Promise<number> {
    try {
      return await this.store.clear({ namespace: this.namespace });
    } catch (error) {
      this.fail("clear", error);
      return 0;
    }
  }

  /** Called when a session's entries are dropped (`endSession`). */
  onSessionCleared(hook: (id: string) => void): void {
    this.#sessionHooks.push(hook);
  }

  async clearSession(id: string): Promise<number> {
    for (const hook of this.#sessionHooks) hook(id);
    try {
      return await this.store.clear({ namespace: this.namespace, session: id });
    } catch (error) {
      this.fail("clear", error);
      return 0;
    }
  }

  async remove(key: string, scope: Scope): Promise<boolean> {
    try {
      return await this.store.delete(key, scope);
    } catch (error) {
      this.fail("delete", error);
      return false;
    }
  }

  #subscribe(): void {
    if (this.store.subscribe === undefined) return;
    // The store may outlive this cache (a shared store): hold the cache weakly.
    const self = new WeakRef(this);
    const namespace = this.namespace;
    const unsubscribe = this.store.subscribe((event) => {
      if (event.scope.namespace !== namespace) return;
      const core = self.deref();
      if (core === undefined) {
        unsubscribe();
        return;
      }
      core.counters.evictions++;
      for (const hook of core.#evictHooks) hook(event);
      if (core.events.has("evict")) {
        core.events.emit("evict", {
          key: event.key,
          session: event.scope.session,
          reason: event.reason,
        });
      }
    });
  }
}
