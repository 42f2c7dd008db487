import { describe, expect, it } from "vitest";
import { Cache, MemoryStore } from "../src/index.js";
import { AsyncStore } from "./helpers/async-store.js";
import { collect } from "./helpers/collect.js";
import { FakeClock } from "./helpers/fake-clock.js";

describe("Cache get/set", () => {
  it("returns undefined on a miss and the fields on a hit", async () => {
    const c = new Cache<{ value: number }>();
    expect(await c.get("k")).toBeUndefined();
    await c.set("k", { value: 42 });
    expect(await c.get("k")).toEqual({ value: 42 });
  });

  it("keeps an empty fields object as a hit", async () => {
    const c = new Cache();
    await c.set("k", {});
    expect(await c.get("k")).toEqual({});
  });

  it("hashes keys by content: normalised keys share an entry", async () => {
    const c = new Cache<{ forecast: string }>();
    const normalise = (city: string) => city.trim().toLowerCase().replace(/\s+/g, " ");
    await c.set(normalise("  New   York "), { forecast: "sunny" });
    expect(await c.get(normalise("new york"))).toEqual({ forecast: "sunny" });
    await c.set({ city: "Paris", units: "C" }, { forecast: "rain" });
    expect(await c.get({ units: "C", city: "Paris" })).toEqual({ forecast: "rain" });
  });

  it("replaces on set and moves the key to most recent", async () => {
    const c = new Cache<{ v: number }>({ maxSize: 2 });
    await c.set("a", { v: 1 });
    await c.set("b", { v: 2 });
    await c.set("a", { v: 3 });
    await c.set("c", { v: 4 });
    expect(await c.get("a")).toEqual({ v: 3 });
    expect(await c.get("b")).toBeUndefined();
  });

  it("evicts by count (LRU) like gr.Cache(max_size=2)", async () => {
    const c = new Cache<{ v: string }>({ maxSize: 2 });
    for (const k of ["a", "b", "c"]) await c.set(k, { v: k });
    expect(await c.size()).toBe(2);
    expect(await c.get("a")).toBeUndefined();
  });

  it("evicts by memory", async () => {
    const c = new Cache<{ kv: Float64Array }>({ maxSize: 0, maxMemory: "2kb" });
    await c.set("a", { kv: new Float64Array(100) });
    await c.set("b", { kv: new Float64Array(100) });
    expect(await c.size()).toBe(1);
    expect(await c.get("a")).toBeUndefined();
  });

  it("says when an entry was too large to keep, and keeps the rest", async () => {
    const c = new Cache<{ blob: Uint8Array }>({ maxMemory: "4kb" });
    await c.set("small", { blob: new Uint8Array(10) });
    expect(await c.set("big", { blob: new Uint8Array(100_000) })).toBe(false);
    expect(await c.get("small")).toBeDefined();
    expect(c.stats().rejected).toBe(1);
  });

  it("expires entries by the cache's ttl or a per-entry ttl", async () => {
    const clock = new FakeClock();
    const c = new Cache<{ v: number }>({ ttl: "1h", clock });
    await c.set("long", { v: 1 });
    await c.set("short", { v: 2 }, { ttl: "1s" });
    clock.advance(1000);
    expect(await c.get("short")).toBeUndefined();
    expect(await c.get("long")).toEqual({ v: 1 });
    clock.advance(3_600_000);
    expect(await c.get("long")).toBeUndefined();
  });

  it("has, delete, clear and size", async () => {
    const c = new Cache<{ v: number }>();
    await c.set("a", { v: 1 });
    await c.set("b", { v: 2 });
    expect(await c.has("a")).toBe(true);
    expect(await c.delete("a")).toBe(true);
    expect(await c.has("a")).toBe(false);
    expect(await c.size()).toBe(1);
    expect(await c.clear()).toBe(1);
    expect(await c.size()).toBe(0);
  });

  it("lists raw keys, oldest first", async () => {
    const c = new Cache();
    await c.set("x", {});
    await c.set({ id: 1 }, {});
    await c.set([1, 2, 3], {});
    await c.get("x");
    expect(await collect(c.keys())).toEqual([{ id: 1 }, [1, 2, 3], "x"]);
  });

  it("rejects fields that are not an object", async () => {
    const c = new Cache();
    await expect(c.set("k", "oops" as never)).rejects.toThrow(
      /Expected the fields to be an object such as \{ result \}, got `oops` \(string\)/,
    );
    await expect(c.set("k", null as never)).rejects.toThrow(/\(null\)/);
  });

  it("rejects unhashable keys naming the path, and keeps what was cached", async () => {
    const c = new Cache<{ v: number }>();
    await c.set("safe", { v: 1 });
    await expect(c.set({ handle: () => 0 }, { v: 2 })).rejects.toThrow(/key\.handle \(function\)/);
    expect(await c.get("safe")).toEqual({ v: 1 });
  });
});

describe("Cache getOrSet", () => {
  it("computes once for concurrent callers and stores the result", async () => {
    const c = new Cache<{ result: string }>();
    let calls = 0;
    const compute = async () => {
      calls++;
      await new Promise((resolve) => setTimeout(resolve, 5));
      return { result: "done" };
    };
    const results = await Promise.all(Array.from({ length: 10 }, () => c.getOrSet("k", compute)));
    expect(results.every((r) => r.result === "done")).toBe(true);
    expect(calls).toBe(1);
    expect(await c.getOrSet("k", compute)).toEqual({ result: "done" });
    expect(calls).toBe(1);
  });

  it("stores nothing when the computation throws", async () => {
    const c = new Cache<{ result: string }>();
    await expect(
      c.getOrSet("k", () => {
        throw new Error("failed");
      }),
    ).rejects.toThrow("failed");
    expect(await c.has("k")).toBe(false);
  });

  it("works over an asynchronous store", async () => {
    const c = new Cache<{ n: number }>({ store: new AsyncStore(), namespace: "c" });
    let calls = 0;
    await Promise.all([1, 2, 3].map(() => c.getOrSet("k", async () => ({ n: ++calls }))));
    expect(await c.get("k")).toEqual({ n: 1 });
    expect(calls).toBe(1);
  });
});

describe("Cache longestPrefix", () => {
  it("finds the longest stored string key that prefixes the query (Gradio's KV pattern)", async () => {
    const c = new Cache<{ kv: number[] }>();
    await c.set("hello", { kv: [1, 2, 3, 4, 5] });
    await c.set("hello world", { kv: Array.from({ length: 11 }, (_, i) => i) });
    const hit = await c.longestPrefix("hello world foo");
    expect(hit?.key).toBe("hello world");
    expect(hit?.length).toBe(11);
    expect(hit?.value.kv).toEqual(Array.from({ length: 11 }, (_, i) => i));
    expect((await c.longestPrefix("hello there"))?.key).toBe("hello");
    expect(await c.longestPrefix("goodbye")).toBeUndefined();
    expect(await c.longestPrefix("hell")).toBeUndefined();
  });

  it("counts an equal key as a prefix", async () => {
    const c = new Cache<{ n: number }>();
    await c.set("abc", { n: 1 });
    expect((await c.longestPrefix("abc"))?.length).toBe(3);
  });

  it("works on token-id arrays, as numbers or Uint32Array", async () => {
    const c = new Cache<{ state: string }>();
    await c.set([1, 2, 3], { state: "s3" });
    await c.set(new Uint32Array([1, 2, 3, 4, 5]), { state: "s5" });
    expect(await c.longestPrefix([1, 2, 3, 4, 5, 6])).toMatchObject({
      length: 5,
      value: { state: "s5" },
    });
    expect(await c.longestPrefix(new Uint32Array([1, 2, 3, 9]))).toMatchObject({
      length: 3,
      value: { state: "s3" },
    });
    expect(await c.longestPrefix([2, 3])).toBeUndefined();
  });

  it("never returns an entry that expired or was evicted", async () => {
    const clock = new FakeClock();
    const c = new Cache<{ n: number }>({ maxSize: 2, clock });
    await c.set("a", { n: 1 }, { ttl: 10 });
    await c.set("ab", { n: 2 }, { ttl: 10_000 });
    expect((await c.longestPrefix("abc"))?.key).toBe("ab");
    await c.set("x", { n: 3 });
    await c.set("y", { n: 4 }); // evicts "a" and "ab"
    expect(await c.longestPrefix("abc")).toBeUndefined();
    await c.set("ab", { n: 5 }, { ttl: 10 });
    clock.advance(10);
    expect(await c.longestPrefix("abc")).toBeUndefined();
  });

  it("follows deletes, and keeps string and token keys apart", async () => {
    const c = new Cache<{ n: number }>();
    await c.set("AB", { n: 1 });
    await c.set([65, 66, 67], { n: 2 });
    expect((await c.longestPrefix("ABCD"))?.key).toBe("AB");
    await c.delete("AB");
    expect(await c.longestPrefix("ABCD")).toBeUndefined();
    expect((await c.longestPrefix([65, 66, 67, 68]))?.key).toEqual([65, 66, 67]);
  });

  it("indexes entries already in the store on first use", async () => {
    const store = new MemoryStore();
    const writer = new Cache<{ n: number }>({ store, namespace: "shared" });
    await writer.set("prefix", { n: 1 });
    const reader = new Cache<{ n: number }>({ store, namespace: "shared" });
    expect((await reader.longestPrefix("prefix and more"))?.key).toBe("prefix");
  });

  it("copies a token-array key so a reused array cannot corrupt the index", async () => {
    const c = new Cache<{ n: number }>();
    const tokens = [1, 2, 3];
    await c.set(tokens, { n: 1 });
    await c.longestPrefix([1, 2, 3]);
    tokens[0] = 99;
    expect((await c.longestPrefix([1, 2, 3, 4]))?.key).toEqual([1, 2, 3]);
  });

  it("rejects a key that is neither a string nor token ids", async () => {
    const c = new Cache();
    await expect(c.longestPrefix([1.5] as never)).rejects.toThrow(
      /string or an array of token ids/,
    );
    await expect(c.longestPrefix({} as never)).rejects.toThrow(/got object/);
  });
});
