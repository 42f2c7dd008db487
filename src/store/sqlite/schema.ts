/**
 * SqliteStore's file layout: the schema, its version and migrations, and the SQL for scoped
 * clears and counts. What the store does with it is in `../sqlite.ts`.
 *
 * Version 2 adds `entries_session`, a partial index on (session, namespace) of the rows that
 * belong to a session, so ending a session (`clear({ session })`) reads that session's rows and
 * not the whole table; shared rows (most of them) cost no extra index write.
 *
 * Version 3 adds what `purge` needs: `entry_tags` (one row per tag of an entry, keyed by tag, so
 * a tag purge reads the tag's rows; a second index by entry for the triggers that keep it in
 * step) and `entries_created`, an index on `created_at`, so an age purge reads the old rows and
 * not the table. Triggers drop an entry's tags when its row is deleted (delete, clear, eviction,
 * expiry) or its value replaced; the store writes the new tags in the same transaction. Nothing
 * wrote tags before version 3, so a migration has no tags to copy.
 *
 * Older files are migrated in place (indexes, tables and triggers added; entries kept); a file
 * from a newer version is refused.
 */

import type BetterSqlite3 from "better-sqlite3";
import type { ClearScope, PurgeFilter } from "../store.js";

type Database = BetterSqlite3.Database;

export const SCHEMA_VERSION = 3;

const CREATE = `
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
`;

/** Version 1 → 2: the session index. */
const SESSION_INDEX =
  "CREATE INDEX IF NOT EXISTS entries_session ON entries (session, namespace) WHERE session <> ''";

/** Version 2 → 3: tags and the creation-time index, for `purge`. */
const PURGE_INDEXES = `
  CREATE TABLE IF NOT EXISTS entry_tags (
    tag TEXT NOT NULL,
    entry_id INTEGER NOT NULL,
    PRIMARY KEY (tag, entry_id)
  ) WITHOUT ROWID;
  CREATE INDEX IF NOT EXISTS entry_tags_entry ON entry_tags (entry_id);
  CREATE INDEX IF NOT EXISTS entries_created ON entries (created_at);
  CREATE TRIGGER IF NOT EXISTS entries_untag AFTER DELETE ON entries BEGIN
    DELETE FROM entry_tags WHERE entry_id = OLD.id;
  END;
  CREATE TRIGGER IF NOT EXISTS entries_retag AFTER UPDATE OF value ON entries BEGIN
    DELETE FROM entry_tags WHERE entry_id = OLD.id;
  END;
`;

/**
 * What the file needs before this version can use it, found with reads only (they go on while
 * another process holds the write lock). `usable`: the tables are there, so reads and writes
 * work now, even if a migration or WAL mode is still to come.
 */
export interface FileState {
  version: number | undefined;
  usable: boolean;
  needsSetup: boolean;
}

export function inspect(db: Database, path: string): FileState {
  const hasMeta =
    db
      .prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'infercache_meta'")
      .get() !== undefined;
  const row = hasMeta
    ? (db.prepare("SELECT value FROM infercache_meta WHERE name = 'schema'").get() as
        | { value: string }
        | undefined)
    : undefined;
  const version = row === undefined ? undefined : Number(row.value);
  if (version !== undefined && !(version >= 1 && version <= SCHEMA_VERSION)) {
    throw new Error(
      `infercache: ${path} has cache schema ${row?.value}, this version reads 1 to ${SCHEMA_VERSION}; use another file or delete it`,
    );
  }
  const wal = String(db.pragma("journal_mode", { simple: true })).toLowerCase() === "wal";
  return {
    version,
    usable: version !== undefined,
    needsSetup: version !== SCHEMA_VERSION || !wal,
  };
}

/**
 * Creates or migrates the schema and turns WAL on. Needs the write lock: throws `SQLITE_BUSY`
 * while another process holds it (the caller retries).
 */
export function setUp(db: Database, path: string): void {
  if (String(db.pragma("journal_mode", { simple: true })).toLowerCase() !== "wal") {
    db.pragma("journal_mode = WAL");
  }
  db.transaction(() => {
    db.exec(CREATE);
    db.exec(SESSION_INDEX);
    db.exec(PURGE_INDEXES);
    const row = db.prepare("SELECT value FROM infercache_meta WHERE name = 'schema'").get() as
      | { value: string }
      | undefined;
    if (row !== undefined && Number(row.value) > SCHEMA_VERSION) {
      throw new Error(
        `infercache: ${path} has cache schema ${row.value}, this version reads 1 to ${SCHEMA_VERSION}; use another file or delete it`,
      );
    }
    db.prepare(
      "INSERT INTO infercache_meta (name, value) VALUES ('schema', ?) ON CONFLICT (name) DO UPDATE SET value = excluded.value",
    ).run(String(SCHEMA_VERSION));
  }).immediate();
}

/**
 * The WHERE clause for a `ClearScope`. A session is matched with `session <> ''` spelled out so
 * that SQLite may use the partial session index.
 */
export function scopeFilter(scope: ClearScope | undefined): { where: string; params: string[] } {
  const clauses: string[] = [];
  const params: string[] = [];
  if (scope?.namespace !== undefined) {
    clauses.push("namespace = ?");
    params.push(scope.namespace);
  }
  // Shared rows are stored with session '' (so an empty session id is the shared scope).
  if (scope?.session === null || scope?.session === "") clauses.push("session = ''");
  else if (scope?.session !== undefined) {
    clauses.push("session = ?", "session <> ''");
    params.push(scope.session);
  }
  return { where: clauses.length === 0 ? "" : `WHERE ${clauses.join(" AND ")}`, params };
}

/** `clear(scope)`: its statement (reused per shape of scope) and parameters. */
export function clearSql(scope: ClearScope | undefined): { sql: string; params: string[] } {
  const { where, params } = scopeFilter(scope);
  return { sql: `DELETE FROM entries ${where}`, params };
}

/** `size(scope)`: counts live rows; the last parameter is the time (ms) that decides expiry. */
export function sizeSql(scope: ClearScope | undefined): { sql: string; params: string[] } {
  const { where, params } = scopeFilter(scope);
  const live = `${where === "" ? "WHERE" : `${where} AND`} (expires_at IS NULL OR expires_at > ?)`;
  return { sql: `SELECT count(*) FROM entries ${live}`, params };
}

/** Rows one purge statement removes, so another process never waits long for the lock. */
export const PURGE_CHUNK = 2000;

/**
 * `purge(filter)` (a checked filter): one chunk's DELETE and its parameters (`now` decides
 * which rows are live; expired ones are left to expiry, and not counted). Through `entry_tags`
 * for tags, `entries_created` for an age alone.
 */
export function purgeSql(
  filter: PurgeFilter,
  now: number,
): { sql: string; params: (string | number)[] } {
  const params: (string | number)[] = [];
  const clauses: string[] = [];
  if (filter.tags !== undefined) {
    clauses.push(
      `id IN (SELECT entry_id FROM entry_tags WHERE tag IN (${filter.tags.map(() => "?").join(", ")}))`,
    );
    params.push(...filter.tags);
  }
  for (const tag of filter.allTags ?? []) {
    clauses.push("id IN (SELECT entry_id FROM entry_tags WHERE tag = ?)");
    params.push(tag);
  }
  if (filter.olderThan !== undefined) {
    clauses.push("created_at < ?");
    params.push(filter.olderThan);
  }
  if (filter.namespace !== undefined) {
    clauses.push("namespace = ?");
    params.push(filter.namespace);
  }
  clauses.push("(expires_at IS NULL OR expires_at > ?)");
  params.push(now);
  return {
    sql: `DELETE FROM entries WHERE id IN (SELECT id FROM entries WHERE ${clauses.join(" AND ")} LIMIT ${PURGE_CHUNK})`,
    params,
  };
}
