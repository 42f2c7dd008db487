import { describe, expect, it } from "vitest";
import { Cache, cache } from "../src/index.js";
import { AsyncStore } from "./helpers/async-store.js";

/** Lets background writes finish: a call made before then joins the finished flight instead. */
const settle = () => new Promise((resolve) => setTimeout(resolve, 5));

describe("a failing store never fails the user's call", () => {
  it("runs the function uncached while the store is down, and counts the errors", async () => {
    const store = new AsyncStore();
    let calls = 0;
    const fn = cache(
      async (x: number) => {
        calls++;
        return x * 2;
      },
      { store, namespace: "fn" },
    );
    const errors: string[] = [];
    fn.cache.on("error", (e) => errors.push(`${e.operation}: ${(e.error as Error).message}`));
    store.down = true;
    expect(await fn(1)).toBe(2);
    await settle();
    expect(await fn(1)).toBe(2);
    await settle();
    expect(calls).toBe(2);
    expect(fn.cache.stats().errors).toBe(4);
    expect(errors).toContain("get: connection refused");
    expect(errors).toContain("set: connection refused");
  });

  it("resumes caching when the store is back", async () => {
    const store = new AsyncStore();
    let calls = 0;
    const fn = cache(async (x: number) => ++calls + x * 0, { store, namespace: "fn" });
    store.down = true;
    await fn(1);
    await settle();
    store.down = false;
    await fn(1);
    await settle();
    await fn(1);
    expect(calls).toBe(2);
  });

  it("streams still stream while the store is down", async () => {
    const store = new AsyncStore();
    store.down = true;
    const gen = cache(
      async function* (n: number) {
        for (let i = 0; i < n; i++) yield i;
      },
      { store, namespace: "gen" },
    );
    const out: number[] = [];
    for await (const v of gen(3)) out.push(v);
    expect(out).toEqual([0, 1, 2]);
  });

  it("a manual Cache reads as empty and getOrSet still computes", async () => {
    const store = new AsyncStore();
    const c = new Cache<{ v: number }>({ store, namespace: "c" });
    store.down = true;
    expect(await c.get("k")).toBeUndefined();
    expect(await c.set("k", { v: 1 })).toBe(false);
    expect(await c.getOrSet("k", () => ({ v: 2 }))).toEqual({ v: 2 });
    expect(await c.size()).toBe(0);
    expect(c.stats().errors).toBeGreaterThanOrEqual(4);
  });
});
