/**
 * Persistent stores, side by side: SqliteStore against the seed's JSON-file cache and Keyv +
 * @keyv/sqlite; TieredStore hits against MemoryStore hits. RedisStore has its own file
 * (bench/redis.ts).
 */
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import KeyvSqlite from "@keyv/sqlite";
import Keyv from "keyv";
import { MemoryStore, TieredStore } from "../src/index.js";
import { SqliteStore } from "../src/sqlite.js";
import { measureAsync, type Result } from "./measure.js";

const dir = mkdtempSync(join(tmpdir(), "infercache-bench-"));
const small = "s".repeat(100); // 100 B values
const large = new Uint8Array(1024 * 1024).fill(7); // 1 MiB values
const scope = { namespace: "bench" };
const now = () => Date.now();

export interface OpsRow {
  name: string;
  opsPerSec: number;
  medianUs: number;
}

const rowOf = (r: Result): OpsRow => ({
  name: r.name,
  opsPerSec: r.opsPerSec,
  medianUs: r.medianNs / 1000,
});

/** The seed's file cache: load the whole JSON file for every lookup, rewrite it on every set. */
class JsonFileCache {
  constructor(readonly path: string) {
    writeFileSync(path, "{}");
  }
  get(key: string): unknown {
    const data = JSON.parse(readFileSync(this.path, "utf8")) as Record<string, unknown>;
    return data[key];
  }
  set(key: string, value: unknown): void {
    const data = JSON.parse(readFileSync(this.path, "utf8")) as Record<string, unknown>;
    data[key] = value;
    writeFileSync(this.path, JSON.stringify(data, null, 2));
  }
}

export async function sqliteBench(): Promise<{ rows: OpsRow[]; json: OpsRow[] }> {
  const rows: OpsRow[] = [];
  const store = new SqliteStore({ path: join(dir, "bench.db") });
  const keys = Array.from({ length: 10_000 }, (_, i) => `key-${i}`);
  for (const key of keys) await store.set(key, scope, { value: small, createdAt: now() });
  let n = 0;
  rows.push(
    rowOf(
      await measureAsync(
        "SqliteStore get, 100 B",
        (i) => store.get(keys[i % 10_000] as string, scope),
        { batch: 2000, samples: 15 },
      ),
    ),
  );
  rows.push(
    rowOf(
      await measureAsync(
        "SqliteStore set, 100 B",
        () => store.set(`new-${n++}`, scope, { value: small, createdAt: now() }),
        {
          batch: 500,
          samples: 15,
          warmup: 2,
        },
      ),
    ),
  );
  for (let i = 0; i < 20; i++)
    await store.set(`large-${i}`, scope, { value: large, createdAt: now() });
  rows.push(
    rowOf(
      await measureAsync("SqliteStore get, 1 MiB", (i) => store.get(`large-${i % 20}`, scope), {
        batch: 20,
        samples: 10,
        warmup: 2,
      }),
    ),
  );
  rows.push(
    rowOf(
      await measureAsync(
        "SqliteStore set, 1 MiB",
        (i) => store.set(`large-${i % 20}`, scope, { value: large, createdAt: now() }),
        {
          batch: 20,
          samples: 10,
          warmup: 2,
        },
      ),
    ),
  );
  await store.close();

  const keyv = new Keyv({ store: new KeyvSqlite(`sqlite://${join(dir, "keyv.sqlite")}`) });
  for (const key of keys.slice(0, 2000)) await keyv.set(key, small);
  rows.push(
    rowOf(
      await measureAsync(
        "Keyv + @keyv/sqlite get, 100 B",
        (i) => keyv.get(keys[i % 2000] as string),
        { batch: 500, samples: 10, warmup: 2 },
      ),
    ),
  );
  rows.push(
    rowOf(
      await measureAsync("Keyv + @keyv/sqlite set, 100 B", () => keyv.set(`new-${n++}`, small), {
        batch: 100,
        samples: 10,
        warmup: 1,
      }),
    ),
  );
  await keyv.disconnect();

  const json: OpsRow[] = [];
  for (const entries of [1000, 10_000]) {
    const file = new JsonFileCache(join(dir, `cache-${entries}.json`));
    const data: Record<string, string> = {};
    for (let i = 0; i < entries; i++) data[`key-${i}`] = small;
    writeFileSync(file.path, JSON.stringify(data, null, 2));
    json.push(
      rowOf(
        await measureAsync(
          `JSON file (seed), ${entries} entries, get`,
          async (i) => file.get(`key-${i % entries}`),
          { batch: 10, samples: 5, warmup: 1 },
        ),
      ),
    );
    json.push(
      rowOf(
        await measureAsync(
          `JSON file (seed), ${entries} entries, set`,
          async (i) => file.set(`extra-${i}`, small),
          { batch: 5, samples: 5, warmup: 1 },
        ),
      ),
    );
  }
  return { rows, json };
}

export async function tieredBench(): Promise<OpsRow[]> {
  const memory = new MemoryStore({ maxSize: 2000 });
  const tiered = new TieredStore({
    store: new SqliteStore({ path: join(dir, "tiered.db") }),
    memory: { maxSize: 2000 },
  });
  const keys = Array.from({ length: 1000 }, (_, i) => `key-${i}`);
  for (const key of keys) {
    await memory.set(key, scope, { value: small, createdAt: now() });
    await tiered.set(key, scope, { value: small, createdAt: now() });
  }
  const rows = [
    rowOf(
      await measureAsync("MemoryStore get (hit)", (i) =>
        memory.get(keys[i % 1000] as string, scope),
      ),
    ),
    rowOf(
      await measureAsync("TieredStore get (memory hit)", (i) =>
        tiered.get(keys[i % 1000] as string, scope),
      ),
    ),
  ];
  await tiered.close();
  return rows;
}
