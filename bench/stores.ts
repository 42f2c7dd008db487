/**
 * TieredStore hits against MemoryStore hits. SqliteStore's comparisons are in `sqlite.ts`,
 * RedisStore's in `redis.ts`.
 */
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { MemoryStore, TieredStore } from "../src/index.js";
import { SqliteStore } from "../src/sqlite.js";
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
