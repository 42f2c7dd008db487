/**
 * Purge by tag on 100,000 entries: SqliteStore (one file, through `entry_tags`) and RedisStore
 * (one redis-server on loopback, through `{ns}:t:<tag>`), each next to the scan a store without
 * the index would run (SQLite: read and decode every row, delete the matches; Redis: the
 * `bookkeeping: "scan"` path, SCAN + MGET + decode). Entries carry `model:m<i % 10>` and
 * `tenant:t<i % 100>`: one model tag names 10,000 of them.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import Database from "better-sqlite3";
import { RedisStore } from "../src/redis.js";
import { SqliteStore } from "../src/sqlite.js";
import { decodeEntry } from "../src/store/envelope.js";
import type { Store } from "../src/store/store.js";
import { RedisServer } from "../test/helpers/redis-server.js";
import { middle } from "./report.js";

export interface PurgeRow {
  name: string;
  /** Median ms of one purge. */
  ms: number;
  removed: number;
}

const ENTRIES = 100_000;
const ROUNDS = 3;
const scope = { namespace: "bench" };
const value = {
  text: "an answer of a hundred or so characters, like a short chat completion's content field",
};

async function seed(store: Store): Promise<void> {
  const now = Date.now();
  const batch: Promise<unknown>[] = [];
  for (let i = 0; i < ENTRIES; i++) {
    batch.push(
      store.set(`key-${i}`, scope, {
        value,
        createdAt: now,
        tags: [`model:m${i % 10}`, `tenant:t${i % 100}`],
      }),
    );
    if (batch.length === 1000) await Promise.all(batch.splice(0));
  }
  await Promise.all(batch);
}

async function time(fn: () => Promise<number>): Promise<{ ms: number; removed: number }> {
  const started = performance.now();
  const removed = await fn();
  return { ms: performance.now() - started, removed };
}

export async function purgeBench(): Promise<PurgeRow[]> {
  const rows: PurgeRow[] = [];
  const dir = mkdtempSync(join(tmpdir(), "infercache-bench-purge-"));
  const runs: Record<string, { ms: number[]; removed: number }> = {};
  const record = (name: string, r: { ms: number; removed: number }) => {
    runs[name] ??= { ms: [], removed: r.removed };
    runs[name].ms.push(r.ms);
  };
  try {
    for (let round = 0; round < ROUNDS; round++) {
      const path = join(dir, `r${round}.db`);
      const store = new SqliteStore({ path });
      await seed(store);
      record(
        "SQLite purge({ tags: [model:m3] }) (index)",
        await time(() => store.purge({ tags: ["model:m3"] })),
      );
      await store.close();
      // The peer: what a store without the index must do: read every row, decode, delete matches.
      const db = new Database(path);
      record(
        "SQLite scan: read + decode every row, delete matches",
        await time(async () => {
          const rows = db.prepare("SELECT id, value FROM entries").raw(true).all() as [
            number,
            Buffer,
          ][];
          const del = db.prepare("DELETE FROM entries WHERE id = ?");
          let removed = 0;
          db.transaction(() => {
            for (const [id, bytes] of rows) {
              if (decodeEntry(bytes).tags?.includes("model:m4")) removed += del.run(id).changes;
            }
          })();
          return removed;
        }),
      );
      db.close();
    }
    const server = await RedisServer.start();
    try {
      for (let round = 0; round < ROUNDS; round++) {
        const prefix = `bench${round}:`;
        const store = new RedisStore({ url: server.url, prefix, bookkeeping: "index" });
        await store.ready();
        await seed(store);
        record(
          "Redis purge({ tags: [model:m3] }) (index)",
          await time(() => store.purge({ tags: ["model:m3"] })),
        );
        const scanning = new RedisStore({ url: server.url, prefix, bookkeeping: "scan" });
        await scanning.ready();
        record(
          'Redis purge, bookkeeping: "scan" (SCAN + MGET + decode)',
          await time(() => scanning.purge({ tags: ["model:m4"] })),
        );
        await scanning.clear();
        await store.close();
        await scanning.close();
      }
    } finally {
      await server.kill();
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  for (const [name, run] of Object.entries(runs))
    rows.push({ name, ms: middle(run.ms), removed: run.removed });
  return rows;
}
