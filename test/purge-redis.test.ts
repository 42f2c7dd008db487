/**
 * RedisStore's purge indexes on a real redis-server: tag and age purges go through
 * `{ns}:t:<tag>` and `{ns}:c` (never a SCAN), their keys live as long as their longest-lived
 * entry (so they stay bounded), stale members are dropped by the purge that meets them, the scan
 * path (indexes Redis may evict) finds the same entries, and a TieredStore purge reaches other
 * processes' memory tiers.
 */
import { spawn } from "node:child_process";
import { createInterface } from "node:readline";
import { Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { TieredStore } from "../src/index.js";
import { RedisStore, type RedisStoreBaseOptions } from "../src/redis.js";
import { RedisServer } from "./helpers/redis-server.js";
import { until } from "./helpers/until.js";

let server: RedisServer;
let redis: Redis;
let prefixes = 0;
const stores: { close(): Promise<void> }[] = [];

async function open(options: RedisStoreBaseOptions = {}): Promise<RedisStore> {
  const store = new RedisStore({ url: server.url, prefix: `p${++prefixes}:`, ...options });
  stores.push(store);
  await store.ready();
  return store;
}

beforeAll(async () => {
  server = await RedisServer.start();
  redis = new Redis(server.url);
});
afterAll(async () => {
  for (const store of stores) await store.close();
  redis.disconnect();
  await server?.kill();
});

const a = { namespace: "a" };
const entry = (value: unknown, extra: object = {}) => ({ value, createdAt: Date.now(), ...extra });

describe("RedisStore purge indexes", () => {
  it("purges by tag and by age without SCAN, KEYS or reading entries", async () => {
    const store = await open();
    for (let i = 0; i < 50; i++) {
      await store.set(`k${i}`, a, entry(i, { tags: i < 10 ? ["few"] : ["many"], createdAt: i }));
    }
    const monitor = await redis.duplicate();
    const commands: string[] = [];
    await monitor.monitor().then((m) => {
      m.on("monitor", (_time: string, args: string[]) => commands.push(String(args[0])));
      stores.push({ close: async () => m.disconnect() });
    });
    expect(await store.purge({ tags: ["few"] })).toBe(10);
    expect(await store.purge({ olderThan: 30 })).toBe(20);
    expect(await store.size()).toBe(20);
    // A marker after the purge: once the monitor has seen it, it has seen the purge's commands.
    await redis.echo("purge-done");
    await until(() => commands.some((c) => c.toUpperCase() === "ECHO"), "the monitor to catch up");
    const upper = commands.map((c) => c.toUpperCase());
    expect(upper).not.toContain("SCAN");
    expect(upper).not.toContain("KEYS");
    expect(upper).not.toContain("GET");
    expect(upper).not.toContain("MGET");
    expect(upper).toContain("ZMSCORE");
    monitor.disconnect();
  });

  it("keeps each index key's expiry at its longest-lived entry, persistent once one has none", async () => {
    const store = await open();
    const prefix = store.prefix;
    const tagKey = `${prefix}{1:a}:t:short`;
    const createdKey = `${prefix}{1:a}:c`;
    await store.set("x", a, entry(1, { tags: ["short"], expiresAt: Date.now() + 5_000 }));
    const first = await redis.pttl(tagKey);
    expect(first).toBeGreaterThan(5_000);
    await store.set("y", a, entry(2, { tags: ["short"], expiresAt: Date.now() + 50_000 }));
    expect(await redis.pttl(tagKey)).toBeGreaterThan(50_000);
    // A shorter-lived entry never shortens the index's life.
    await store.set("z", a, entry(3, { tags: ["short"], expiresAt: Date.now() + 1_000 }));
    expect(await redis.pttl(tagKey)).toBeGreaterThan(50_000);
    await store.set("forever", a, entry(4, { tags: ["short"] }));
    expect(await redis.pttl(tagKey)).toBe(-1);
    expect(await redis.pttl(createdKey)).toBe(-1);
    await store.set("later", a, entry(5, { tags: ["short"], expiresAt: Date.now() + 1_000 }));
    expect(await redis.pttl(tagKey)).toBe(-1);
    // A purge of the tag empties its index: Redis deletes the key.
    expect(await store.purge({ tags: ["short"] })).toBe(5);
    expect(await redis.exists(tagKey)).toBe(0);
  });

  it("drops the stale members it meets: entries deleted, expired or retagged since", async () => {
    const store = await open();
    const tagKey = `${store.prefix}{1:a}:t:t`;
    const now = Date.now();
    await store.set("gone", a, entry(1, { tags: ["t"] }));
    await store.set("expiring", a, entry(2, { tags: ["t"], expiresAt: Date.now() + 30 }));
    await store.set("retagged", a, entry(3, { tags: ["t"], createdAt: now - 10 }));
    await store.set("retagged", a, entry(4, { tags: ["u"], createdAt: now }));
    await store.set("kept", a, entry(5, { tags: ["t"] }));
    await store.delete("gone", a);
    await until(
      async () => (await redis.exists(`${store.prefix}{1:a}:e:-:expiring`)) === 0,
      "expiry",
    );
    expect(await redis.zcard(tagKey)).toBe(4);
    expect(await store.purge({ tags: ["t"], olderThan: 1 })).toBe(0);
    expect(await store.purge({ tags: ["t"] })).toBe(1);
    expect(await redis.exists(tagKey)).toBe(0);
    expect((await store.get("retagged", a))?.value).toBe(4);
  });

  it("finds the same entries by scanning when Redis may evict the indexes", async () => {
    const writer = await open();
    const scanning = new RedisStore({
      url: server.url,
      prefix: writer.prefix,
      bookkeeping: "scan",
    });
    stores.push(scanning);
    await scanning.ready();
    const now = Date.now();
    await writer.set("t1", a, entry(1, { tags: ["t"], createdAt: now - 100 }));
    await writer.set("t2", { namespace: "b", session: "s" }, entry(2, { tags: ["t"] }));
    await writer.set("old", a, entry(3, { createdAt: now - 100 }));
    await writer.set("new", a, entry(4));
    // The indexes are gone, as after an allkeys-* eviction.
    await redis.del(
      `${writer.prefix}{1:a}:t:t`,
      `${writer.prefix}{1:a}:c`,
      `${writer.prefix}{1:b}:t:t`,
    );
    expect(await scanning.purge({ tags: ["t"] })).toBe(2);
    expect(await scanning.purge({ olderThan: now - 50 })).toBe(1);
    expect((await writer.get("new", a))?.value).toBe(4);
  });

  it("a TieredStore purge drops the entries from other processes' memory tiers", async () => {
    const prefix = `tiered${++prefixes}:`;
    const one = new TieredStore({ store: new RedisStore({ url: server.url, prefix }) });
    const two = new TieredStore({ store: new RedisStore({ url: server.url, prefix }) });
    stores.push(one, two);
    await Promise.all([one.ready(), two.ready()]);
    await one.set("k", a, entry("tagged", { tags: ["t"] }));
    await one.set("other", a, entry("untagged"));
    expect((await two.get("k", a))?.value).toBe("tagged");
    await two.get("other", a);
    expect(two.memory.peekSync("k", a)).toBeDefined();
    expect(await one.purge({ tags: ["t"] })).toBe(1);
    await until(() => two.memory.peekSync("k", a) === undefined, "the other tier to drop k");
    expect(two.memory.peekSync("other", a)?.value).toBe("untagged");
    expect(await two.get("k", a)).toBeUndefined();
  });

  it("a TieredStore purge drops the entries from another process's memory tier", async () => {
    const prefix = `child${++prefixes}:`;
    const here = new TieredStore({ store: new RedisStore({ url: server.url, prefix }) });
    stores.push(here);
    await here.ready();
    await here.set("k", a, entry("tagged", { tags: ["t"] }));
    await here.set("other", a, entry("untagged"));
    const child = spawn(
      process.execPath,
      ["--import", "tsx", "test/helpers/tiered-purge-worker.ts", server.url, prefix, "k", "other"],
      { stdio: ["pipe", "pipe", "inherit"] },
    );
    const lines = createInterface({ input: child.stdout })[Symbol.asyncIterator]();
    const next = async () => String((await lines.next()).value);
    try {
      expect(await next()).toBe("ready");
      child.stdin.write("check\n");
      expect(JSON.parse(await next())).toEqual(["k", "other"]);
      expect(await here.purge({ tags: ["t"] })).toBe(1);
      let held: string[] = [];
      await until(async () => {
        child.stdin.write("check\n");
        held = JSON.parse(await next()) as string[];
        return !held.includes("k");
      }, "the child's memory tier to drop k");
      expect(held).toEqual(["other"]);
    } finally {
      child.stdin.end();
      await new Promise((resolve) => child.once("exit", resolve));
    }
  }, 60_000);
});
