/**
 * Persistent and shared stores, side by side: SqliteStore against the seed's JSON-file cache and
 * Keyv + @keyv/sqlite; RedisStore against raw ioredis GET/SET on the same server and Keyv +
 * @keyv/redis; TieredStore hits against MemoryStore hits.
 */
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import KeyvRedis from "@keyv/redis";
import KeyvSqlite from "@keyv/sqlite";
import { Redis } from "ioredis";
import Keyv from "keyv";
import { MemoryStore, TieredStore } from "../src/index.js";
import { RedisStore } from "../src/redis.js";
import { SqliteStore } from "../src/sqlite.js";
import { RedisServer } from "../test/helpers/redis-server.js";
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

export async function redisBench(): Promise<OpsRow[]> {
  const server = await RedisServer.start();
  const rows: OpsRow[] = [];
  try {
    const raw = new Redis(server.url);
    const store = new RedisStore({ url: server.url, commandTimeoutMs: 2000 });
    await store.ready();
    const keyv = new Keyv({ store: new KeyvRedis(server.url) });
    const keys = Array.from({ length: 1000 }, (_, i) => `key-${i}`);
    for (const key of keys) {
      await raw.set(`raw:${key}`, small);
      await store.set(key, scope, { value: small, createdAt: now() });
      await keyv.set(key, small);
    }
    const opts = { batch: 1000, samples: 12, warmup: 2 };
    rows.push(
      rowOf(
        await measureAsync("raw ioredis GET, 100 B", (i) => raw.get(`raw:${keys[i % 1000]}`), opts),
      ),
    );
    rows.push(
      rowOf(
        await measureAsync(
          "RedisStore get, 100 B",
          (i) => store.get(keys[i % 1000] as string, scope),
          opts,
        ),
      ),
    );
    rows.push(
      rowOf(
        await measureAsync(
          "Keyv + @keyv/redis get, 100 B",
          (i) => keyv.get(keys[i % 1000] as string),
          opts,
        ),
      ),
    );
    rows.push(
      rowOf(
        await measureAsync(
          "raw ioredis SET, 100 B",
          (i) => raw.set(`raw:${keys[i % 1000]}`, small),
          opts,
        ),
      ),
    );
    rows.push(
      rowOf(
        await measureAsync(
          "RedisStore set, 100 B",
          (i) => store.set(keys[i % 1000] as string, scope, { value: small, createdAt: now() }),
          opts,
        ),
      ),
    );
    rows.push(
      rowOf(
        await measureAsync(
          "Keyv + @keyv/redis set, 100 B",
          (i) => keyv.set(keys[i % 1000] as string, small),
          opts,
        ),
      ),
    );
    // Throughput with 64 requests in flight (what a busy server does).
    const inFlight = async (label: string, op: (i: number) => Promise<unknown>) => {
      const total = 20_000;
      const started = performance.now();
      let next = 0;
      await Promise.all(
        Array.from({ length: 64 }, async () => {
          while (next < total) await op(next++);
        }),
      );
      const seconds = (performance.now() - started) / 1000;
      rows.push({
        name: `${label}, 64 in flight`,
        opsPerSec: total / seconds,
        medianUs: Number.NaN,
      });
    };
    await inFlight("raw ioredis GET", (i) => raw.get(`raw:${keys[i % 1000]}`));
    await inFlight("RedisStore get", (i) => store.get(keys[i % 1000] as string, scope));
    await inFlight("Keyv + @keyv/redis get", (i) => keyv.get(keys[i % 1000] as string));
    raw.disconnect();
    await store.close();
    await keyv.disconnect();
  } finally {
    await server.kill();
  }
  return rows;
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
