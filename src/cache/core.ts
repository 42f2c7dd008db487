/**
 * The engine shared by `cache(fn)` and `Cache`: which store and scope an entry goes to, how a
 * value becomes a key, reading and writing with fail-open error handling, and the flights in
 * flight. What it reports goes through `Telemetry`.
 *
 * A store failure never reaches the caller: a read that throws is a miss, a write that throws
 * leaves the result uncached; both are counted in `stats().errors` and emitted as `error`.
 */

import type { Clock } from "../base/clock.js";
import { type CacheMode, currentCacheMode } from "../base/mode.js";
import { lifetimeTimes, type StaleWindows, staleFor } from "../base/stale.js";
import {
  endFailed,
  endRead,
  failSpan,
  refreshTracing,
  storeSpan,
  traceStore,
} from "../base/tracing.js";
import { hashKey, shortKey } from "../key/index.js";
import type {
  Entry,
  FlightLease,
  PurgeFilter,
  Scope,
  SetOutcome,
  Store,
  StoreEvent,
  SyncStore,
} from "../store/store.js";
import { FlightTable } from "./flight-table.js";
import { KeyMemo } from "./key-memo.js";
import { type CacheOptions, resolveCacheOptions } from "./options.js";
import { purgeStore } from "./purge.js";
import { currentSession, registerSessionHolder, type SessionHolder } from "./session.js";
import { type CacheStats, Telemetry, type WarningReason } from "./telemetry.js";

/** In-memory short keys start with U+0001 (see src/key/short-key.ts); hashed keys never do. */
function isShortKey(key: string): boolean {
  return key.charCodeAt(0) === 1;
}

export class CacheCore<F extends object = object> implements SessionHolder {
  readonly store: Store;
  readonly sync: SyncStore | undefined;
  readonly namespace: string;
  readonly perSession: boolean;
  readonly clone: boolean;
  readonly ttl: number;
  /** How long past `ttl` an entry may be served stale (`staleWhileRevalidate`, `staleIfError`). */
  readonly stale: StaleWindows;
  readonly clock: Clock;
  readonly waitTimeoutMs: number;
  /** The mode of calls that name none, outside any `withCacheMode`. */
  readonly mode: CacheMode;
  readonly telemetry: Telemetry;
  /** The computations in flight, joined by identical calls. */
  readonly flights = new FlightTable<F>();
  /**
   * Flight ids of the background refreshes running (`staleWhileRevalidate`), one per key. Apart
   * from `flights`: nothing joins a refresh, and a stale read never waits behind the one it
   * triggered.
   */
  readonly #refreshing = new Set<string>();
  /** Whether a key made from an object's identity can ever be found again (in-process only). */
  readonly identityKeys: boolean;
  readonly #context: string;
  /** Argument tuples to store keys, for in-process stores (where keys are cheap to look up). */
  readonly #memo: KeyMemo | undefined;
  readonly #globalScope: Scope;
  readonly #evictHooks: ((event: StoreEvent) => void)[] = [];
  /**
   * The public key of entries written while someone listened to evictions, so an eviction of a
   * short-keyed entry can name it (the short key itself holds argument text).
   */
  readonly #shownKeys = new WeakMap<Entry, string>();
  readonly #sessionHooks: ((id: string) => void)[] = [];

  constructor(options: CacheOptions, what: string, defaultNamespace: string | undefined) {
    const resolved = resolveCacheOptions(options, what, defaultNamespace);
    this.store = resolved.store;
    this.sync = this.store.sync;
    this.namespace = resolved.namespace;
    this.perSession = resolved.perSession;
    this.clone = resolved.clone;
    this.ttl = resolved.ttl;
    this.stale = resolved.stale;
    this.clock = resolved.clock;
    this.waitTimeoutMs = resolved.waitTimeoutMs;
    this.mode = resolved.mode;
    this.identityKeys = this.sync !== undefined;
    this.#context = resolved.context;
    this.telemetry = new Telemetry(() => this.clock.now(), what === "new Cache()");
    this.#globalScope = { namespace: this.namespace };
    this.#memo = this.sync === undefined ? undefined : new KeyMemo();
    if (this.perSession) registerSessionHolder(this);
    this.#subscribe();
    refreshTracing();
  }

  /** The mode of a call: its own, else the current `withCacheMode`'s, else this cache's. */
  modeOf(own: CacheMode | undefined): CacheMode {
    return own ?? currentCacheMode() ?? this.mode;
  }

  /** The scope of the current call: the session's when per-session and inside a session. */
  scope(): Scope {
    if (!this.perSession) return this.#globalScope;
    const session = currentSession();
    return session === undefined ? this.#globalScope : { namespace: this.namespace, session };
  }

  /**
   * The store key for `value`: a short key for in-process stores when possible, else a hash.
   * `context` extends the cache's own (what a method call's receiver adds).
   */
  keyOf(value: unknown, root: string, context = ""): string {
    const full = this.#fullContext(context);
    if (this.sync !== undefined) {
      const short = shortKey(value, full);
      if (short !== undefined) return short;
    }
    return hashKey(value, { context: full, root });
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

  /** The canonical hash of `value` (what `keyOf` stands for), as every store would key it. */
  hashOf(value: unknown, root: string, context = ""): string {
    return hashKey(value, { context: this.#fullContext(context), root });
  }

  /**
   * The cache's context (its version: `""` or `version=…`) extended by a call's. The extended
   * form starts with the version's length, so it can never equal a plain version context, and
   * no version string can make two extensions meet.
   */
  #fullContext(extra: string): string {
    return extra === "" ? this.#context : `${this.#context.length}:${this.#context}${extra}`;
  }

  /**
   * The key to show for a store key: the store key itself when it is a hash, else the hash that
   * `value()` describes (a short key holds argument text and means nothing to another process).
   */
  publicKey(storeKey: string, value: () => string): string {
    return isShortKey(storeKey) ? value() : storeKey;
  }

  /**
   * Reads a fresh entry; a store failure counts as an error and reads as a miss, and so does an
   * entry past its `staleAt` (kept to be served stale only where a caller allows it:
   * `readEntry`).
   */
  async read(key: string, scope: Scope): Promise<Entry | undefined> {
    return this.fresh(await this.readEntry(key, scope));
  }

  readSync(sync: SyncStore, key: string, scope: Scope): Entry | undefined {
    return this.fresh(this.readEntrySync(sync, key, scope));
  }

  /** Reads a fresh entry through the synchronous path when the store has one. */
  readAny(key: string, scope: Scope): Entry | undefined | Promise<Entry | undefined> {
    const sync = this.sync;
    return sync !== undefined ? this.readSync(sync, key, scope) : this.read(key, scope);
  }

  /** Reads an entry as the store holds it, stale or not (ask `staleMs` before serving it). */
  async readEntry(key: string, scope: Scope): Promise<Entry | undefined> {
    const span = storeSpan(this.store, "get", scope.namespace);
    try {
      const entry = await this.store.get(key, scope);
      if (span !== undefined) endRead(span, entry !== undefined);
      return entry;
    } catch (error) {
      if (span !== undefined) endFailed(span, error);
      this.telemetry.fail("get", error);
      return undefined;
    }
  }

  /**
   * A read of an in-process store, stale or not: no span of its own (it costs a fraction of
   * one), the call's span says what it found.
   */
  readEntrySync(sync: SyncStore, key: string, scope: Scope): Entry | undefined {
    try {
      return sync.getSync(key, scope);
    } catch (error) {
      this.telemetry.fail("get", error);
      return undefined;
    }
  }

  /** `entry` while it is fresh; `undefined` once it is stale. One property read when it cannot be. */
  fresh(entry: Entry | undefined): Entry | undefined {
    return entry === undefined || entry.staleAt === undefined || this.clock.now() < entry.staleAt
      ? entry
      : undefined;
  }

  /**
   * Runs `refresh` in the background, after the caller has its answer (a microtask later), unless
   * one runs for this key already: a stale read while it runs starts no other. Its failure is
   * reported (an `error` event with `operation: "refresh"`, `stats().errors`), never thrown. The
   * one mechanism behind `cache(fn)`'s, `Cache`'s and the LLM pipeline's stale-while-revalidate.
   */
  refreshInBackground(scope: Scope, key: string, refresh: () => Promise<unknown>): void {
    const id = FlightTable.id(scope, key);
    const refreshing = this.#refreshing;
    if (refreshing.has(id)) return;
    refreshing.add(id);
    void Promise.resolve()
      .then(refresh)
      .catch((error: unknown) => this.telemetry.fail("refresh", error))
      .finally(() => refreshing.delete(id));
  }

  /**
   * Removes the entries `filter` matches (in a span, when traced). A purge is an explicit act, so
   * unlike reads and writes it does not fail open: a failure is counted and rethrown.
   */
  async purge(filter: PurgeFilter): Promise<number> {
    try {
      return await traceStore(this.store, "purge", filter.namespace ?? "", () =>
        purgeStore(this.store, filter),
      );
    } catch (error) {
      this.telemetry.fail("purge", error);
      throw error;
    }
  }

  /** How long `entry` has been stale, ms, or `undefined` while it is fresh. */
  staleMs(entry: Entry): number | undefined {
    return entry.staleAt === undefined ? undefined : staleFor(entry, this.clock.now());
  }

  /**
   * A read for a shared store that coordinates processes: on a miss it takes the cross-process
   * lock, or waits (bounded) for the process that holds it and reads again. `lease` is set when
   * this process must compute and release it; `waited` when the entry came from another process's
   * computation (fresh: a stale entry counts as a miss here). Coordination failures fall back to computing, like every store failure.
   */
  async lookupShared(
    key: string,
    scope: Scope,
    read = true,
  ): Promise<{ entry?: Entry; lease?: FlightLease; waited?: boolean }> {
    // `read: false`: the caller has read the entry already and found it stale.
    if (read) {
      const entry = await this.read(key, scope);
      if (entry !== undefined) return { entry };
    }
    const coordinator = this.store.flights;
    if (coordinator === undefined) return {};
    try {
      const lease = await traceStore(this.store, "lock", scope.namespace, () =>
        coordinator.acquire(key, scope),
      );
      if (lease !== undefined) return { lease };
      await traceStore(this.store, "wait", scope.namespace, () =>
        coordinator.waitFor(key, scope, this.waitTimeoutMs),
      );
    } catch (error) {
      this.telemetry.fail("lock", error);
      return {};
    }
    const after = await this.read(key, scope);
    return after === undefined ? {} : { entry: after, waited: true };
  }

  /** Releases a cross-process lease once the entry is written (or at once on failure). */
  releaseAfter(lease: FlightLease, written: Promise<unknown> | undefined): void {
    const release = () =>
      lease.release().catch((error: unknown) => this.telemetry.fail("unlock", error));
    if (written === undefined) void release();
    else void written.then(release, release);
  }

  /**
   * Builds the entry for a computed value. `ttl` overrides the cache's, `stale` its stale windows
   * (the entry is then kept the longer window past its ttl, to be served stale).
   */
  entry(
    value: unknown,
    computeMs: number | undefined,
    rawKey?: unknown,
    ttl?: number,
    stale: StaleWindows = this.stale,
  ): Entry {
    const createdAt = this.clock.now();
    const lifetime = ttl ?? this.ttl;
    const entry: Entry = { value, createdAt };
    if (lifetime > 0) {
      const times = lifetimeTimes(createdAt, lifetime, stale);
      entry.expiresAt = times.expiresAt;
      if (times.staleAt !== undefined) entry.staleAt = times.staleAt;
    }
    if (computeMs !== undefined) entry.computeMs = computeMs;
    if (rawKey !== undefined) entry.rawKey = rawKey;
    return entry;
  }

  /**
   * Writes an entry and says whether it was stored; synchronous for in-process stores. Never
   * throws: a store failure is counted and reads as not stored. `publicKey` names it in events.
   */
  write(
    key: string,
    scope: Scope,
    entry: Entry,
    publicKey: () => string,
  ): boolean | Promise<boolean> {
    if (isShortKey(key) && this.telemetry.events.has("evict")) {
      this.#shownKeys.set(entry, publicKey());
    }
    const sync = this.sync;
    if (sync !== undefined) {
      const span = storeSpan(this.store, "set", scope.namespace);
      try {
        const outcome = sync.setSync(key, scope, entry);
        span?.setAttribute("infercache.store.outcome", outcome);
        return this.#written(key, scope, entry, outcome, publicKey);
      } catch (error) {
        if (span !== undefined) failSpan(span, error);
        this.telemetry.fail("set", error);
        return false;
      } finally {
        span?.end();
      }
    }
    return traceStore(this.store, "set", scope.namespace, () =>
      this.store.set(key, scope, entry),
    ).then(
      (outcome) => this.#written(key, scope, entry, outcome, publicKey),
      (error: unknown) => {
        this.telemetry.fail("set", error);
        return false;
      },
    );
  }

  /** Counts and reports a write; true when the entry was stored. */
  #written(
    key: string,
    scope: Scope,
    entry: Entry,
    outcome: SetOutcome,
    publicKey: () => string,
  ): boolean {
    const telemetry = this.telemetry;
    if (outcome === "stored") {
      telemetry.stored(
        telemetry.events.has("set") ? this.publicKey(key, publicKey) : undefined,
        scope,
        entry,
      );
      return true;
    }
    this.warn(
      this.publicKey(key, publicKey),
      scope,
      outcome,
      outcome === "too-large"
        ? "the result is larger than the cache's memory budget; it was returned but not cached"
        : "the result has a part that cannot be serialized for this store (a class instance or a function); it was returned but not cached",
    );
    return false;
  }

  warn(key: string, scope: Scope, reason: WarningReason, message: string): void {
    this.telemetry.warn(key, scope, reason, message);
  }

  /** Called with every eviction in this cache's namespace. */
  onEvict(hook: (event: StoreEvent) => void): void {
    this.#evictHooks.push(hook);
  }

  stats(): CacheStats {
    return this.telemetry.stats(this.store.usage?.(this.namespace) ?? { entries: 0, bytes: 0 });
  }

  /** The number of entries the current scope sees: the session's, or the shared ones. */
  async size(): Promise<number> {
    const scope = this.scope();
    try {
      return await traceStore(this.store, "size", this.namespace, () =>
        this.store.size({ namespace: this.namespace, session: scope.session ?? null }),
      );
    } catch (error) {
      this.telemetry.fail("size", error);
      return 0;
    }
  }

  /** Drops every entry of this cache, in every session. */
  async clear(): Promise<number> {
    try {
      return await traceStore(this.store, "clear", this.namespace, () =>
        this.store.clear({ namespace: this.namespace }),
      );
    } catch (error) {
      this.telemetry.fail("clear", error);
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
      return await traceStore(this.store, "clear", this.namespace, () =>
        this.store.clear({ namespace: this.namespace, session: id }),
      );
    } catch (error) {
      this.telemetry.fail("clear", error);
      return 0;
    }
  }

  async remove(key: string, scope: Scope): Promise<boolean> {
    try {
      return await traceStore(this.store, "delete", scope.namespace, () =>
        this.store.delete(key, scope),
      );
    } catch (error) {
      this.telemetry.fail("delete", error);
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
      for (const hook of core.#evictHooks) hook(event);
      // A short key is never shown (it holds argument text): its public key was noted when the
      // entry was written if someone listened then; otherwise it is reported as "".
      const shown = isShortKey(event.key)
        ? ((event.entry === undefined ? undefined : core.#shownKeys.get(event.entry)) ?? "")
        : event.key;
      core.telemetry.evicted(shown, event.scope, event.reason);
    });
  }
}
