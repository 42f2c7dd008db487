import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { cache, MemoryStore, TieredStore } from "../src/index.js";
import { RedisStore } from "../src/redis.js";
import { SqliteStore } from "../src/sqlite.js";
import { RedisServer } from "./helpers/redis-server.js";
import { runStoreContract } from "./store-contract.js";

const dir = mkdtempSync(join(tmpdir(), "infercache-tiered-"));
let files = 0;
const sqlite = () => new SqliteStore({ path: join(dir, `t${++files}.db`) });

// Reads served by the memory tier do not reach the back tier's LRU order (that would cost the
// back store a write per hit), so listings follow the back tier's own order.
runStoreContract(
  "TieredStore (memory + SQLite)",
  () => new TieredStore({ store: sqlite(), memory: { maxSize: 0 } }),
  {
    lruOrder: false,
  },
);

const scope = { namespace: "n" };

describe("TieredStore", () => {
  it("serves repeated reads from memory and fills memory from the back store", async () => {
    const back = sqlite();
    await back.set("k", scope, { value: { text: "from disk" }, createdAt: Date.now() });
    const tiered = new TieredStore({ store: back });
    expect(tiered.memory.getSync("k", scope)).toBeUndefined();
    const first = await tiered.get("k", scope);
    expect(first?.value).toEqual({ text: "from disk" });
    expect(tiered.memory.getSync("k", scope)).toBe(first);
    expect(await tiered.get("k", scope)).toBe(first); // the same live object: no decode
    await tiered.close();
  });

  it("writes, deletes and clears reach both tiers", async () => {
    const back = sqlite();
    const tiered = new TieredStore({ store: back, memory: new MemoryStore({ maxSize: 10 }) });
    await tiered.set("a", scope, { value: 1, createdAt: Date.now() });
    expect(tiered.memory.getSync("a", scope)?.value).toBe(1);
    expect((await back.get("a", scope))?.value).toBe(1);
    await tiered.delete("a", scope);
    expect(tiered.memory.getSync("a", scope)).toBeUndefined();
    expect(await back.get("a", scope)).toBeUndefined();
    await tiered.set("b", scope, { value: 2, createdAt: Date.now() });
    await tiered.clear({ namespace: "n" });
    expect(tiered.memory.getSync("b", scope)).toBeUndefined();
    expect(await back.size()).toBe(0);
    await tiered.close();
  });

  it("needs a back store", () => {
    expect(() => new TieredStore({} as never)).toThrow(/needs `store`/);
  });
});

describe("TieredStore over Redis: a change in one process reaches the others' memory", () => {
  let server: RedisServer;
  beforeAll(async () => {
    server = await RedisServer.start();
  });
  afterAll(async () => {
    await server.kill();
  });

  it("drops the other process's memory copy on set, delete and clear", async () => {
    const open = async () => {
      const redis = new RedisStore({ url: server.url, prefix: "tiered:" });
      await redis.ready();
      const tiered = new TieredStore({ store: redis });
      await tiered.ready();
      return tiered;
    };
    const one = await open();
    const two = await open();
    const settle = () => new Promise((resolve) => setTimeout(resolve, 50));
    await one.set("k", scope, { value: "v1", createdAt: Date.now() });
    expect((await two.get("k", scope))?.value).toBe("v1");
    expect(two.memory.getSync("k", scope)?.value).toBe("v1");
    await one.set("k", scope, { value: "v2", createdAt: Date.now() });
    await settle();
    expect((await two.get("k", scope))?.value).toBe("v2");
    await one.delete("k", scope);
    await settle();
    expect(two.memory.getSync("k", scope)).toBeUndefined();
    expect(await two.get("k", scope)).toBeUndefined();
    await two.set("x", scope, { value: 1, createdAt: Date.now() });
    await one.get("x", scope);
    await two.clear({ namespace: "n" });
    await settle();
    expect(one.memory.getSync("x", scope)).toBeUndefined();
    await one.close();
    await two.close();
  });

  it("backs a cached function: hits from memory, shared through Redis", async () => {
    const redis = new RedisStore({ url: server.url, prefix: "tiered-fn:" });
    await redis.ready();
    const tiered = new TieredStore({ store: redis });
    let calls = 0;
    const fn = cache(async (x: number) => ({ x, run: ++calls }), {
      store: tiered,
      namespace: "fn",
    });
    await fn(1);
    await new Promise((resolve) => setTimeout(resolve, 20));
    expect((await fn(1)).run).toBe(1);
    expect(calls).toBe(1);
    await tiered.close();
  });
});
