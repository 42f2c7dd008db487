/**
 * RedisStore on a Redis that evicts any key when full (`maxmemory-policy allkeys-lru`): Redis may
 * evict the store's index and session/namespace sets along with entries, and clears, `size()`
 * and listings must still find every entry that Redis kept. Ground truth is a raw SCAN of the
 * server's keys. A real redis-server with `--maxmemory 2mb`, filled well past the limit.
 */
import { createClient } from "redis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { RedisStore } from "../src/redis.js";
import { RedisServer } from "./helpers/redis-server.js";

let server: RedisServer;
let raw: ReturnType<typeof createClient>;
beforeAll(async () => {
  server = await RedisServer.start(["--maxmemory", "2mb", "--maxmemory-policy", "allkeys-lru"]);
  raw = createClient({ url: server.url });
  await raw.connect();
});
afterAll(async () => {
  raw?.destroy();
  await server?.kill();
});

/** The entry keys Redis holds under `pattern`, by a raw SCAN. */
async function entryKeys(pattern: string): Promise<string[]> {
  const keys = new Set<string>();
  for await (const page of raw.scanIterator({ MATCH: pattern, COUNT: 1000 })) {
    for (const key of page) keys.add(key);
  }
  return [...keys];
}

/** How many entries under `pattern` Redis kept while it evicted their index member. */
async function unindexed(pattern: string): Promise<number> {
  let count = 0;
  for (const key of await entryKeys(pattern)) {
    // <prefix>{ns}:e:<session>:<key> is indexed in <prefix>{ns}:i:<session> (test keys have no ':')
    const cut = key.lastIndexOf(":");
    const index = key.slice(0, cut).replace(":e:", ":i:");
    if ((await raw.zScore(index, key.slice(cut + 1))) === null) count++;
  }
  return count;
}

/** Writes far more than 2 MiB over many sessions, so Redis has to evict. */
async function fill(store: RedisStore, namespace: string): Promise<void> {
  const value = "v".repeat(2000);
  for (let i = 0; i < 4000; i++) {
    const session = i % 4 === 0 ? undefined : `user-${i % 200}`;
    await store.set(`key-${i}`, { namespace, session }, { value, createdAt: Date.now() });
  }
}

describe("RedisStore under maxmemory-policy allkeys-lru", () => {
  it("detects the policy and says so once, with the fix", async () => {
    const logs: string[] = [];
    const store = new RedisStore({
      url: server.url,
      prefix: "detect:",
      logger: { warn: (message) => logs.push(message) },
    });
    await store.ready();
    await store.size();
    expect(logs).toHaveLength(1);
    expect(logs[0]).toMatch(/allkeys-lru/);
    expect(logs[0]).toMatch(/volatile-lru/);
    expect(logs[0]).toMatch(/bookkeeping: "scan"/);
    await store.close();
  });

  it("counts and clears exactly what Redis kept: a session, a namespace, everything", async () => {
    const store = new RedisStore({ url: server.url, prefix: "lru:", logger: { warn() {} } });
    await store.ready();
    await fill(store, "a");
    await fill(store, "b");
    const evicted = (await raw.info("stats")).match(/evicted_keys:(\d+)/)?.[1];
    expect(Number(evicted)).toBeGreaterThan(0);
    // Freeze what eviction did, so the counts below are not a race with Redis evicting more.
    await raw.configSet("maxmemory", "0");
    expect(await unindexed("lru:*:e:*")).toBeGreaterThan(0);

    const kept = await entryKeys("lru:*:e:*");
    expect(kept.length).toBeGreaterThan(0);
    expect(await store.size()).toBe(kept.length);
    const inA = await entryKeys("lru:{1:a}:e:*");
    expect(await store.size({ namespace: "a" })).toBe(inA.length);

    const session = "s6:user-7";
    const ofSession = async () =>
      (await entryKeys("lru:*:e:*")).filter((key) => key.includes(`:e:${session}:`));
    const before = (await ofSession()).length;
    expect(await store.clear({ session: "user-7" })).toBe(before);
    expect(await ofSession()).toEqual([]);

    const inB = await entryKeys("lru:{1:b}:e:*");
    expect(await store.clear({ namespace: "b" })).toBe(inB.length);
    expect(await entryKeys("lru:{1:b}:e:*")).toEqual([]);

    const left = await entryKeys("lru:*:e:*");
    expect(await store.clear()).toBe(left.length);
    expect(await entryKeys("lru:*:e:*")).toEqual([]);
    expect(await store.size()).toBe(0);
    await store.close();
  }, 60_000);

  it("lists a scope's entries even when Redis evicted its index", async () => {
    const store = new RedisStore({ url: server.url, prefix: "list:", logger: { warn() {} } });
    await store.ready();
    const scope = { namespace: "n", session: "s" };
    for (let i = 0; i < 20; i++) {
      await store.set(`k${i}`, scope, { value: i, createdAt: Date.now() });
    }
    // What allkeys-lru does to a cold index: it is gone, the entries are not.
    await raw.del("list:{1:n}:i:s1:s");
    const keys: string[] = [];
    for await (const [key] of store.entries(scope)) keys.push(key);
    expect(keys.sort()).toEqual(Array.from({ length: 20 }, (_, i) => `k${i}`).sort());
    expect(await store.clear({ namespace: "n", session: "s" })).toBe(20);
    await store.close();
  });
});
