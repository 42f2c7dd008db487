/**
 * Shared stores, side by side: RedisStore against raw ioredis GET/SET on the same server and
 * Keyv + @keyv/redis; TieredStore hits against MemoryStore hits. SqliteStore's comparisons are in
 * `sqlite.ts`.
 */
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import KeyvRedis from "@keyv/redis";
import { Redis } from "ioredis";
import Keyv from "keyv";
import { MemoryStore, TieredStore } from "../src/index.js";
import { RedisStore } from "../src/redis.js";
import { SqliteStore } from "../src/sqlite.js";
import { RedisServer } from "../test/helpers/redis-server.js";
import { measureAsync, type Result } from "./measure.js";

const dir = mkdtempSync(join(tmpdir(), "infercache-bench-"));
const small = "s".repeat(100); // 100 B values
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
