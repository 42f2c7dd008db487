import { describe, expect, it } from "vitest";
import { Cache, cache } from "../src/index.js";

describe("stats()", () => {
  it("counts hits, misses, sets, entries, bytes and time saved", async () => {
    const fn = cache(async (x: number) => {
      await new Promise((resolve) => setTimeout(resolve, 10));
      return "x".repeat(x);
    });
    await fn(100);
    await fn(100);
    await fn(100);
    await fn(200);
    const stats = fn.cache.stats();
    expect(stats).toMatchObject({
      hits: 2,
      misses: 2,
      sets: 2,
      entries: 2,
      errors: 0,
      evictions: 0,
    });
    expect(stats.bytes).toBeGreaterThan(300);
    expect(stats.timeSavedMs).toBeGreaterThanOrEqual(16);
  });

  it("counts evictions of this cache only", async () => {
    const c = new Cache({ maxSize: 1 });
    await c.set("a", {});
    await c.set("b", {});
    expect(c.stats()).toMatchObject({ evictions: 1, entries: 1, sets: 2 });
  });
});

describe("events", () => {
  it("emits hit, miss, set and evict with keys and sessions", async () => {
    const fn = cache((x: number) => x, { maxSize: 1 });
    const log: string[] = [];
    fn.cache.on("miss", (e) => log.push(`miss ${e.session}`));
    fn.cache.on("set", () => log.push("set"));
    fn.cache.on("hit", (e) => log.push(`hit ${e.ageMs >= 0}`));
    fn.cache.on("evict", (e) => log.push(`evict ${e.reason}`));
    fn(1);
    fn(1);
    fn(2);
    // The eviction happens while the new entry is stored, so it comes before that entry's set.
    expect(log).toEqual([
      "miss undefined",
      "set",
      "hit true",
      "miss undefined",
      "evict size",
      "set",
    ]);
  });

  it("stops calling a listener after unsubscribe", () => {
    const fn = cache((x: number) => x);
    let hits = 0;
    const off = fn.cache.on("hit", () => hits++);
    fn(1);
    fn(1);
    off();
    fn(1);
    expect(hits).toBe(1);
  });

  it("a throwing listener does not break the call", async () => {
    const fn = cache((x: number) => x);
    fn.cache.on("miss", () => {
      throw new Error("listener bug");
    });
    const uncaught = new Promise<unknown>((resolve) => process.once("uncaughtException", resolve));
    expect(fn(1)).toBe(1);
    expect(String(await uncaught)).toContain("listener bug");
  });
});
