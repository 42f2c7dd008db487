/**
 * RedisStore side by side with the raw clients (ioredis, node-redis) and Keyv + @keyv/redis, on
 * one redis-server on loopback started here: get and set, 100 B and 64 KiB values, sequential
 * and 64 in flight, in interleaved rounds (each round runs every contender on every row, in a
 * rotated order). And what a cached call costs when Redis is down (a port with nothing
 * listening, a server that never answers) next to Redis up.
 */
import KeyvRedis from "@keyv/redis";
import { Redis } from "ioredis";
import Keyv from "keyv";
import { createClient } from "redis";
import { cache } from "../src/index.js";
import { RedisStore } from "../src/redis.js";
import { decodeEntry, encodeEntry } from "../src/store/envelope.js";
import { freePort, RedisServer, startSilentServer } from "../test/helpers/redis-server.js";
import { measureAsync } from "./measure.js";

export const SIZES = { "100 B": 100, "64 KiB": 64 * 1024 } as const;
export type SizeName = keyof typeof SIZES;
export type Mode = "sequential" | "64 in flight";
export type Op = "get" | "set";

export interface Row {
  op: Op;
  size: SizeName;
  mode: Mode;
}

export const ROWS: Row[] = (["get", "set"] as const).flatMap((op) =>
  (["100 B", "64 KiB"] as const).flatMap((size) =>
    (["sequential", "64 in flight"] as const).map((mode) => ({ op, size, mode })),
  ),
);

export const rowName = (row: Row): string => `${row.op}, ${row.size}, ${row.mode}`;

export const CONTENDERS = [
  "RedisStore (node-redis)",
  "RedisStore (ioredis)",
  "envelope only",
  "raw node-redis",
  "raw ioredis",
  "Keyv + @keyv/redis",
] as const;
export type ContenderName = (typeof CONTENDERS)[number];

interface Contender {
  name: ContenderName;
  get(key: string): Promise<unknown>;
  set(key: string, value: string): Promise<unknown>;
  close(): Promise<void>;
}

/** Ops per second of each contender on each row: `result[rowName][contender]`. */
export type Round = Record<string, Record<ContenderName, number>>;

const scope = { namespace: "bench" };
const KEYS: Record<SizeName, number> = { "100 B": 1000, "64 KiB": 100 };

async function contenders(url: string): Promise<Contender[]> {
  const storeNr = new RedisStore({ url, commandTimeoutMs: 5000, prefix: "rs-nr:" });
  const ioClient = new Redis(url);
  const storeIo = new RedisStore({ client: ioClient, commandTimeoutMs: 5000, prefix: "rs-io:" });
  await Promise.all([storeNr.ready(), storeIo.ready()]);
  const nr = createClient({ url });
  await nr.connect();
  const bytes = { typeMapping: { 36: Buffer } } as never; // RESP bulk strings as Buffers
  const io = new Redis(url);
  const keyv = new Keyv({ store: new KeyvRedis(url) });
  const now = () => Date.now();
  return [
    {
      name: "RedisStore (node-redis)",
      get: (key) => storeNr.get(key, scope),
      set: (key, value) => storeNr.set(key, scope, { value, createdAt: now() }),
      close: () => storeNr.close(),
    },
    {
      name: "RedisStore (ioredis)",
      get: (key) => storeIo.get(key, scope),
      set: (key, value) => storeIo.set(key, scope, { value, createdAt: now() }),
      close: async () => {
        await storeIo.close();
        ioClient.disconnect();
      },
    },
    {
      // RedisStore's floor: the envelope over node-redis's sendCommand, no index, no breaker.
      name: "envelope only",
      get: async (key) => {
        const found = (await nr.sendCommand(["GET", `env:${key}`], bytes)) as Buffer | null;
        return found === null ? undefined : decodeEntry(found);
      },
      set: (key, value) =>
        nr.sendCommand(["SET", `env:${key}`, encodeEntry({ value, createdAt: now() })]),
      close: async () => {},
    },
    {
      name: "raw node-redis",
      get: (key) => nr.get(`raw-nr:${key}`),
      set: (key, value) => nr.set(`raw-nr:${key}`, value),
      close: async () => nr.destroy(),
    },
    {
      name: "raw ioredis",
      get: (key) => io.get(`raw-io:${key}`),
      set: (key, value) => io.set(`raw-io:${key}`, value),
      close: async () => io.disconnect(),
    },
    {
      name: "Keyv + @keyv/redis",
      get: (key) => keyv.get(key),
      set: (key, value) => keyv.set(key, value),
      close: () => keyv.disconnect(),
    },
  ];
}

async function measure(contender: Contender, row: Row, value: string): Promise<number> {
  const keys = Array.from({ length: KEYS[row.size] }, (_, i) => `${row.size}-${i}`);
  const op =
    row.op === "get"
      ? (i: number) => contender.get(keys[i % keys.length] as string)
      : (i: number) => contender.set(keys[i % keys.length] as string, value);
  const small = row.size === "100 B";
  if (row.mode === "sequential") {
    const result = await measureAsync(rowName(row), op, {
      batch: small ? 500 : 100,
      samples: 6,
      warmup: 1,
    });
    return result.opsPerSec;
  }
  const total = small ? 20_000 : 3000;
  for (let i = 0; i < 256; i++) await op(i); // warm-up
  let next = 0;
  const started = performance.now();
  await Promise.all(
    Array.from({ length: 64 }, async () => {
      while (next < total) await op(next++);
    }),
  );
  return total / ((performance.now() - started) / 1000);
}

/** Runs `rounds` interleaved rounds on a fresh server; one `Round` each. */
export async function storeRounds(rounds: number): Promise<Round[]> {
  const server = await RedisServer.start();
  try {
    const all = await contenders(server.url);
    const values = {
      "100 B": "s".repeat(SIZES["100 B"]),
      "64 KiB": "b".repeat(SIZES["64 KiB"]),
    } as const;
    for (const contender of all) {
      for (const size of ["100 B", "64 KiB"] as const) {
        for (let i = 0; i < KEYS[size]; i++) await contender.set(`${size}-${i}`, values[size]);
      }
    }
    const results: Round[] = [];
    for (let round = 0; round < rounds; round++) {
      const result: Round = {};
      for (const row of ROWS) {
        const line = {} as Record<ContenderName, number>;
        for (let i = 0; i < all.length; i++) {
          const contender = all[(i + round) % all.length] as Contender;
          (globalThis as { gc?: () => void }).gc?.();
          line[contender.name] = await measure(contender, row, values[row.size]);
        }
        result[rowName(row)] = line;
      }
      results.push(result);
    }
    for (const contender of all) await contender.close();
    return results;
  } finally {
    await server.kill();
  }
}

export interface LatencyRow {
  name: string;
  p50Ms: number;
  p90Ms: number;
}

/**
 * Per-call time of `cache(fn, { store })(i)` over `calls` calls one after another, fn a trivial
 * async function (so the time is what the store adds): p50 and p90 in ms.
 */
async function callLatency(name: string, store: RedisStore, calls: number, hits: boolean) {
  const fn = cache(async (x: number) => x, { store, namespace: `latency-${name}` });
  if (hits) for (let i = 0; i < 100; i++) await fn(i);
  const times: number[] = [];
  for (let i = 0; i < calls; i++) {
    const started = performance.now();
    await fn(hits ? i % 100 : i);
    times.push(performance.now() - started);
  }
  times.sort((a, b) => a - b);
  const at = (q: number) => times[Math.min(times.length - 1, Math.floor(q * times.length))] ?? 0;
  return { name, p50Ms: at(0.5), p90Ms: at(0.9) };
}

/** RedisStore up (misses, hits) and down (dead port, silent server): added latency per call. */
export async function downLatency(calls = 2000): Promise<LatencyRow[]> {
  const quiet = { warn() {} };
  const rows: LatencyRow[] = [];
  const server = await RedisServer.start();
  try {
    const up = new RedisStore({ url: server.url, logger: quiet });
    await up.ready();
    rows.push(await callLatency("RedisStore up, miss (get, lock, set)", up, calls, false));
    rows.push(await callLatency("RedisStore up, hit", up, calls, true));
    await up.close();
  } finally {
    await server.kill();
  }
  const dead = new RedisStore({ url: `redis://127.0.0.1:${await freePort()}`, logger: quiet });
  rows.push(await callLatency("RedisStore down: nothing listening", dead, calls, false));
  await dead.close();
  const silent = await startSilentServer();
  const hung = new RedisStore({ url: silent.url, logger: quiet });
  rows.push(await callLatency("RedisStore down: server never answers", hung, calls, false));
  await hung.close();
  await silent.close();
  return rows;
}
