/**
 * `SqliteStore`: the embedded persistent store. One SQLite file in WAL mode, shared safely by
 * several processes, crash-safe, bounded by entries and bytes with LRU eviction, with TTL,
 * namespaces and sessions. The file's layout is in `sqlite/schema.ts`, the lock-aware write
 * path in `sqlite/writer.ts`.
 *
 * - Every write is atomic (one statement, or one transaction with limits): a process killed
 *   mid-write leaves the previous state, never a half-written row. Values carry a checksummed envelope, so bytes
 *   damaged on disk read as a miss and are removed, never returned.
 * - Totals (entries, bytes) are kept by triggers inside each writer's transaction, so every
 *   process sees the same totals and enforces the same limits without counting rows. A store
 *   with limits writes, checks them and evicts when over in one transaction; without limits a
 *   write is the upsert alone.
 * - A read is not a write: access times are gathered in memory and written in one transaction
 *   per `accessFlushMs` (and before this process evicts), which is what LRU order uses.
 *   Another process's reads reach the order at most that late. Eviction samples rows (Redis's
 *   approximated LRU) instead of keeping an index on the access time.
 * - Another process's write lock never freezes this event loop for more than ~10 ms: writes
 *   that meet it wait asynchronously, in order, up to `busyTimeoutMs` (see `sqlite/writer.ts`),
 *   and reads of their keys are answered from them meanwhile. Opening needs no lock when the
 *   file is already set up; otherwise setting it up waits the same way.
 */

import { randomBytes } from "node:crypto";
import { mkdirSync } from "node:fs";
import { dirname } from "node:path";
import type BetterSqlite3 from "better-sqlite3";
import { type Clock, systemClock } from "../base/clock.js";
import { type Duration, parseDuration } from "../base/duration.js";
import { loadPeer } from "../base/optional-peer.js";
import { parseSize, type Size } from "../base/size.js";
import { nonNegativeInteger } from "../base/validate.js";
import { decodeOrUndefined, encodeOrRefuse } from "./envelope.js";
import { clearSql, inspect, PURGE_CHUNK, purgeSql, setUp, sizeSql } from "./sqlite/schema.js";
import { BUSY_SLICE_MS, isBusy, LockTimeoutError, Writer } from "./sqlite/writer.js";
import {
  type ClearScope,
  type Entry,
  type EvictReason,
  isExpired,
  type PurgeFilter,
  type Scope,
  type SetOutcome,
  type Store,
  type StoreEvent,
  type StoreHealth,
  withDefaultTtl,
} from "./store.js";
import { checkPurgeFilter } from "./tags.js";

export interface SqliteStoreOptions {
  /** The database file; created with its folder if missing. `":memory:"` for a private one. */
  path: string;
  /** Maximum entries across all namespaces; least recently used beyond. 0 = unlimited. @default 0 */
  maxSize?: number;
  /** Maximum bytes of stored entries: a number or `"2gb"`. 0 = unlimited. @default 0 */
  maxMemory?: Size;
  /** Expiry for entries written without their own `expiresAt`: ms or `"7d"`. @default never */
  ttl?: Duration;
  /** How often access times gathered by reads are written, ms. @default 1000 */
  accessFlushMs?: number;
  /**
   * How long a write waits, in all, for a write lock another process holds, ms. The wait is
   * asynchronous (the event loop is blocked ~10 ms at most); a write still locked out after it
   * is refused: its promise rejects with `LockTimeoutError`, which the cache layer counts as a
   * store error (the result is returned, not cached), and `health()` reports `degraded` until a
   * write lands again. @default 5000
   */
  busyTimeoutMs?: number;
  /** Entry times (expiry, LRU order). Waiting for a lock is measured in real time. */
  clock?: Clock;
}

type Database = BetterSqlite3.Database;
type Statement = BetterSqlite3.Statement;

/** Rows looked at per eviction round (sampled LRU). */
const SAMPLE = 16;
/** Bytes of row bookkeeping counted per entry on top of key and value. */
const ROW_OVERHEAD = 64;

interface Statements {
  get: Statement;
  upsert: Statement;
  delete: Statement;
  deleteId: Statement;
  totals: Statement;
  bounds: Statement;
  sample: Statement;
  evictId: Statement;
  touch: Statement;
  entries: Statement;
  usage: Statement;
  purge: Statement;
}

/** The statements that touch `entry_tags`: prepared at the first tagged write or purge, which
 * runs after setup (a version 2 file is read and written before it is migrated). */
interface TagStatements {
  upsertId: Statement;
  tag: Statement;
  tagged: BetterSqlite3.Transaction<(row: unknown[], tags: readonly string[]) => void>;
}

/** id, value, expires_at */
type Row = [number, Buffer, number | null];

/** A write still waiting for the lock, as reads of its key must see it. */
interface WaitingWrite {
  scope: Scope;
  /** The envelope a set will write, or `null` for a delete. */
  value: Buffer | null;
}

/** Marks a read that no waiting write answers. */
const NOT_WAITING = Symbol("not waiting");

export class SqliteStore implements Store {
  readonly kind = "sqlite";
  readonly path: string;
  readonly maxSize: number;
  readonly maxMemory: number;
  readonly ttl: number;
  readonly busyTimeoutMs: number;
  readonly #db: Database;
  readonly #clock: Clock;
  readonly #limited: boolean;
  readonly #listeners = new Set<(event: StoreEvent) => void>();
  readonly #accessed = new Map<number, number>();
  readonly #timer: NodeJS.Timeout;
  readonly #writer: Writer;
  /** Writes waiting for the lock, by address (`addressOf`), and clears waiting likewise. */
  readonly #waiting = new Map<string, WaitingWrite>();
  readonly #waitingClears: ClearScope[] = [];
  /** `clear`/`size` statements, prepared once per shape of scope. */
  readonly #scoped = new Map<string, Statement>();
  #sql: Statements | undefined;
  #tagSql: TagStatements | undefined;
  #lastTotals = { entries: 0, bytes: 0 };
  readonly #lastUsage = new Map<string, { entries: number; bytes: number }>();
  #touches: BetterSqlite3.Transaction<() => void> | undefined;
  #limitedWrite:
    | BetterSqlite3.Transaction<
        (row: unknown[], accessedAt: number, tags?: readonly string[]) => StoreEvent[]
      >
    | undefined;
  #closing: Promise<void> | undefined;
  #closed = false;
  #lastTick = 0;

  constructor(options: SqliteStoreOptions) {
    if (typeof options?.path !== "string" || options.path === "") {
      throw new TypeError(
        `Expected \`path\` to be the database file, such as "./.infercache/cache.db", got \`${String(options?.path)}\``,
      );
    }
    this.path = options.path;
    this.maxSize = nonNegativeInteger(options.maxSize ?? 0, "maxSize");
    this.maxMemory =
      options.maxMemory === undefined ? 0 : parseSize(options.maxMemory, "maxMemory");
    this.ttl = options.ttl === undefined ? 0 : parseDuration(options.ttl, "ttl");
    this.busyTimeoutMs = nonNegativeInteger(options.busyTimeoutMs ?? 5000, "busyTimeoutMs");
    this.#limited = this.maxSize > 0 || this.maxMemory > 0;
    this.#clock = options.clock ?? systemClock;
    const Driver = loadPeer<typeof BetterSqlite3>("better-sqlite3", "sqlite");
    if (this.path !== ":memory:") ensureFolder(this.path);
    const db = new Driver(this.path);
    this.#db = db;
    db.pragma(`busy_timeout = ${BUSY_SLICE_MS}`);
    this.#writer = new Writer({
      timeoutMs: this.busyTimeoutMs,
      setBusyTimeout: (ms) => db.pragma(`busy_timeout = ${ms}`),
      now: () => this.#clock.now(),
    });
    try {
      this.#open();
    } catch (error) {
      db.close();
      throw error;
    }
    const flushMs = options.accessFlushMs ?? 1000;
    this.#timer = setInterval(() => {
      try {
        this.#flushAccess();
      } catch {
        // LRU order only; the next flush tries again, and writes report their own failures.
      }
    }, flushMs);
    this.#timer.unref();
  }

  async get(key: string, scope: Scope): Promise<Entry | undefined> {
    try {
      return this.#lookup(key, scope);
    } catch (error) {
      if (!isBusy(error)) throw error;
      return this.#readLater(() => this.#lookup(key, scope));
    }
  }

  async set(key: string, scope: Scope, entry: Entry): Promise<SetOutcome> {
    entry = withDefaultTtl(entry, this.ttl);
    const value = encodeOrRefuse(entry);
    if (value === "not-serializable") return value;
    const { namespace } = scope;
    const session = scope.session ?? "";
    const bytes = ROW_OVERHEAD + 2 * key.length + value.length;
    if (this.maxMemory > 0 && bytes > this.maxMemory) {
      const removed = this.#writer.run(() => {
        this.#statements().delete.run(namespace, session, key);
        return "too-large" as const;
      });
      return this.#track(key, scope, null, removed);
    }
    const { createdAt } = entry;
    const expiresAt = entry.expiresAt ?? null;
    const tags = entry.tags !== undefined && entry.tags.length > 0 ? entry.tags : undefined;
    const write = (): SetOutcome => {
      // The tick is taken when the row is written (later, if the write waits for a lock).
      const accessedAt = this.#tick(this.#clock.now());
      const sql = this.#statements();
      if (!this.#limited) {
        if (tags !== undefined) {
          const row = [namespace, session, key, value, bytes, createdAt, expiresAt, accessedAt];
          this.#tagStatements().tagged.immediate(row, tags);
          return "stored";
        }
        // One statement: atomic by itself, no transaction around it (the triggers drop the
        // tags of a value it replaces).
        sql.upsert.run(namespace, session, key, value, bytes, createdAt, expiresAt, accessedAt);
        return "stored";
      }
      const row = [namespace, session, key, value, bytes, createdAt, expiresAt];
      const events = this.#limitedWrite?.immediate(row, accessedAt, tags) ?? [];
      for (const event of events) this.#emit(event);
      return "stored";
    };
    return this.#track(key, scope, value, this.#writer.run(write, value.length));
  }

  async delete(key: string, scope: Scope): Promise<boolean> {
    const { namespace } = scope;
    const session = scope.session ?? "";
    const deleted = this.#writer.run(
      () => this.#statements().delete.run(namespace, session, key).changes === 1,
    );
    return this.#track(key, scope, null, deleted);
  }

  async clear(scope?: ClearScope): Promise<number> {
    const { sql, params } = clearSql(scope);
    const cleared = this.#writer.run(() => this.#scopedStatement(sql).run(...params).changes);
    if (!(cleared instanceof Promise)) return cleared;
    // Waiting: reads in the scope miss from now on, except for keys set after this clear.
    const record: ClearScope = { namespace: scope?.namespace, session: scope?.session };
    for (const [address, write] of this.#waiting) {
      if (covers(record, write.scope)) this.#waiting.delete(address);
    }
    this.#waitingClears.push(record);
    const done = () => {
      this.#waitingClears.splice(this.#waitingClears.indexOf(record), 1);
    };
    cleared.then(done, done);
    return cleared;
  }

  /** Counts the live entries in `scope` that are in the file (writes still waiting are not). */
  async size(scope?: ClearScope): Promise<number> {
    const { sql, params } = sizeSql(scope);
    const count = () =>
      this.#sql === undefined
        ? 0
        : (this.#scopedStatement(sql)
            .pluck()
            .get(...params, this.#clock.now()) as number);
    try {
      return count();
    } catch (error) {
      if (!isBusy(error)) throw error;
      return this.#readLater(count);
    }
  }

  async *entries(scope: Scope): AsyncIterable<[key: string, entry: Entry]> {
    this.#flushAccess();
    const list = () =>
      (this.#sql?.entries.all(scope.namespace, scope.session ?? "", this.#clock.now()) ?? []) as {
        id: number;
        key: string;
        value: Buffer;
      }[];
    let rows: { id: number; key: string; value: Buffer }[];
    try {
      rows = list();
    } catch (error) {
      if (!isBusy(error)) throw error;
      rows = await this.#readLater(list);
    }
    for (const row of rows) {
      const entry = decodeOrUndefined(row.value);
      if (entry === undefined) this.#drop(row.id, scope, row.key, "corrupt");
      else yield [row.key, entry];
    }
  }

  subscribe(listener: (event: StoreEvent) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /** Entries and bytes of a namespace; while a lock keeps reads out, the last figures read. */
  usage(namespace: string): { entries: number; bytes: number } {
    const last = this.#lastUsage.get(namespace) ?? { entries: 0, bytes: 0 };
    if (this.#sql === undefined) return last;
    try {
      const row = this.#sql.usage.get(namespace) as { n: number; b: number | null };
      const usage = { entries: row.n, bytes: row.b ?? 0 };
      this.#lastUsage.set(namespace, usage);
      return usage;
    } catch (error) {
      if (!isBusy(error)) throw error;
      return last;
    }
  }

  /** Totals across every namespace, as kept by the triggers (the last read, during a lock). */
  totals(): { entries: number; bytes: number } {
    if (this.#sql === undefined) return this.#lastTotals;
    try {
      this.#lastTotals = this.#sql.totals.get() as { entries: number; bytes: number };
    } catch (error) {
      if (!isBusy(error)) throw error;
    }
    return this.#lastTotals;
  }

  /**
   * `degraded` while writes are refused because another process has held the write lock longer
   * than `busyTimeoutMs` (`ok` again once a write lands), or when the file could not be set up.
   */
  health(): StoreHealth {
    const since = this.#writer.refusedSince;
    if (since === undefined) return { state: "ok" };
    if (this.#writer.failed) {
      return {
        state: "degraded",
        reason:
          "the SQLite file could not be set up; writes are refused (the store's errors say why)",
        since,
      };
    }
    return {
      state: "degraded",
      reason: `another process holds the SQLite write lock: writes waited over ${this.busyTimeoutMs} ms and were not cached`,
      since,
    };
  }

  /**
   * A random secret kept in the file's `infercache_meta` table under `secret:<name>`, created by
   * whichever process asks first (INSERT OR IGNORE) and read by every other: the gateway's tenant
   * hashes then agree across restarts and processes on this file.
   */
  async secret(name: string): Promise<string> {
    const row = `secret:${name}`;
    const read = () =>
      this.#db.prepare("SELECT value FROM infercache_meta WHERE name = ?").get(row) as
        | { value: string }
        | undefined;
    let found: { value: string } | undefined;
    try {
      found = read();
    } catch {
      // The file is still being set up behind another process's lock: wait for it like a write.
      await this.#writer.run(() => 0);
      found = read();
    }
    if (found !== undefined) return found.value;
    const candidate = randomBytes(32).toString("hex");
    await this.#writer.run(() =>
      this.#db
        .prepare("INSERT OR IGNORE INTO infercache_meta (name, value) VALUES (?, ?)")
        .run(row, candidate),
    );
    const stored = read();
    if (stored === undefined)
      throw new Error("infercache: the SQLite store lost its secret as it was written");
    return stored.value;
  }

  /**
   * Removes the live entries `filter` matches and returns how many: by tag through `entry_tags`
   * (the tag's rows), by age through the `created_at` index, never a scan of the table. Deletes
   * go in chunks of PURGE_CHUNK rows, one transaction each, so another process's write waits
   * for one chunk at most; entries written during a purge may or may not be removed by it.
   */
  async purge(filter: PurgeFilter): Promise<number> {
    const checked = checkPurgeFilter(filter);
    let removed = 0;
    for (;;) {
      const { sql, params } = purgeSql(checked, this.#clock.now());
      const changes = await this.#writer.run(() => {
        this.#tagStatements();
        return this.#scopedStatement(sql).run(...params).changes;
      });
      removed += changes;
      if (changes < PURGE_CHUNK) return removed;
    }
  }

  /** Removes every expired entry now (expiry is otherwise checked when an entry is read). */
  async purgeExpired(): Promise<number> {
    const now = this.#clock.now();
    return this.#writer.run(() => this.#statements().purge.run(now).changes);
  }

  /** Closes the file once the writes still waiting for a lock have landed or been refused. */
  close(): Promise<void> {
    this.#closing ??= (async () => {
      clearInterval(this.#timer);
      await this.#writer.idle();
      this.#flushAccess();
      this.#closed = true;
      this.#db.close();
    })();
    return this.#closing;
  }

  /**
   * Opens the file: at once when it is set up (reads only, no lock needed), else setting it up
   * now, or, while another process holds a lock it needs, as the first write once it is free.
   */
  #open(): void {
    try {
      this.#connect();
    } catch (error) {
      if (!isBusy(error)) throw error;
      this.#writer.setUpFirst(() => this.#connect());
    }
  }

  /** Every step of opening; each is repeatable, so a step refused by a lock is simply retried. */
  #connect(): void {
    const db = this.#db;
    // WAL + NORMAL: a crash never corrupts or half-writes; a power loss may drop the last commits.
    db.pragma("synchronous = NORMAL");
    // Checkpoint (and fsync) every ~40 MB of WAL instead of ~4 MB: fewer syncs per write.
    db.pragma("wal_autocheckpoint = 10000");
    db.pragma("journal_size_limit = 67108864");
    const state = inspect(db, this.path);
    // Reads and writes work on any layout this version reads; what is missing comes later.
    if (state.usable && this.#sql === undefined) this.#prepare();
    if (!state.needsSetup) return;
    setUp(db, this.path);
    if (this.#sql === undefined) this.#prepare();
  }

  #prepare(): void {
    const db = this.#db;
    const sql: Statements = {
      get: db
        .prepare(
          "SELECT id, value, expires_at FROM entries WHERE namespace = ? AND session = ? AND key = ?",
        )
        .raw(true),
      upsert: db.prepare(`
        INSERT INTO entries (namespace, session, key, value, bytes, created_at, expires_at, accessed_at)
        VALUES (?, ?, ?, ?, ?, ?, ?, ?)
        ON CONFLICT (namespace, session, key) DO UPDATE SET
          value = excluded.value, bytes = excluded.bytes, created_at = excluded.created_at,
          expires_at = excluded.expires_at, accessed_at = excluded.accessed_at`),
      delete: db.prepare("DELETE FROM entries WHERE namespace = ? AND session = ? AND key = ?"),
      deleteId: db.prepare("DELETE FROM entries WHERE id = ?"),
      totals: db.prepare("SELECT entries, bytes FROM totals WHERE id = 1"),
      bounds: db.prepare("SELECT min(id) AS low, max(id) AS high FROM entries"),
      sample: db.prepare(
        `SELECT id, accessed_at FROM entries WHERE id >= ? ORDER BY id LIMIT ${SAMPLE}`,
      ),
      evictId: db.prepare("DELETE FROM entries WHERE id = ? RETURNING namespace, session, key"),
      touch: db.prepare("UPDATE entries SET accessed_at = ? WHERE id = ?"),
      entries: db.prepare(
        "SELECT id, key, value FROM entries WHERE namespace = ? AND session = ? AND (expires_at IS NULL OR expires_at > ?) ORDER BY accessed_at, id",
      ),
      usage: db.prepare("SELECT count(*) AS n, sum(bytes) AS b FROM entries WHERE namespace = ?"),
      purge: db.prepare("DELETE FROM entries WHERE expires_at IS NOT NULL AND expires_at <= ?"),
    };
    const accessed = this.#accessed;
    this.#touches = db.transaction(() => {
      for (const [id, at] of accessed) sql.touch.run(at, id);
      accessed.clear();
    });
    // With limits, the write, the check and any eviction are one transaction: reading the totals
    // outside one would take a read snapshot of its own, which costs more than the transaction.
    this.#limitedWrite = db.transaction(
      (row: unknown[], accessedAt: number, tags?: readonly string[]): StoreEvent[] => {
        if (tags === undefined) sql.upsert.run(...row, accessedAt);
        else this.#writeTagged([...row, accessedAt], tags);
        if (!this.#isOver(sql.totals.get() as { entries: number; bytes: number })) return [];
        // LRU order must be current before choosing victims.
        for (const [id, at] of accessed) sql.touch.run(at, id);
        accessed.clear();
        return this.#evict(sql);
      },
    );
    this.#sql = sql;
  }

  /** The tag statements, for a write (after setup, when `entry_tags` exists). */
  #tagStatements(): TagStatements {
    if (this.#tagSql !== undefined) return this.#tagSql;
    const db = this.#db;
    const upsert = this.#statements().upsert.source;
    const partial = {
      upsertId: db.prepare(`${upsert} RETURNING id`).pluck(),
      tag: db.prepare("INSERT OR IGNORE INTO entry_tags (tag, entry_id) VALUES (?, ?)"),
    };
    this.#tagSql = {
      ...partial,
      tagged: db.transaction((row: unknown[], tags: readonly string[]) =>
        this.#writeTagged(row, tags),
      ),
    };
    return this.#tagSql;
  }

  /** The upsert of a tagged entry and its tags (the triggers dropped the old ones): inside a
   * transaction. */
  #writeTagged(row: unknown[], tags: readonly string[]): void {
    const sql = this.#tagStatements();
    const id = sql.upsertId.get(...row) as number;
    for (const tag of tags) sql.tag.run(tag, id);
  }

  /** The statements, for a write: writes run only once the file is set up. */
  #statements(): Statements {
    if (this.#sql === undefined) throw new Error("infercache: SqliteStore wrote before setup");
    return this.#sql;
  }

  #scopedStatement(sql: string): Statement {
    let statement = this.#scoped.get(sql);
    if (statement === undefined) {
      statement = this.#db.prepare(sql);
      this.#scoped.set(sql, statement);
    }
    return statement;
  }

  /**
   * Keeps what reads of `key` must see while its write waits for the lock (`value`: the envelope
   * a set writes, `null` for a delete), until the write lands or is refused.
   */
  #track<T>(
    key: string,
    scope: Scope,
    value: Buffer | null,
    result: T | Promise<T>,
  ): T | Promise<T> {
    if (!(result instanceof Promise)) return result;
    const address = addressOf(scope, key);
    const record: WaitingWrite = { scope, value };
    this.#waiting.set(address, record);
    const done = () => {
      if (this.#waiting.get(address) === record) this.#waiting.delete(address);
    };
    result.then(done, done);
    return result;
  }

  /** `get`, once; throws SQLITE_BUSY when a lock keeps the read out. */
  #lookup(key: string, scope: Scope): Entry | undefined {
    if (this.#writer.waiting) {
      const waiting = this.#readWaiting(key, scope);
      if (waiting !== NOT_WAITING) return waiting;
    }
    const sql = this.#sql;
    if (sql === undefined) return undefined; // not set up yet: nothing stored
    // Raw rows (arrays) skip building an object per read.
    const row = sql.get.get(scope.namespace, scope.session ?? "", key) as Row | undefined;
    if (row === undefined) return undefined;
    const [id, value, expiresAt] = row;
    const now = this.#clock.now();
    if (expiresAt !== null && expiresAt <= now) {
      this.#drop(id, scope, key, "expired");
      return undefined;
    }
    const entry = decodeOrUndefined(value);
    if (entry === undefined) {
      this.#drop(id, scope, key, "corrupt");
      return undefined;
    }
    this.#accessed.set(id, this.#tick(now));
    return entry;
  }

  /**
   * A read that a lock kept out (rare under WAL: another process recovering the log, or a file
   * not in WAL mode), retried with back-off without blocking, up to `busyTimeoutMs`.
   */
  async #readLater<T>(read: () => T): Promise<T> {
    const started = performance.now();
    for (let delay = 2; ; delay = Math.min(delay * 2, 50)) {
      await new Promise((resolve) => setTimeout(resolve, delay));
      try {
        return read();
      } catch (error) {
        if (!isBusy(error)) throw error;
      }
      const waited = performance.now() - started;
      if (waited >= this.busyTimeoutMs) {
        throw new LockTimeoutError(
          `infercache: another process has held a SQLite lock for over ${this.busyTimeoutMs} ms (busyTimeoutMs); this read was not answered`,
          Math.round(waited),
          0,
        );
      }
    }
  }

  /** A read while writes wait: what they will leave for this key, or NOT_WAITING. */
  #readWaiting(key: string, scope: Scope): Entry | undefined | typeof NOT_WAITING {
    const write = this.#waiting.get(addressOf(scope, key));
    if (write !== undefined) {
      if (write.value === null) return undefined;
      // Decoded again, so the caller gets its own copy, as from the file.
      const entry = decodeOrUndefined(write.value);
      return entry === undefined || isExpired(entry, this.#clock.now()) ? undefined : entry;
    }
    for (const clear of this.#waitingClears) if (covers(clear, scope)) return undefined;
    return NOT_WAITING;
  }

  #isOver(totals: { entries: number; bytes: number }): boolean {
    return (
      totals.entries > 0 &&
      ((this.maxSize > 0 && totals.entries > this.maxSize) ||
        (this.maxMemory > 0 && totals.bytes > this.maxMemory))
    );
  }

  /**
   * Inside the eviction transaction: drops least recently used entries until the limits hold.
   *
   * Sampled LRU, as Redis does it: each round reads SAMPLE consecutive rows from a random rowid
   * and drops the least recently used of them. An index on the access time would make every write
   * and every access-time flush update one more B-tree (~40% of a write here); with up to SAMPLE
   * entries the choice is exact, beyond that it is a close approximation.
   */
  #evict(sql: Statements): StoreEvent[] {
    const events: StoreEvent[] = [];
    for (;;) {
      const totals = sql.totals.get() as { entries: number; bytes: number };
      if (!this.#isOver(totals)) return events;
      const overCount = this.maxSize > 0 && totals.entries > this.maxSize;
      const { low, high } = sql.bounds.get() as { low: number; high: number };
      const start = low + Math.floor(Math.random() * (high - low + 1));
      let sample = sql.sample.all(start) as { id: number; accessed_at: number }[];
      if (sample.length < SAMPLE) sample = sample.concat(sql.sample.all(low) as typeof sample);
      let victim = sample[0];
      for (const row of sample)
        if (victim === undefined || row.accessed_at < victim.accessed_at) victim = row;
      if (victim === undefined) return events;
      const removed = sql.evictId.get(victim.id) as
        | { namespace: string; session: string; key: string }
        | undefined;
      if (removed === undefined) continue;
      events.push({
        type: "evict",
        reason: overCount ? "size" : "memory",
        scope: scopeOf(removed.namespace, removed.session),
        key: removed.key,
      });
    }
  }

  /**
   * LRU order: microseconds of the store's clock, strictly increasing within this process, so two
   * uses in one millisecond keep their order; comparable across processes to about a millisecond.
   */
  #tick(now: number): number {
    this.#lastTick = Math.max(this.#lastTick + 1, Math.floor(now * 1000));
    return this.#lastTick;
  }

  /** Removes an entry found expired or damaged; best effort (a later read finds it again). */
  #drop(id: number, scope: Scope, key: string, reason: EvictReason): void {
    this.#emit({ type: "evict", reason, scope, key });
    try {
      const dropped = this.#writer.run(() => this.#statements().deleteId.run(id));
      if (dropped instanceof Promise) dropped.catch(() => {});
    } catch {
      // The read has its answer (a miss) either way.
    }
  }

  #emit(event: StoreEvent): void {
    for (const listener of this.#listeners) listener(event);
  }

  /**
   * Writes the gathered access times. Skipped while writes wait for a lock, and kept for the next
   * flush when the lock is taken meanwhile: LRU order may lag, nothing else depends on it.
   */
  #flushAccess(): void {
    if (this.#accessed.size === 0 || this.#closed || this.#writer.waiting) return;
    try {
      this.#touches?.immediate();
    } catch (error) {
      if (!isBusy(error)) throw error;
    }
  }
}

/** One string per (namespace, session, key), unambiguous: lengths prefix the free-form parts. */
function addressOf(scope: Scope, key: string): string {
  const session = scope.session ?? "";
  return `${scope.namespace.length}:${scope.namespace}${session.length}:${session}${key}`;
}

/** Whether `clear(scope)` removes the entries of `entryScope`. */
function covers(scope: ClearScope, entryScope: Scope): boolean {
  if (scope.namespace !== undefined && scope.namespace !== entryScope.namespace) return false;
  if (scope.session === undefined) return true;
  const session = entryScope.session ?? "";
  return scope.session === null ? session === "" : scope.session === session;
}

function scopeOf(namespace: string, session: string): Scope {
  return session === "" ? { namespace } : { namespace, session };
}

function ensureFolder(path: string): void {
  mkdirSync(dirname(path), { recursive: true });
}
