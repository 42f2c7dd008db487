import { Cluster } from "ioredis";
import { createCluster } from "redis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Cache, cache } from "../src/index.js";
import { RedisStore } from "../src/redis.js";
import { RedisCluster } from "./helpers/redis-cluster.js";
import { runStoreContract } from "./store-contract.js";

let cluster: RedisCluster;
const clients: Cluster[] = [];
const closers: (() => Promise<unknown>)[] = [];
let prefixes = 0;

async function open(): Promise<RedisStore> {
  const client = new Cluster(cluster.ports.map((port) => ({ host: "127.0.0.1", port })));
  clients.push(client);
  const store = new RedisStore({ client, prefix: `c${++prefixes}:`, commandTimeoutMs: 2000 });
  await store.ready(10_000);
  return store;
}

beforeAll(async () => {
  cluster = await RedisCluster.start(3);
}, 60_000);
async function openNodeRedisClient() {
  const client = createCluster({
    rootNodes: cluster.ports.map((port) => ({ url: `redis://127.0.0.1:${port}` })),
  });
  closers.push(async () => client.destroy());
  await client.connect();
  return client;
}

/** The same store through node-redis's createCluster. */
async function openNodeRedis(): Promise<RedisStore> {
  const client = await openNodeRedisClient();
  const store = new RedisStore({ client, prefix: `n${++prefixes}:`, commandTimeoutMs: 2000 });
  await store.ready(10_000);
  return store;
}

afterAll(async () => {
  for (const client of clients) client.disconnect();
  for (const close of closers) await close();
  await cluster?.stop();
});

runStoreContract("RedisStore on a 3-master Redis Cluster", open);
runStoreContract("RedisStore on a 3-master Redis Cluster through node-redis", openNodeRedis);

describe("RedisStore on a 3-master Redis Cluster", () => {
  it("spreads namespaces over the masters and clears across them", async () => {
    const store = await open();
    const namespaces = Array.from({ length: 12 }, (_, i) => `namespace-${i}`);
    for (const namespace of namespaces) {
      await store.set("k", { namespace }, { value: namespace, createdAt: Date.now() });
      await store.set(
        "k",
        { namespace, session: "s" },
        { value: namespace, createdAt: Date.now() },
      );
    }
    const masters = (clients.at(-1) as Cluster).nodes("master");
    const perMaster = await Promise.all(masters.map((node) => node.dbsize()));
    expect(perMaster.filter((n) => n > 0).length).toBeGreaterThan(1);
    expect(await store.clear({ session: "s" })).toBe(12);
    expect(await store.size()).toBe(12);
    expect(await store.clear()).toBe(12);
  });

  it("clears across the masters through node-redis, also when it scans (bookkeeping: scan)", async () => {
    const store = await openNodeRedis();
    const scanning = new RedisStore({
      client: (await openNodeRedisClient()) as never,
      prefix: store.prefix,
      bookkeeping: "scan",
    });
    for (let i = 0; i < 12; i++) {
      await store.set("k", { namespace: `ns-${i}` }, { value: i, createdAt: Date.now() });
      await store.set(
        "k",
        { namespace: `ns-${i}`, session: "s" },
        { value: i, createdAt: Date.now() },
      );
    }
    expect(await scanning.size()).toBe(24);
    expect(await scanning.clear({ session: "s" })).toBe(12);
    expect(await store.size()).toBe(12);
    expect(await scanning.clear()).toBe(12);
    expect(await store.size()).toBe(0);
    await scanning.close();
  });

  it("coalesces identical calls and serves hits through cache(fn) and Cache", async () => {
    const a = await open();
    let calls = 0;
    const fn = cache(
      async (x: number) => {
        calls++;
        await new Promise((resolve) => setTimeout(resolve, 50));
        return x * 2;
      },
      { store: a, namespace: "double" },
    );
    expect(await Promise.all([fn(4), fn(4), fn(4)])).toEqual([8, 8, 8]);
    await new Promise((resolve) => setTimeout(resolve, 20));
    expect(await fn(4)).toBe(8);
    expect(calls).toBe(1);
    const c = new Cache<{ n: number }>({ store: a, namespace: "manual" });
    await c.set("prefix", { n: 1 });
    expect(await c.longestPrefix("prefix and more")).toMatchObject({ key: "prefix" });
  });
});
