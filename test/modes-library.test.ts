/**
 * Cache modes in the library: `cache(fn, { mode })`, `new Cache({ mode })`, per call
 * (`fn.cache.with({ mode })`) and per async scope (`withCacheMode`), on MemoryStore,
 * SqliteStore and RedisStore (a real redis-server).
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  Cache,
  CacheMissError,
  type CallStatus,
  cache,
  currentCacheMode,
  MemoryStore,
  type Store,
  withCacheMode,
} from "../src/index.js";
import { RedisStore } from "../src/redis.js";
import { SqliteStore } from "../src/sqlite.js";
import { RedisServer } from "./helpers/redis-server.js";

let redis: RedisServer;
const dir = mkdtempSync(join(tmpdir(), "infercache-modes-"));
const opened: Store[] = [];

beforeAll(async () => {
  redis = await RedisServer.start();
}, 30_000);
afterAll(async () => {
  for (const store of opened) await store.close?.();
  await redis?.kill();
  rmSync(dir, { recursive: true, force: true });
});

let namespaces = 0;
const stores: [string, () => Promise<Store>][] = [
  ["MemoryStore", async () => new MemoryStore()],
  [
    "SqliteStore",
    async () => {
      const store = new SqliteStore({ path: join(dir, `modes-${++namespaces}.db`) });
      opened.push(store);
      return store;
    },
  ],
  [
    "RedisStore",
    async () => {
      const store = new RedisStore({ url: redis.url });
      opened.push(store);
      return store;
    },
  ],
];

describe.each(stores)("modes of cache(fn) on %s", (_name, open) => {
  async function counted() {
    const store = await open();
    let runs = 0;
    const fn = cache(
      async function square(x: number) {
        runs++;
        return { x, square: x * x, run: runs };
      },
      { store, namespace: `fn-${++namespaces}` },
    );
    return { fn, store, runs: () => runs };
  }

  it("read-write (the default) computes a miss, stores it and serves it", async () => {
    const { fn, runs } = await counted();
    expect(await fn(2)).toEqual({ x: 2, square: 4, run: 1 });
    expect(await fn(2)).toEqual({ x: 2, square: 4, run: 1 });
    expect(runs()).toBe(1);
  });

  it("read-only serves hits, computes misses and stores nothing", async () => {
    const { fn, runs } = await counted();
    await fn(3);
    const readOnly = fn.cache.with({ mode: "read-only" });
    const status: CallStatus = {};
    expect(await fn.cache.with({ mode: "read-only", status })(3)).toEqual({
      x: 3,
      square: 9,
      run: 1,
    });
    // On an asynchronous store the first call's flight stays joinable until its write lands.
    expect(["hit", "coalesced"]).toContain(status.source);
    expect(await readOnly(4)).toEqual({ x: 4, square: 16, run: 2 });
    expect(await readOnly(4)).toEqual({ x: 4, square: 16, run: 3 });
    expect(await fn.cache.has(4)).toBe(false);
    expect(runs()).toBe(3);
  });

  it("refresh always computes and stores the new result", async () => {
    const { fn, runs } = await counted();
    await fn(5);
    const refreshed = await fn.cache.with({ mode: "refresh" })(5);
    expect(refreshed.run).toBe(2);
    // What refresh stored is what the next read-write call gets.
    expect((await fn(5)).run).toBe(2);
    expect(runs()).toBe(2);
  });

  it("replay serves hits and fails a miss with CacheMissError naming the key, never computing", async () => {
    const { fn, runs } = await counted();
    await fn(6);
    const replay = fn.cache.with({ mode: "replay" });
    expect((await replay(6)).run).toBe(1);
    const error = await replay(7).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(CacheMissError);
    expect((error as CacheMissError).code).toBe("cache_miss");
    expect((error as CacheMissError).key).toBe(fn.cache.key(7));
    expect((error as Error).message).toContain(fn.cache.key(7));
    expect(runs()).toBe(1);
    expect(await fn.cache.has(7)).toBe(false);
  });

  it("record computes a miss and stores it, so replay finds it", async () => {
    const { fn, runs } = await counted();
    await fn.cache.with({ mode: "record" })(8);
    expect((await fn.cache.with({ mode: "replay" })(8)).run).toBe(1);
    expect(runs()).toBe(1);
  });

  it("withCacheMode scopes a mode over every call inside, and a per-call mode wins", async () => {
    const { fn, runs } = await counted();
    await fn(9);
    await withCacheMode("replay", async () => {
      expect(currentCacheMode()).toBe("replay");
      expect((await fn(9)).run).toBe(1);
      await expect(fn(10)).rejects.toBeInstanceOf(CacheMissError);
      expect((await fn.cache.with({ mode: "read-write" })(10)).run).toBe(2);
    });
    expect(currentCacheMode()).toBeUndefined();
    expect(runs()).toBe(2);
  });

  it("a mode given to cache(fn) is its default", async () => {
    const store = await open();
    let runs = 0;
    const replayOnly = cache(
      async (x: number) => {
        runs++;
        return x;
      },
      { store, namespace: `fn-${++namespaces}`, mode: "replay" },
    );
    await expect(replayOnly(1)).rejects.toBeInstanceOf(CacheMissError);
    expect(await replayOnly.cache.with({ mode: "record" })(1)).toBe(1);
    expect(await replayOnly(1)).toBe(1);
    expect(runs).toBe(1);
  });

  it("generators: replay fails a miss before the generator runs; refresh records again", async () => {
    const store = await open();
    let runs = 0;
    const words = cache(
      async function* words(n: number) {
        runs++;
        for (let i = 0; i < n; i++) yield `${i}:${runs}`;
      },
      { store, namespace: `gen-${++namespaces}` },
    );
    const all = async (iterator: AsyncIterable<string>) => {
      const out: string[] = [];
      for await (const word of iterator) out.push(word);
      return out;
    };
    await expect(all(words.cache.with({ mode: "replay" })(2))).rejects.toBeInstanceOf(
      CacheMissError,
    );
    expect(runs).toBe(0);
    expect(await all(words(2))).toEqual(["0:1", "1:1"]);
    expect(await all(words.cache.with({ mode: "replay" })(2))).toEqual(["0:1", "1:1"]);
    expect(await all(words.cache.with({ mode: "refresh" })(2))).toEqual(["0:2", "1:2"]);
    expect(await all(words(2))).toEqual(["0:2", "1:2"]);
    expect(await all(words.cache.with({ mode: "read-only" })(3))).toEqual(["0:3", "1:3", "2:3"]);
    expect(await words.cache.has(3)).toBe(false);
  });

  it("Cache: get in replay throws on a miss, set in read-only stores nothing, getOrSet follows the mode", async () => {
    const store = await open();
    const manual = new Cache<{ answer: string }>({ store, namespace: `manual-${++namespaces}` });
    await manual.set("a", { answer: "A" });
    await withCacheMode("replay", async () => {
      expect(await manual.get("a")).toEqual({ answer: "A" });
      await expect(manual.get("b")).rejects.toBeInstanceOf(CacheMissError);
      let computed = 0;
      await expect(
        manual.getOrSet("b", () => {
          computed++;
          return { answer: "B" };
        }),
      ).rejects.toBeInstanceOf(CacheMissError);
      expect(computed).toBe(0);
      // Storing is not replay's: set stores nothing.
      expect(await manual.set("b", { answer: "B" })).toBe(false);
    });
    await withCacheMode("read-only", async () => {
      expect(await manual.set("c", { answer: "C" })).toBe(false);
      expect(await manual.getOrSet("c", () => ({ answer: "C" }))).toEqual({ answer: "C" });
    });
    expect(await manual.has("b")).toBe(false);
    expect(await manual.has("c")).toBe(false);
    await withCacheMode("refresh", async () => {
      expect(await manual.get("a")).toBeUndefined();
      expect(await manual.getOrSet("a", () => ({ answer: "A2" }))).toEqual({ answer: "A2" });
    });
    expect(await manual.get("a")).toEqual({ answer: "A2" });
    const replaying = new Cache<{ answer: string }>({
      store,
      namespace: manual.namespace,
      mode: "replay",
    });
    expect(await replaying.get("a")).toEqual({ answer: "A2" });
    await expect(replaying.get("zzz")).rejects.toBeInstanceOf(CacheMissError);
  });
});

describe("modes of a sync function on the in-process store", () => {
  it("stays synchronous: replay throws at once, read-only computes without storing", () => {
    let runs = 0;
    const double = cache((x: number) => {
      runs++;
      return x * 2;
    });
    expect(() => double.cache.with({ mode: "replay" })(1)).toThrow(CacheMissError);
    expect(double.cache.with({ mode: "read-only" })(1)).toBe(2);
    expect(double.cache.with({ mode: "read-only" })(1)).toBe(2);
    expect(runs).toBe(2);
    expect(double(1)).toBe(2);
    expect(double.cache.with({ mode: "replay" })(1)).toBe(2);
    expect(runs).toBe(3);
  });

  it("refresh as a mode is the `refresh: true` call option", () => {
    let runs = 0;
    const count = cache((_x: number) => ++runs);
    expect(count(1)).toBe(1);
    expect(count.cache.with({ mode: "refresh" })(1)).toBe(2);
    expect(count.cache.with({ refresh: true })(1)).toBe(3);
    expect(count(1)).toBe(3);
  });
});

describe("mode validation", () => {
  it("names the option and the allowed values", () => {
    expect(() => cache((x: number) => x, { mode: "replya" as never })).toThrow(
      'Expected `mode` to be one of "read-write", "read-only", "refresh", "replay", "record", got `replya` (string)',
    );
    expect(() => new Cache({ mode: 3 as never })).toThrow("Expected `mode` to be one of");
    expect(() => withCacheMode("nope" as never, () => 1)).toThrow("Expected `mode` to be one of");
    const fn = cache((x: number) => x);
    expect(() => fn.cache.with({ mode: "x" as never })(1)).toThrow("Expected `mode` to be one of");
  });
});
