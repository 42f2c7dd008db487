import { execFile } from "node:child_process";
import { promisify } from "node:util";
import { Redis } from "ioredis";
import { createClient } from "redis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Cache, cache } from "../src/index.js";
import { RedisStore, type RedisStoreBaseOptions } from "../src/redis.js";
import { RedisServer } from "./helpers/redis-server.js";
import { runStoreContract } from "./store-contract.js";

const run = promisify(execFile);
let server: RedisServer;
let prefixes = 0;
const stores: RedisStore[] = [];
const clients: { disconnect(): unknown }[] = [];

async function open(options: RedisStoreBaseOptions = {}): Promise<RedisStore> {
  const store = new RedisStore({ url: server.url, prefix: `t${++prefixes}:`, ...options });
  stores.push(store);
  await store.ready();
  return store;
}

beforeAll(async () => {
  server = await RedisServer.start();
});
afterAll(async () => {
  for (const store of stores) await store.close();
  for (const client of clients) await client.disconnect();
  await server?.kill();
});

runStoreContract("RedisStore", () => open());

runStoreContract("RedisStore on an ioredis client", async () => {
  const client = new Redis(server.url);
  clients.push(client);
  const store = new RedisStore({ client, prefix: `io${++prefixes}:` });
  await store.ready();
  return store;
});

runStoreContract("RedisStore on a node-redis client", async () => {
  const client = createClient({ url: server.url });
  clients.push({ disconnect: () => client.destroy() });
  await client.connect();
  const store = new RedisStore({ client, prefix: `nr${++prefixes}:` });
  await store.ready();
  return store;
});

const scope = { namespace: "n" };

describe("RedisStore", () => {
  it("clears a session without touching other sessions, namespaces or look-alike ids", async () => {
    const store = await open();
    await store.set("k", { namespace: "a", session: "s" }, { value: 1, createdAt: Date.now() });
    await store.set("k", { namespace: "a", session: "s:t" }, { value: 2, createdAt: Date.now() });
    await store.set("k", { namespace: "b", session: "s" }, { value: 3, createdAt: Date.now() });
    expect(await store.clear({ session: "s" })).toBe(2);
    expect((await store.get("k", { namespace: "a", session: "s:t" }))?.value).toBe(2);
    expect(await store.get("k", { namespace: "b", session: "s" })).toBeUndefined();
  });

  it("lets Redis expire entries (PX) and prunes their index members", async () => {
    const store = await open();
    await store.set("short", scope, {
      value: 1,
      createdAt: Date.now(),
      expiresAt: Date.now() + 50,
    });
    await store.set("long", scope, { value: 2, createdAt: Date.now() });
    await new Promise((resolve) => setTimeout(resolve, 120));
    expect(await store.get("short", scope)).toBeUndefined();
    expect(await store.size({ namespace: "n" })).toBe(1);
  });

  it("treats damaged bytes as a miss and removes them", async () => {
    const store = await open({ prefix: "damaged:" });
    await store.set("k", scope, { value: { text: "fine" }, createdAt: Date.now() });
    const raw = new Redis(server.url);
    const [entryKey] = await raw.keys("damaged:*:e:*");
    const bytes = (await raw.getBuffer(entryKey as string)) as Buffer;
    bytes[bytes.length - 2] = (bytes[bytes.length - 2] as number) ^ 0xff;
    await raw.set(entryKey as string, bytes);
    expect(await store.get("k", scope)).toBeUndefined();
    expect(await raw.exists(entryKey as string)).toBe(0);
    raw.disconnect();
  });

  it("reports values it cannot serialize", async () => {
    const store = await open();
    class Model {}
    expect(await store.set("m", scope, { value: new Model(), createdAt: 0 })).toBe(
      "not-serializable",
    );
  });

  it("needs exactly one of url or client, and says which clients it takes", () => {
    expect(() => new RedisStore({} as never)).toThrow(/exactly one of `url`.*or `client`/);
    const client = new Redis(server.url, { lazyConnect: true });
    // @ts-expect-error `url` and `client` together are a type error too
    expect(() => new RedisStore({ url: server.url, client })).toThrow(/got both/);
    expect(() => new RedisStore({ client: {} as never })).toThrow(
      /Expected `client` to be a node-redis .* or ioredis .* client, got `\[object Object\]` \(object\)/,
    );
    expect(() => new RedisStore({ url: server.url, bookkeeping: "keys" as never })).toThrow(
      /Expected `bookkeeping` to be "auto", "index" or "scan", got `keys` \(string\)/,
    );
  });

  it("talks through node-redis for a url, and through the client it is given", async () => {
    expect((await open()).library).toBe("node-redis");
    const client = new Redis(server.url);
    clients.push(client);
    const store = new RedisStore({ client });
    stores.push(store);
    expect(store.library).toBe("ioredis");
  });

  it("removes the older value when a set arrives already expired", async () => {
    const store = await open();
    await store.set("k", scope, { value: "old", createdAt: Date.now() });
    const past = Date.now() - 1000;
    await store.set("k", scope, { value: "new", createdAt: past, expiresAt: past + 1 });
    expect(await store.get("k", scope)).toBeUndefined();
    expect(await store.size({ namespace: "n" })).toBe(0);
  });

  it("backs cache(fn) and Cache across two store instances (two processes' view)", async () => {
    const a = await open({ prefix: "shared:" });
    const b = await open({ prefix: "shared:" });
    let calls = 0;
    const work = async (x: number) => ++calls + x * 0;
    expect(await cache(work, { store: a, namespace: "w" })(1)).toBe(1);
    expect(await cache(work, { store: b, namespace: "w" })(1)).toBe(1);
    expect(calls).toBe(1);
    const ca = new Cache<{ n: number }>({ store: a, namespace: "c" });
    const cb = new Cache<{ n: number }>({ store: b, namespace: "c" });
    await ca.set("prefix", { n: 1 });
    expect(await cb.longestPrefix("prefix and more")).toMatchObject({
      key: "prefix",
      value: { n: 1 },
    });
  });
});

describe("RedisStore cross-process single-flight", () => {
  it("4 processes x 50 concurrent identical calls compute exactly once", async () => {
    const workers = 4;
    const outputs = await Promise.all(
      Array.from({ length: workers }, () =>
        run(
          process.execPath,
          [
            "--import",
            "tsx",
            "test/helpers/redis-worker.ts",
            server.url,
            String(workers),
            "50",
            "sf1",
          ],
          {
            timeout: 60_000,
          },
        ),
      ),
    );
    const results = outputs.map(
      (o) => JSON.parse(o.stdout) as { computations: number; correct: boolean },
    );
    expect(results.every((r) => r.correct)).toBe(true);
    expect(results.reduce((sum, r) => sum + r.computations, 0)).toBe(1);
  }, 90_000);
});

describe("RedisStore fails open", () => {
  it("calls still return while Redis is down, within a bounded time, and caching resumes after", async () => {
    const own = await RedisServer.start();
    const store = new RedisStore({ url: own.url, commandTimeoutMs: 200 });
    await store.ready();
    let calls = 0;
    const fn = cache(async (x: number) => ({ x, run: ++calls }), { store, namespace: "fo" });
    expect((await fn(1)).run).toBe(1);
    expect((await fn(1)).run).toBe(1);
    await own.kill();
    const started = performance.now();
    for (let i = 0; i < 5; i++) expect((await fn(2)).x).toBe(2);
    const elapsed = performance.now() - started;
    expect(elapsed).toBeLessThan(5 * 2 * 200 + 500);
    expect(fn.cache.stats().errors).toBeGreaterThan(0);
    await own.restart();
    await store.ready(10_000);
    await fn(3);
    await new Promise((resolve) => setTimeout(resolve, 50));
    const before = calls;
    expect((await fn(3)).run).toBe(before);
    await store.close();
    await own.kill();
  }, 30_000);

  it("a Redis that never answers costs one command deadline per call, not a hang", async () => {
    const { createServer } = await import("node:net");
    const silent = createServer(() => {});
    await new Promise<void>((resolve) => silent.listen(0, "127.0.0.1", resolve));
    const port = (silent.address() as { port: number }).port;
    const store = new RedisStore({ url: `redis://127.0.0.1:${port}`, commandTimeoutMs: 150 });
    const fn = cache(async (x: number) => x * 2, { store, namespace: "silent" });
    const started = performance.now();
    expect(await fn(21)).toBe(42);
    expect(performance.now() - started).toBeLessThan(1500);
    await store.close();
    silent.close();
  });
});
