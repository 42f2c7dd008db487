/**
 * SqliteStore's purge on real files: tag and age purges read their rows through indexes (never
 * a scan of `entries`), a file written by schema version 2 (the layout before tags) is migrated
 * in place and keeps its entries, and purges from two processes' stores on one file agree.
 */
import { mkdirSync, mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import Database from "better-sqlite3";
import { describe, expect, it } from "vitest";
import { SqliteStore } from "../src/sqlite.js";
import { encodeEntry } from "../src/store/envelope.js";
import { purgeSql, SCHEMA_VERSION } from "../src/store/sqlite/schema.js";
import { SCHEMA_V2 } from "./helpers/legacy-formats.js";

const dir = mkdtempSync(join(tmpdir(), "infercache-purge-sqlite-"));
let files = 0;
const freshPath = () => {
  const path = join(dir, `db-${++files}`, "cache.db");
  mkdirSync(dirname(path), { recursive: true });
  return path;
};

function createSchemaV2File(path: string, rows: { key: string; createdAt: number }[]): void {
  const db = new Database(path);
  db.pragma("journal_mode = WAL");
  db.exec(SCHEMA_V2);
  const insert = db.prepare(
    "INSERT INTO entries (namespace, session, key, value, bytes, created_at, expires_at, accessed_at) VALUES ('n', '', ?, ?, ?, ?, NULL, ?)",
  );
  for (const [i, row] of rows.entries()) {
    const value = encodeEntry({ value: `v2 ${row.key}`, createdAt: row.createdAt });
    insert.run(row.key, value, 64 + value.length, row.createdAt, i);
  }
  db.close();
}

function planOf(path: string, sql: string, params: unknown[]): string {
  const db = new Database(path);
  try {
    db.exec("ANALYZE");
    const rows = db.prepare(`EXPLAIN QUERY PLAN ${sql}`).all(...params) as { detail: string }[];
    return rows.map((row) => row.detail).join(" | ");
  } finally {
    db.close();
  }
}

describe("SqliteStore purge", () => {
  it("migrates a schema 2 file in place: its entries stay, and purge works on them and on new ones", async () => {
    const path = freshPath();
    const now = Date.now();
    createSchemaV2File(path, [
      { key: "old", createdAt: now - 60_000 },
      { key: "recent", createdAt: now },
    ]);
    const store = new SqliteStore({ path });
    const db = new Database(path, { readonly: true });
    const version = db.prepare("SELECT value FROM infercache_meta WHERE name = 'schema'").pluck();
    expect(version.get()).toBe(String(SCHEMA_VERSION));
    const names = db
      .prepare("SELECT name FROM sqlite_master WHERE name LIKE 'entr%' ORDER BY name")
      .pluck()
      .all();
    db.close();
    expect(names).toEqual(
      expect.arrayContaining(["entries_created", "entry_tags", "entry_tags_entry"]),
    );
    expect((await store.get("old", { namespace: "n" }))?.value).toBe("v2 old");
    expect(store.totals().entries).toBe(2);
    await store.set("tagged", { namespace: "n" }, { value: 1, createdAt: now, tags: ["t"] });
    expect(await store.purge({ olderThan: now - 1 })).toBe(1);
    expect(await store.purge({ tags: ["t"] })).toBe(1);
    expect((await store.get("recent", { namespace: "n" }))?.value).toBe("v2 recent");
    expect(store.totals().entries).toBe(1);
    await store.close();
  });

  it("reads only the indexed rows: no SCAN of entries for a tag, an age, or both with a namespace", async () => {
    const path = freshPath();
    const store = new SqliteStore({ path });
    for (let i = 0; i < 200; i++) {
      await store.set(
        `k${i}`,
        { namespace: i % 2 === 0 ? "a" : "b" },
        {
          value: i,
          createdAt: 1_000 + i,
          tags: i % 10 === 0 ? ["ten", "all"] : ["all"],
        },
      );
    }
    await store.close();
    for (const filter of [
      { tags: ["ten"] },
      { tags: ["ten", "all"], namespace: "a" },
      { olderThan: 1_050 },
      { olderThan: 1_050, namespace: "a" },
      { tags: ["ten"], olderThan: 1_050 },
    ]) {
      const { sql, params } = purgeSql(filter, Date.now());
      expect(planOf(path, sql, params), JSON.stringify(filter)).not.toMatch(/SCAN entries\b/);
    }
    const reopened = new SqliteStore({ path });
    expect(await reopened.purge({ tags: ["ten"], namespace: "a" })).toBe(20);
    expect(await reopened.purge({ olderThan: 1_100 })).toBe(90);
    expect(await reopened.purge({ tags: ["all"] })).toBe(90);
    await reopened.close();
  });

  it("removes a tag's rows with their entries, so evicted, replaced or cleared entries leave no tag rows", async () => {
    const path = freshPath();
    const store = new SqliteStore({ path, maxSize: 5 });
    for (let i = 0; i < 20; i++) {
      await store.set(
        `k${i}`,
        { namespace: "n" },
        { value: i, createdAt: i, tags: ["t", `k${i}`] },
      );
    }
    await store.set("k19", { namespace: "n" }, { value: "untagged", createdAt: 99 });
    await store.clear({ namespace: "other" });
    const db = new Database(path, { readonly: true });
    const tagRows = db.prepare("SELECT count(*) FROM entry_tags").pluck().get();
    db.close();
    // 5 entries kept, one of them rewritten without tags: 4 tagged entries, 2 tags each.
    expect(tagRows).toBe(8);
    expect(await store.purge({ tags: ["t"] })).toBe(4);
    expect((await store.get("k19", { namespace: "n" }))?.value).toBe("untagged");
    await store.close();
  });

  it("purges across chunks: more rows than one statement removes", async () => {
    const store = new SqliteStore({ path: freshPath() });
    for (let i = 0; i < 4_500; i++) {
      await store.set(`k${i}`, { namespace: "n" }, { value: i, createdAt: i, tags: ["bulk"] });
    }
    expect(await store.purge({ tags: ["bulk"] })).toBe(4_500);
    expect(await store.size()).toBe(0);
    await store.close();
  });
});
