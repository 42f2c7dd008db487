/**
 * SqliteStore's file layout: scoped clears and counts go through an index (ending a session
 * reads that session's rows, not the table), old files are migrated in place, newer ones refused.
 */
import { mkdirSync, mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import Database from "better-sqlite3";
import { describe, expect, it } from "vitest";
import type { ClearScope } from "../src/index.js";
import { SqliteStore } from "../src/sqlite.js";
import { clearSql, SCHEMA_VERSION, sizeSql } from "../src/store/sqlite/schema.js";
import { createSchemaV1File } from "./helpers/legacy-formats.js";
import { holdWriteLock } from "./helpers/sqlite-lock.js";

const dir = mkdtempSync(join(tmpdir(), "infercache-sqlite-schema-"));
let files = 0;
const freshPath = () => {
  const path = join(dir, `db-${++files}`, "cache.db");
  mkdirSync(dirname(path), { recursive: true });
  return path;
};
const entry = (value: unknown) => ({ value, createdAt: Date.now() });

function withFile<T>(path: string, body: (db: Database.Database) => T): T {
  const db = new Database(path);
  try {
    return body(db);
  } finally {
    db.close();
  }
}

/** SQLite's plan for a statement, one line per step ("SEARCH entries USING INDEX …"). */
function planOf(db: Database.Database, sql: string, params: unknown[]): string[] {
  const rows = db.prepare(`EXPLAIN QUERY PLAN ${sql}`).all(...params) as { detail: string }[];
  return rows.map((row) => row.detail);
}

const schemaOf = (path: string) =>
  withFile(path, (db) => ({
    version: (
      db.prepare("SELECT value FROM infercache_meta WHERE name = 'schema'").get() as {
        value: string;
      }
    ).value,
    indexes: (
      db
        .prepare("SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'entries'")
        .pluck()
        .all() as string[]
    ).sort(),
  }));

describe("SqliteStore's session index", () => {
  it("ends a session, and counts one, without scanning the entries table", async () => {
    const path = freshPath();
    const store = new SqliteStore({ path });
    for (let i = 0; i < 50; i++) await store.set(`shared-${i}`, { namespace: "n" }, entry(i));
    for (const session of ["a", "b"]) {
      for (const namespace of ["n", "m"]) {
        await store.set("k", { namespace, session }, entry(session));
      }
    }
    await store.close();
    // What the gateway runs when a session's event stream ends, and the per-cache variant.
    const scopes: ClearScope[] = [{ session: "a" }, { namespace: "n", session: "a" }];
    withFile(path, (db) => {
      // With statistics, as a file that has seen `PRAGMA optimize` would have them.
      db.exec("ANALYZE");
      for (const scope of scopes) {
        for (const { sql, params } of [clearSql(scope), sizeSql(scope)]) {
          const values = [...params, Date.now()].slice(0, sql.split("?").length - 1);
          const plan = planOf(db, sql, values);
          expect(plan.join(" | "), `${sql} for ${JSON.stringify(scope)}`).not.toMatch(/\bSCAN\b/);
        }
      }
    });
    const reopened = new SqliteStore({ path });
    expect(await reopened.size({ session: "a" })).toBe(2);
    expect(await reopened.clear({ session: "a" })).toBe(2);
    expect(await reopened.size({ session: "b" })).toBe(2);
    expect(await reopened.size({ namespace: "n", session: null })).toBe(50);
    await reopened.close();
  });
});

describe("SqliteStore schema versions", () => {
  const v1Rows = [
    { namespace: "n", key: "shared", entry: { value: { text: "from version 1" }, createdAt: 1 } },
    { namespace: "n", session: "s", key: "mine", entry: { value: [1, 2, 3], createdAt: 2 } },
  ];

  it("migrates a schema 1 file in place: its entries stay readable and the index is added", async () => {
    const path = freshPath();
    createSchemaV1File(path, v1Rows);
    expect(schemaOf(path)).toEqual({ version: "1", indexes: ["entries_address"] });
    const store = new SqliteStore({ path });
    expect(schemaOf(path)).toEqual({
      version: String(SCHEMA_VERSION),
      indexes: ["entries_address", "entries_created", "entries_session"],
    });
    expect((await store.get("shared", { namespace: "n" }))?.value).toEqual({
      text: "from version 1",
    });
    expect((await store.get("mine", { namespace: "n", session: "s" }))?.value).toEqual([1, 2, 3]);
    expect(store.totals().entries).toBe(2);
    expect(await store.clear({ session: "s" })).toBe(1);
    await store.close();
  });

  it("serves a schema 1 file at once while another process holds the lock, and migrates it after", async () => {
    const path = freshPath();
    createSchemaV1File(path, v1Rows);
    const lock = await holdWriteLock(path);
    const store = new SqliteStore({ path });
    expect((await store.get("shared", { namespace: "n" }))?.value).toEqual({
      text: "from version 1",
    });
    const written = store.set("new", { namespace: "n" }, entry("v2"));
    expect(schemaOf(path).version).toBe("1");
    await lock.release();
    expect(await written).toBe("stored");
    expect(schemaOf(path)).toEqual({
      version: String(SCHEMA_VERSION),
      indexes: ["entries_address", "entries_created", "entries_session"],
    });
    await store.close();
  });

  it("refuses a file written by a newer version, saying what to do", () => {
    const path = freshPath();
    withFile(path, (db) => {
      db.exec("CREATE TABLE infercache_meta (name TEXT PRIMARY KEY, value TEXT NOT NULL)");
      db.exec("INSERT INTO infercache_meta VALUES ('schema', '9')");
    });
    expect(() => new SqliteStore({ path })).toThrow(
      new RegExp(
        `has cache schema 9, this version reads 1 to ${SCHEMA_VERSION}; use another file or delete it`,
      ),
    );
  });
});
