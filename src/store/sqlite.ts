/**
 * `SqliteStore`: the embedded persistent store. One SQLite file in WAL mode, shared safely by
 * several processes, crash-safe, bounded by entries and bytes with LRU eviction, with TTL,
 * namespaces and sessions.
 *
 * - Every write is one transaction: a process killed mid-write leaves the previous state, never a
 *   half-written row. Values carry a checksummed envelope, so bytes damaged on disk read as a
 *   miss and are removed, never returned.
 * - Totals (entries, bytes) are kept by triggers inside the writer's transaction, so every
 *   process sees the same totals and enforces the same limits without counting rows.
 * - A read is not a write: access times are gathered in memory and written in one transaction
 *   per `accessFlushMs` (and before this process evicts), which is what LRU order uses.
 *   Another process's reads reach the order at most that late. Eviction samples rows (Redis's
 *   approximated LRU) instead of keeping an index on the access time.
 */

import { mkdirSync } from "node:fs";
import { dirname } from "node:path";
import type BetterSqlite3 from "better-sqlite3";
import { type Clock, systemClock } from "../base/clock.js";
import { type Duration, parseDuration } from "../base/duration.js";
import { loadPeer } from "../base/optional-peer.js";
import { parseSize, type Size } from "../base/size.js";
import { nonNegativeInteger } from "../base/validate.js";
import { CorruptEntryError, decodeEntry, encodeOrRefuse } from "./envelope.js";
import {
  type ClearScope,
  type Entry,
  type EvictReason,
  type Scope,
  type SetOutcome,
  type Store,
  type StoreEvent,
  withDefaultTtl,
} from "./store.js";

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
  /** How long to wait for another process's write lock, ms. @default 5000 */
  busyTimeoutMs?: number;
  clock?: Clock;
}

type Database = BetterSqlite3.Database;
type Statement = BetterSqlite3.Statement;

const SCHEMA_VERSION = 1;
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
}

/** id, value, expires_at */
type Row = [number, Buffer, number | null];

export class SqliteStore implements Store {
  readonly kind = "sqlite";
  readonly path: string;
  readonly maxSize: number;
  readonly maxMemory: number;
  readonly ttl: number;
  readonly #db: Database;
  readonly #clock: Clock;
  readonly #listeners = new Set<(event: StoreEvent) => void>();
  readonly #accessed = new Map<number, number>();
  readonly #timer: NodeJS.Timeout;
  readonly #sql: Statements;
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
    this.#clock = options.clock ?? systemClock;
    const Driver = loadPeer<typeof BetterSqlite3>("better-sqlite3", "sqlite");
    if (this.path !== ":memory:") ensureFolder(this.path);
    this.#db = new Driver(this.path);
    this.#db.pragma(`busy_timeout = ${Math.floor(options.busyTimeoutMs ?? 5000)}`);
    this.#db.pragma("journal_mode = WAL");
    // WAL + NORMAL: a crash never corrupts or half-writes; a power loss may drop the last commits.
    this.#db.pragma("synchronous = NORMAL");
    // Checkpoint (and fsync) every ~40 MB of WAL instead of ~4 MB: fewer syncs per write.
    this.#db.pragma("wal_autocheckpoint = 10000");
    this.#db.pragma("journal_size_limit = 67108864");
    this.#migrate();
    this.#sql = this.#prepare();
    const flushMs = options.accessFlushMs ?? 1000;
    this.#timer = setInterval(() => this.#flushAccess(), flushMs);
    this.#timer.unref();
  }

  async get(key: string, scope: Scope): Promise<Entry | undefined> {
    return this.getNow(key, scope);
  }

  /** `get` without the promise: better-sqlite3 is synchronous. */
  getNow(key: string, scope: Scope): Entry | undefined {
    // Raw rows (arrays) skip building an object per read.
    const row = this.#sql.get.get(scope.namespace, scope.session ?? "", key) as Row | undefined;
    if (row === undefined) return undefined;
    const [id, value, expiresAt] = row;
    if (expiresAt !== null && expiresAt <= this.#clock.now()) {
      this.#drop(id, scope, key, "expired");
      return undefined;
    }
    let entry: Entry;
    try {
      entry = decodeEntry(value);
    } catch (error) {
      if (!(error instanceof CorruptEntryError)) throw error;
      this.#drop(id, scope, key, "corrupt");
      return undefined;
    }
    this.#accessed.set(id, this.#tick());
    return entry;
  }

  async set(key: string, scope: Scope, entry: Entry): Promise<SetOutcome> {
    entry = withDefaultTtl(entry, this.ttl);
    const value = encodeOrRefuse(entry);
    if (value === "not-serializable") return value;
    const bytes = ROW_OVERHEAD + 2 * key.length + value.length;
    if (this.maxMemory > 0 && bytes > this.maxMemory) {
      this.#sql.delete.run(scope.namespace, scope.session ?? "", key);
      return "too-large";
    }
    this.#flushAccess();
    const now = this.#tick();
    const evicted = this.#db
      .transaction(() => {
        this.#sql.upsert.run(
          scope.namespace,
          scope.session ?? "",
          key,
          value,
          bytes,
          entry.createdAt,
          entry.expiresAt ?? null,
          now,
        );
        return this.#evict();
      })
      .immediate();
    for (const event of evicted) this.#emit(event);
    return "stored";
  }

  async delete(key: string, scope: Scope): Promise<boolean> {
    return this.#sql.delete.run(scope.namespace, scope.session ?? "", key).changes === 1;
  }

  async clear(scope?: ClearScope): Promise<number> {
    const { where, params } = scopeFilter(scope);
    return this.#db.prepare(`DELETE FROM entries ${where}`).run(...params).changes;
  }

  async size(scope?: ClearScope): Promise<number> {
    const { where, params } = scopeFilter(scope);
    const live = `${where === "" ? "WHERE" : `${where} AND`} (expires_at IS NULL OR expires_at > ?)`;
    const row = this.#db
      .prepare(`SELECT count(*) AS n FROM entries ${live}`)
      .get(...params, this.#clock.now()) as {
      n: number;
    };
    return row.n;
  }

  async *entries(scope: Scope): AsyncIterable<[key: string, entry: Entry]> {
    this.#flushAccess();
    const rows = this.#sql.entries.all(scope.namespace, scope.session ?? "", this.#clock.now()) as {
      id: number;
      key: string;
      value: Buffer;
    }[];
    for (const row of rows) {
      try {
        yield [row.key, decodeEntry(row.value)];
      } catch (error) {
        if (!(error instanceof CorruptEntryError)) throw error;
        this.#drop(row.id, scope, row.key, "corrupt");
      }
    }
  }

  subscribe(listener: (event: StoreEvent) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  usage(namespace: string): { entries: number; bytes: number } {
    const row = this.#sql.usage.get(namespace) as { n: number; b: number | null };
    return { entries: row.n, bytes: row.b ?? 0 };
  }

  /** Totals across every namespace, as kept by the triggers. */
  totals(): { entries: number; bytes: number } {
    return this.#sql.totals.get() as { entries: number; bytes: number };
  }

  /** Removes every expired entry now (expiry is otherwise checked when an entry is read). */
  purgeExpired(): number {
    return this.#db
      .prepare("DELETE FROM entries WHERE expires_at IS NOT NULL AND expires_at <= ?")
      .run(this.#clock.now()).changes;
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    clearInterval(this.#timer);
    this.#flushAccess();
    this.#db.close();
  }

  #migrate(): void {
    this.#db.exec(`
      CREATE TABLE IF NOT EXISTS infercache_meta (name TEXT PRIMARY KEY, value TEXT NOT NULL);
      CREATE TABLE IF NOT EXISTS entries (
        id INTEGER PRIMARY KEY,
        namespace TEXT NOT NULL,
        session TEXT NOT NULL,
        key TEXT NOT NULL,
        value BLOB NOT NULL,
        bytes INTEGER NOT NULL,
        created_at INTEGER NOT NULL,
        expires_at INTEGER,
        accessed_at INTEGER NOT NULL
      );
      CREATE UNIQUE INDEX IF NOT EXISTS entries_address ON entries (namespace, session, key);
      CREATE TABLE IF NOT EXISTS totals (id INTEGER PRIMARY KEY CHECK (id = 1), entries INTEGER NOT NULL, bytes INTEGER NOT NULL);
      INSERT OR IGNORE INTO totals (id, entries, bytes) VALUES (1, 0, 0);
      CREATE TRIGGER IF NOT EXISTS entries_insert AFTER INSERT ON entries BEGIN
        UPDATE totals SET entries = entries + 1, bytes = bytes + NEW.bytes WHERE id = 1;
      END;
      CREATE TRIGGER IF NOT EXISTS entries_delete AFTER DELETE ON entries BEGIN
        UPDATE totals SET entries = entries - 1, bytes = bytes - OLD.bytes WHERE id = 1;
      END;
      CREATE TRIGGER IF NOT EXISTS entries_update AFTER UPDATE OF bytes ON entries BEGIN
        UPDATE totals SET bytes = bytes - OLD.bytes + NEW.bytes WHERE id = 1;
      END;
    `);
    const version = this.#db
      .prepare("SELECT value FROM infercache_meta WHERE name = 'schema'")
      .get() as { value: string } | undefined;
    if (version === undefined) {
      this.#db
        .prepare("INSERT OR IGNORE INTO infercache_meta (name, value) VALUES ('schema', ?)")
        .run(String(SCHEMA_VERSION));
    } else if (Number(version.value) !== SCHEMA_VERSION) {
      throw new Error(
        `infercache: ${this.path} has cache schema ${version.value}, this version reads ${SCHEMA_VERSION}; use another file or delete it`,
      );
    }
  }

  #prepare(): Statements {
    const db = this.#db;
    return {
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
    };
  }

  /**
   * Inside the write transaction: drops least recently used entries until the limits hold.
   *
   * Sampled LRU, as Redis does it: each round reads SAMPLE consecutive rows from a random rowid
   * and drops the least recently used of them. An index on the access time would make every write
   * and every access-time flush update one more B-tree (~40% of a write here); with up to SAMPLE
   * entries the choice is exact, beyond that it is a close approximation.
   */
  #evict(): StoreEvent[] {
    const events: StoreEvent[] = [];
    for (;;) {
      const totals = this.#sql.totals.get() as { entries: number; bytes: number };
      const overCount = this.maxSize > 0 ? totals.entries - this.maxSize : 0;
      const overBytes = this.maxMemory > 0 && totals.bytes > this.maxMemory;
      if ((overCount <= 0 && !overBytes) || totals.entries === 0) return events;
      const { low, high } = this.#sql.bounds.get() as { low: number; high: number };
      const start = low + Math.floor(Math.random() * (high - low + 1));
      let sample = this.#sql.sample.all(start) as { id: number; accessed_at: number }[];
      if (sample.length < SAMPLE)
        sample = sample.concat(this.#sql.sample.all(low) as typeof sample);
      let victim = sample[0];
      for (const row of sample)
        if (victim === undefined || row.accessed_at < victim.accessed_at) victim = row;
      if (victim === undefined) return events;
      const removed = this.#sql.evictId.get(victim.id) as
        | { namespace: string; session: string; key: string }
        | undefined;
      if (removed === undefined) continue;
      events.push({
        type: "evict",
        reason: overCount > 0 ? "size" : "memory",
        scope: scopeOf(removed.namespace, removed.session),
        key: removed.key,
      });
    }
  }

  /**
   * LRU order: microseconds since the epoch, strictly increasing within this process, so two uses
   * in one millisecond keep their order; comparable across processes to about a millisecond.
   */
  #tick(): number {
    this.#lastTick = Math.max(this.#lastTick + 1, Date.now() * 1000);
    return this.#lastTick;
  }

  #drop(id: number, scope: Scope, key: string, reason: EvictReason): void {
    this.#sql.deleteId.run(id);
    this.#emit({ type: "evict", reason, scope, key });
  }

  #emit(event: StoreEvent): void {
    for (const listener of this.#listeners) listener(event);
  }

  #flushAccess(): void {
    if (this.#accessed.size === 0 || this.#closed) return;
    const touches = [...this.#accessed];
    this.#accessed.clear();
    const touch = this.#sql.touch;
    this.#db.transaction(() => {
      for (const [id, at] of touches) touch.run(at, id);
    })();
  }
}

function scopeOf(namespace: string, session: string): Scope {
  return session === "" ? { namespace } : { namespace, session };
}

function scopeFilter(scope: ClearScope | undefined): { where: string; params: string[] } {
  const clauses: string[] = [];
  const params: string[] = [];
  if (scope?.namespace !== undefined) {
    clauses.push("namespace = ?");
    params.push(scope.namespace);
  }
  if (scope?.session === null) clauses.push("session = ''");
  else if (scope?.session !== undefined) {
    clauses.push("session = ?");
    params.push(scope.session);
  }
  return { where: clauses.length === 0 ? "" : `WHERE ${clauses.join(" AND ")}`, params };
}

function ensureFolder(path: string): void {
  mkdirSync(dirname(path), { recursive: true });
}
