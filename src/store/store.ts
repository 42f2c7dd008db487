/**
 * The `Store` interface: where cached entries live. Small and asynchronous so that SQLite, Redis
 * and friends can implement it; a store that can answer synchronously (MemoryStore) also exposes
 * `sync`, which lets `cache(fn)` keep sync functions sync and makes a hit cost nanoseconds.
 *
 * Entries are addressed by a `Scope` (namespace and optional session) and a key string. Every
 * store passes the same contract suite (`test/store-contract.ts`).
 */

/** One cached value with its bookkeeping. */
export interface Entry<V = unknown> {
  value: V;
  /** When the entry was written, ms since the epoch. */
  createdAt: number;
  /** When the entry stops being served, ms since the epoch; absent = never. */
  expiresAt?: number | undefined;
  /** How long the value took to compute, ms: what a hit saves. */
  computeMs?: number | undefined;
  /** The key as the user gave it (manual `Cache`), for `keys()` and `longestPrefix`. */
  rawKey?: unknown;
  /**
   * Labels to purge the entry by (`x-infercache-tags`, `tags` on `set` and `cache(fn)`; the
   * gateway adds `model:…`, `upstream:…` and `tenant:…`). Short strings, no prompt text.
   */
  tags?: readonly string[] | undefined;
  /**
   * When the entry stops being fresh, ms since the epoch, for entries kept past that to be
   * served stale (`staleWhileRevalidate`, `staleIfError`): then `expiresAt` is when the stale
   * window ends and the store drops it. Absent: fresh until `expiresAt`.
   */
  staleAt?: number | undefined;
}

/** Where an entry lives: a namespace (one cache or function) and, optionally, a session. */
export interface Scope {
  readonly namespace: string;
  /** Absent for entries shared by every caller. Sessions are matched exactly, never by prefix. */
  readonly session?: string | undefined;
}

/**
 * What `clear` and `size` cover. `namespace` absent: every namespace. `session`: a string for
 * that session only, `null` for the shared (no-session) entries only, absent for all of them.
 */
export interface ClearScope {
  readonly namespace?: string | undefined;
  readonly session?: string | null | undefined;
}

/**
 * Whether `set` kept the entry. `too-large`: bigger than the store's memory budget;
 * `not-serializable`: the value has a part that cannot leave the process (a class instance).
 */
export type SetOutcome = "stored" | "too-large" | "not-serializable";

/** Why a store dropped an entry on its own. `corrupt`: its bytes failed the envelope's checks. */
export type EvictReason = "size" | "memory" | "quota" | "expired" | "corrupt";

/** Something the store did on its own: it evicted an entry. */
export interface StoreEvent {
  type: "evict";
  reason: EvictReason;
  scope: Scope;
  key: string;
  /** The entry as it was, where the store still had it in hand (in-process stores). */
  entry?: Entry | undefined;
}

/**
 * Which entries `purge` removes: those matching every field given. `tags`: entries carrying any
 * of these tags; `allTags`: entries carrying every one of these (the gateway's `model` AND
 * `tenant`); `olderThan`: entries written before this time (ms since the epoch); `namespace`:
 * only that namespace. An empty filter is refused (use `clear`).
 */
export interface PurgeFilter {
  readonly namespace?: string | undefined;
  readonly tags?: readonly string[] | undefined;
  readonly allTags?: readonly string[] | undefined;
  readonly olderThan?: number | undefined;
}

export interface Store {
  /** A short name for messages and metrics, e.g. `"memory"`, `"sqlite"`. */
  readonly kind: string;
  /**
   * The synchronous fast path, present when the store answers without I/O. Values are then live
   * objects of this process, and in-memory short keys may stand for hashed keys.
   */
  readonly sync?: SyncStore | undefined;

  get(key: string, scope: Scope): Promise<Entry | undefined>;
  set(key: string, scope: Scope, entry: Entry): Promise<SetOutcome>;
  delete(key: string, scope: Scope): Promise<boolean>;
  /** Removes every entry in `scope` (all entries when omitted) and returns how many. */
  clear(scope?: ClearScope): Promise<number>;
  /**
   * Removes the entries `filter` matches and returns how many, through an index where the store
   * keeps one (each store's docs say where it must scan).
   */
  purge?(filter: PurgeFilter): Promise<number>;
  /** Counts the live entries in `scope` (all entries when omitted). */
  size(scope?: ClearScope): Promise<number>;
  /** The entries of one scope, least recently used first. */
  entries(scope: Scope): AsyncIterable<[key: string, entry: Entry]>;
  /** Listens to what the store does on its own (evictions). Returns the unsubscribe function. */
  subscribe?(listener: (event: StoreEvent) => void): () => void;
  /**
   * Cross-process single-flight, for stores shared by processes (Redis): identical calls in
   * different processes compute once.
   */
  readonly flights?: FlightCoordinator | undefined;
  /** Entries and bytes held for a namespace, when the store can tell cheaply. */
  usage?(namespace: string): { entries: number; bytes: number };
  /**
   * Whether the store is serving now, for health checks (the gateway's `/healthz`). Stores
   * without it are taken to be healthy. Cheap: no I/O, it reports what the store last saw.
   */
  health?(): StoreHealth;
  /**
   * A random secret kept with the store under `name`, the same for every process that opens it
   * (created on first use): what the gateway keys tenant hashes with, so restarts and other
   * instances keep their hits. Stores that live in one process have none.
   */
  secret?(name: string): Promise<string>;
  close(): Promise<void>;
}

/**
 * A store's health. `degraded`: calls go on uncached (Redis unreachable, a lock held too long);
 * `reason` says why in words fit for a log (never a secret, a key or a value).
 */
export interface StoreHealth {
  state: "ok" | "degraded";
  reason?: string | undefined;
  /** Since when (ms since the epoch) the store has been in this state. */
  since?: number | undefined;
}

/**
 * Coordinates one computation per key across processes. `acquire` returns a lease when this
 * process should compute (release it once the entry is written), or `undefined` when another
 * process is computing: then `waitFor` resolves when it finishes or after `timeoutMs`, and the
 * caller reads the store (computing itself if the entry is still missing).
 */
export interface FlightCoordinator {
  acquire(key: string, scope: Scope): Promise<FlightLease | undefined>;
  waitFor(key: string, scope: Scope, timeoutMs: number): Promise<void>;
}

export interface FlightLease {
  release(): Promise<void>;
}

/** What a shared store tells other processes: drop these entries from your memory tier. */
export interface InvalidationMessage {
  /** The store instance that sent it (a process ignores its own). */
  origin: string;
  /** `purge`: drop what `tags`/`olderThan` (with `namespace`) match, as `Store.purge` does. */
  kind: "key" | "clear" | "purge";
  namespace?: string | undefined;
  /** A session, `null` for the shared entries, absent for all. */
  session?: string | null | undefined;
  key?: string | undefined;
  /** For `purge`: the filter's tags and time (ms since the epoch). */
  tags?: readonly string[] | undefined;
  allTags?: readonly string[] | undefined;
  olderThan?: number | undefined;
}

/** A store that can tell other processes about changes (RedisStore, through pub/sub). */
export interface InvalidationBus {
  publishInvalidation(message: Omit<InvalidationMessage, "origin">): Promise<void>;
  onInvalidation(listener: (message: InvalidationMessage) => void): Promise<() => void>;
}

/** The synchronous twin of the main operations, for stores that live in this process. */
export interface SyncStore {
  getSync(key: string, scope: Scope): Entry | undefined;
  setSync(key: string, scope: Scope, entry: Entry): SetOutcome;
  deleteSync(key: string, scope: Scope): boolean;
}

/** Wraps a store failure; `cause` is the original error. Never thrown at a user's call. */
export class StoreError extends Error {
  override readonly name = "StoreError";
  readonly operation: string;
  constructor(operation: string, store: string, cause: unknown) {
    super(
      `infercache: ${store} store failed to ${operation}: ${cause instanceof Error ? cause.message : String(cause)}`,
      { cause },
    );
    this.operation = operation;
  }
}

/** Whether `entry` has stopped being served at `now` (ms since the epoch). */
export function isExpired(entry: Entry, now: number): boolean {
  return entry.expiresAt !== undefined && entry.expiresAt <= now;
}

/** The entry with the store's default lifetime when it was written without its own. */
export function withDefaultTtl(entry: Entry, ttl: number): Entry {
  return entry.expiresAt === undefined && ttl > 0
    ? { ...entry, expiresAt: entry.createdAt + ttl }
    : entry;
}
