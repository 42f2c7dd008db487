/**
 * SqliteStore side by side, in one run: raw better-sqlite3 on the same pragmas (a bare SELECT of a
 * blob by key, a bare upsert), lmdb (`open`, get/put of the same values) and Keyv +
 * @keyv/sqlite, at 100 B and 64 KiB; the seed's JSON-file cache; writes while another process
 * holds the write lock (latency, and the event loop's longest stall); and ending one session
 * among 300k rows, with the session index and without it (schema 1's plan).
 */
import { copyFileSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { monitorEventLoopDelay } from "node:perf_hooks";
import KeyvSqlite from "@keyv/sqlite";
import Database from "better-sqlite3";
import Keyv from "keyv";
import { open as openLmdb } from "lmdb";
import { SqliteStore } from "../src/sqlite.js";
import { encodeEntry } from "../src/store/envelope.js";
import { holdWriteLock } from "../test/helpers/sqlite-lock.js";
import { measureAsync, type Result } from "./measure.js";

const dir = mkdtempSync(join(tmpdir(), "infercache-bench-sqlite-"));
const scope = { namespace: "bench" };
const now = () => Date.now();

export interface OpsRow {
  name: string;
  opsPerSec: number;
  medianUs: number;
  /** CPU time of this process per call, µs (NaN where not measured). */
  cpuUs: number;
}

const rowOf = (r: Result, cpuUs = Number.NaN): OpsRow => ({
  name: r.name,
  opsPerSec: r.opsPerSec,
  medianUs: r.medianNs / 1000,
  cpuUs,
});

/**
 * `measureAsync`, plus this process's CPU time per call over all of its batches (user + system,
 * every thread, GC included): on a shared machine wall time also counts the turns other
 * processes take.
 */
async function timed(
  name: string,
  fn: (i: number) => Promise<unknown>,
  options: { batch: number; samples: number; warmup: number },
): Promise<OpsRow> {
  // Each row starts on a clean heap, so no row pays for another contender's garbage.
  (globalThis as { gc?: () => void }).gc?.();
  await new Promise((resolve) => setImmediate(resolve));
  const before = process.cpuUsage();
  const result = await measureAsync(name, fn, options);
  const cpu = process.cpuUsage(before);
  const calls = options.batch * (options.samples + options.warmup);
  return rowOf(result, (cpu.user + cpu.system) / calls);
}

export const CONTENDERS = [
  "raw better-sqlite3",
  "SqliteStore",
  "lmdb",
  "Keyv + @keyv/sqlite",
] as const;
export type Contender = (typeof CONTENDERS)[number];

interface Size {
  label: string;
  keys: number;
  /** The `n`th value written: every write differs from the one it replaces (see below). */
  value: (n: number) => string | Buffer;
  get: { batch: number; samples: number };
  set: { batch: number; samples: number };
}

// Writes must change the row: SQLite skips writing a page whose bytes an update leaves as they
// were, so replacing a value with the same bytes costs a fraction of a real write (a "bare
// upsert" of a constant value measured 5 µs of CPU, of a changing one 11.5 µs). Seven 64 KiB
// values in turn: the key written `keys` writes earlier got another one (neither 10,000 nor
// 500 is a multiple of 7).
const LARGE = Array.from({ length: 7 }, (_, i) => Buffer.alloc(64 * 1024, i + 1));
const SMALL = "s".repeat(92);

const SIZES: Size[] = [
  {
    label: "100 B",
    keys: 10_000,
    value: (n) => `${SMALL}${String(n % 100_000_000).padStart(8, "0")}`,
    get: { batch: 2000, samples: 15 },
    set: { batch: 500, samples: 15 },
  },
  {
    label: "64 KiB",
    keys: 500,
    value: (n) => LARGE[n % LARGE.length] as Buffer,
    get: { batch: 100, samples: 12 },
    set: { batch: 50, samples: 12 },
  },
];

interface Contestant {
  get(key: string): Promise<unknown>;
  /** Writes the `n`th value under `key`. */
  set(key: string, n: number): Promise<unknown>;
  close(): Promise<void>;
}

/** The four contenders for one value size, filled with `size.keys` entries. */
async function contestants(size: Size): Promise<Record<Contender, Contestant>> {
  const tag = size.label.replace(/\W/g, "");
  const raw = new Database(join(dir, `raw-${tag}.db`));
  // The pragmas SqliteStore uses, so the ratio is the store's own work.
  raw.pragma("journal_mode = WAL");
  raw.pragma("synchronous = NORMAL");
  raw.pragma("wal_autocheckpoint = 10000");
  raw.exec("CREATE TABLE IF NOT EXISTS kv (key TEXT PRIMARY KEY, value BLOB NOT NULL)");
  const select = raw.prepare("SELECT value FROM kv WHERE key = ?").pluck();
  const upsert = raw.prepare(
    "INSERT INTO kv (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
  );
  const store = new SqliteStore({ path: join(dir, `store-${tag}.db`) });
  // No fsync per commit, like SQLite's WAL with synchronous = NORMAL (lmdb's default syncs each).
  const lmdb = openLmdb<string | Buffer, string>({ path: join(dir, `lmdb-${tag}`), noSync: true });
  const keyv = new Keyv({ store: new KeyvSqlite(`sqlite://${join(dir, `keyv-${tag}.sqlite`)}`) });
  const { value } = size;
  const bytes = (n: number) => {
    const v = value(n);
    return typeof v === "string" ? Buffer.from(v) : v;
  };
  const all: Record<Contender, Contestant> = {
    "raw better-sqlite3": {
      get: async (key) => select.get(key),
      set: async (key, n) => upsert.run(key, bytes(n)),
      close: async () => {
        raw.close();
      },
    },
    SqliteStore: {
      get: (key) => store.get(key, scope),
      set: (key, n) => store.set(key, scope, { value: value(n), createdAt: now() }),
      close: () => store.close(),
    },
    lmdb: {
      get: async (key) => lmdb.get(key),
      set: (key, n) => lmdb.put(key, value(n)),
      close: () => lmdb.close(),
    },
    "Keyv + @keyv/sqlite": {
      get: (key) => keyv.get(key),
      set: (key, n) => keyv.set(key, value(n)),
      close: () => keyv.disconnect(),
    },
  };
  for (const contestant of Object.values(all)) {
    for (let i = 0; i < size.keys; i++) await contestant.set(`key-${i}`, i);
  }
  return all;
}

export interface StoreRound {
  /** `${contender} ${get|set}, ${size}` → result */
  rows: Map<string, OpsRow>;
}

export const rowName = (contender: Contender, op: "get" | "set", size: string): string =>
  `${contender} ${op}, ${size}`;

/**
 * Get and set at both sizes for every contender, `rounds` times interleaved (each round measures
 * every row once), so a noisy minute hits all contenders alike.
 */
export async function storeRounds(rounds: number): Promise<StoreRound[]> {
  const prepared = await Promise.all(
    SIZES.map(async (size) => ({ size, all: await contestants(size) })),
  );
  const results: StoreRound[] = [];
  const written = new Map<string, number>();
  for (let round = 0; round < rounds; round++) {
    const rows = new Map<string, OpsRow>();
    for (const { size, all } of prepared) {
      for (const contender of CONTENDERS) {
        const c = all[contender];
        const keys = size.keys;
        rows.set(
          rowName(contender, "get", size.label),
          await timed(rowName(contender, "get", size.label), (i) => c.get(`key-${i % keys}`), {
            ...size.get,
            warmup: 2,
          }),
        );
        // Replaces existing keys with new values, as a cache refreshing its entries does; the
        // count goes on across rounds, so no write repeats the value it replaces.
        const name = rowName(contender, "set", size.label);
        let n = written.get(name) ?? keys;
        // Keyv's SQLite adapter syncs every write to disk (milliseconds): fewer of them.
        const options = contender === "Keyv + @keyv/sqlite" ? { batch: 10, samples: 5 } : size.set;
        const set = await timed(
          name,
          () => {
            const at = n++;
            return c.set(`key-${(at * 7) % keys}`, at);
          },
          { ...options, warmup: 1 },
        );
        written.set(name, n);
        rows.set(name, set);
      }
    }
    results.push({ rows });
  }
  for (const { all } of prepared) for (const c of Object.values(all)) await c.close();
  return results;
}

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

export async function jsonFileRows(): Promise<OpsRow[]> {
  const small = "s".repeat(100);
  const rows: OpsRow[] = [];
  for (const entries of [1000, 10_000]) {
    const file = new JsonFileCache(join(dir, `cache-${entries}.json`));
    const data: Record<string, string> = {};
    for (let i = 0; i < entries; i++) data[`key-${i}`] = small;
    writeFileSync(file.path, JSON.stringify(data, null, 2));
    rows.push(
      rowOf(
        await measureAsync(
          `JSON file (seed), ${entries} entries, get`,
          async (i) => file.get(`key-${i % entries}`),
          { batch: 10, samples: 5, warmup: 1 },
        ),
      ),
      rowOf(
        await measureAsync(
          `JSON file (seed), ${entries} entries, set`,
          async (i) => file.set(`extra-${i}`, small),
          { batch: 5, samples: 5, warmup: 1 },
        ),
      ),
    );
  }
  return rows;
}

export interface LockedWrites {
  holdMs: number;
  busyTimeoutMs: number;
  writes: number;
  stored: number;
  refused: number;
  /** Latency of each write, from the call to its promise settling, ms. */
  medianMs: number;
  maxMs: number;
  /** The event loop's longest stall while the lock was held, ms. */
  stallMs: number;
}

/**
 * Another process holds the write lock for `holdMs` while this one writes a 100 B entry every
 * 10 ms. With `busyTimeoutMs` above `holdMs` the writes wait and land once it is released; below
 * it they are refused when their deadline passes.
 */
export async function lockedWrites(holdMs: number, busyTimeoutMs: number): Promise<LockedWrites> {
  const path = join(dir, `locked-${holdMs}-${busyTimeoutMs}.db`);
  const store = new SqliteStore({ path, busyTimeoutMs });
  await store.set("warm", scope, { value: "x", createdAt: now() });
  const lock = await holdWriteLock(path);
  const delay = monitorEventLoopDelay({ resolution: 5 });
  delay.enable();
  await new Promise((resolve) => setTimeout(resolve, 20)); // the histogram's first turns
  const latencies: number[] = [];
  let stored = 0;
  let refused = 0;
  const writes: Promise<void>[] = [];
  const started = performance.now();
  for (let i = 0; performance.now() - started < holdMs; i++) {
    const at = performance.now();
    writes.push(
      store.set(`k${i}`, scope, { value: "v".repeat(100), createdAt: now() }).then(
        () => {
          stored++;
          latencies.push(performance.now() - at);
        },
        () => {
          refused++;
          latencies.push(performance.now() - at);
        },
      ),
    );
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  await lock.release();
  await Promise.all(writes);
  delay.disable();
  await store.close();
  latencies.sort((a, b) => a - b);
  return {
    holdMs,
    busyTimeoutMs,
    writes: writes.length,
    stored,
    refused,
    medianMs: latencies[Math.floor(latencies.length / 2)] ?? Number.NaN,
    maxMs: latencies[latencies.length - 1] ?? Number.NaN,
    stallMs: delay.max / 1e6,
  };
}

export interface SessionClear {
  rows: number;
  sessionRows: number;
  withIndexMs: number;
  withoutIndexMs: number;
  sizeWithIndexMs: number;
}

/**
 * 300k rows (290k shared in 10 namespaces, 1,000 sessions of 10 rows), then `clear({ session })`
 * (what the gateway runs when a session ends) for 20 sessions: the median, with the session
 * index, and on a copy of the file without it (schema 1's plan: a scan of every row).
 */
export async function sessionClear(): Promise<SessionClear> {
  const path = join(dir, "sessions.db");
  await new SqliteStore({ path }).close();
  const value = encodeEntry({ value: "s".repeat(100), createdAt: now() });
  const db = new Database(path);
  const insert = db.prepare(
    "INSERT INTO entries (namespace, session, key, value, bytes, created_at, expires_at, accessed_at) VALUES (?, ?, ?, ?, ?, ?, NULL, ?)",
  );
  const sessions = 1000;
  const perSession = 10;
  const shared = 290_000;
  db.transaction(() => {
    for (let i = 0; i < shared; i++) {
      insert.run(`ns-${i % 10}`, "", `key-${i}`, value, 200, 1, i);
    }
    for (let s = 0; s < sessions; s++) {
      for (let i = 0; i < perSession; i++) {
        insert.run(`ns-${i % 10}`, `session-${s}`, `key-${i}`, value, 200, 1, shared + i);
      }
    }
  })();
  db.pragma("wal_checkpoint(TRUNCATE)");
  db.close();
  const copy = join(dir, "sessions-without-index.db");
  copyFileSync(path, copy);
  const withoutIndex = new Database(copy);
  withoutIndex.exec("DROP INDEX entries_session");
  withoutIndex.close();

  const timeClears = async (file: string): Promise<{ clearMs: number; sizeMs: number }> => {
    const store = new SqliteStore({ path: file });
    const clears: number[] = [];
    const sizes: number[] = [];
    for (let s = 0; s < 20; s++) {
      let at = performance.now();
      await store.size({ session: `session-${s * 37}` });
      sizes.push(performance.now() - at);
      at = performance.now();
      const removed = await store.clear({ session: `session-${s * 37}` });
      clears.push(performance.now() - at);
      if (removed !== perSession)
        throw new Error(`cleared ${removed} rows, expected ${perSession}`);
    }
    await store.close();
    const median = (xs: number[]) => xs.sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? 0;
    return { clearMs: median(clears), sizeMs: median(sizes) };
  };
  const indexed = await timeClears(path);
  const scanned = await timeClears(copy);
  return {
    rows: shared + sessions * perSession,
    sessionRows: perSession,
    withIndexMs: indexed.clearMs,
    withoutIndexMs: scanned.clearMs,
    sizeWithIndexMs: indexed.sizeMs,
  };
}
