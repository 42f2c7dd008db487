import { describe, expect, it } from "vitest";
import { cache } from "../src/index.js";
import { collect } from "./helpers/collect.js";

describe("generator records", () => {
  it("snapshot every yield, so a generator that mutates and re-yields one array replays each state", () => {
    const chat = cache(function* (n: number) {
      const history: number[] = [];
      for (let i = 1; i <= n; i++) {
        history.push(i);
        yield history;
      }
    });
    [...chat(3)];
    const replay = [...chat(3)].map((state) => [...state]);
    expect(replay).toEqual([[1], [1, 2], [1, 2, 3]]);
  });

  it("caches an empty generator (sync and async)", async () => {
    let calls = 0;
    // biome-ignore lint/correctness/useYield: an empty generator is the case under test.
    const empty = cache(function* (_x: number) {
      calls++;
    });
    expect([...empty(1)]).toEqual([]);
    expect([...empty(1)]).toEqual([]);
    // biome-ignore lint/correctness/useYield: an empty generator is the case under test.
    const emptyAsync = cache(async function* (_x: number) {
      calls++;
    });
    expect(await collect(emptyAsync(1))).toEqual([]);
    expect(await collect(emptyAsync(1))).toEqual([]);
    expect(calls).toBe(2);
  });

  it("stores nothing when the generator throws midway; the yields before it still arrive", async () => {
    let calls = 0;
    const flaky = cache(async function* (_x: number) {
      calls++;
      yield 1;
      throw new Error("model crashed");
    });
    const seen: number[] = [];
    await expect(
      (async () => {
        for await (const v of flaky(1)) seen.push(v);
      })(),
    ).rejects.toThrow("model crashed");
    expect(seen).toEqual([1]);
    await expect(collect(flaky(1))).rejects.toThrow("model crashed");
    expect(calls).toBe(2);
    expect(await flaky.cache.size()).toBe(0);
  });

  it("stores nothing when the consumer stops early, and closes the source", async () => {
    let calls = 0;
    let closed = 0;
    const tokens = cache(async function* (_x: number) {
      calls++;
      try {
        for (let i = 0; i < 10; i++) yield i;
      } finally {
        closed++;
      }
    });
    for await (const v of tokens(1)) if (v === 2) break;
    expect(closed).toBe(1);
    expect(await tokens.cache.size()).toBe(0);
    expect(await collect(tokens(1))).toHaveLength(10);
    expect(calls).toBe(2);
    expect(await tokens.cache.size()).toBe(1);
  });

  it("stores nothing when a sync consumer stops early", () => {
    let calls = 0;
    const gen = cache(function* (_x: number) {
      calls++;
      yield 1;
      yield 2;
    });
    for (const v of gen(1)) if (v === 1) break;
    expect([...gen(1)]).toEqual([1, 2]);
    expect([...gen(1)]).toEqual([1, 2]);
    expect(calls).toBe(2);
  });

  it("yields values that cannot be snapshotted and skips caching, with a warning", async () => {
    class Handle {
      constructor(readonly id: number) {}
    }
    let calls = 0;
    const gen = cache(async function* (_x: number) {
      calls++;
      yield "text";
      yield new Handle(7);
    });
    const warnings: string[] = [];
    gen.cache.on("warning", (event) => warnings.push(`${event.reason}: ${event.message}`));
    const out = await collect(gen(1));
    expect(out[1]).toBeInstanceOf(Handle);
    await collect(gen(1));
    expect(calls).toBe(2);
    expect(warnings[0]).toMatch(/not-snapshotable: .*yield\[1\] \(instance of Handle\)/);
    expect(gen.cache.stats().rejected).toBe(2);
  });

  it("replays the recorded return value", async () => {
    const gen = cache(async function* (_x: number) {
      yield 1;
      return { tokens: 1 };
    });
    const first = gen(1);
    await first.next();
    expect(await first.next()).toEqual({ done: true, value: { tokens: 1 } });
    const replay = gen(1);
    await replay.next();
    expect(await replay.next()).toEqual({ done: true, value: { tokens: 1 } });
  });

  it("lets `shouldCache` veto a stream by its yields", async () => {
    let calls = 0;
    const gen = cache(
      async function* (_x: number) {
        calls++;
        yield "partial";
      },
      { shouldCache: (yields) => yields.length > 1 },
    );
    await collect(gen(1));
    await collect(gen(1));
    expect(calls).toBe(2);
  });

  it("does not start the computation until the generator is iterated", async () => {
    let calls = 0;
    const gen = cache(async function* (_x: number) {
      calls++;
      yield 1;
    });
    gen(1);
    gen(1);
    await new Promise((resolve) => setImmediate(resolve));
    expect(calls).toBe(0);
  });
});
