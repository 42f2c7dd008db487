import { describe, expect, expectTypeOf, it } from "vitest";
import { type CallStatus, cache, MemoryStore } from "../src/index.js";
import { AsyncStore } from "./helpers/async-store.js";
import { collect } from "./helpers/collect.js";

describe("cache(fn) keeps the kind of fn on an in-process store", () => {
  it("a sync function stays sync and runs once per input", () => {
    let calls = 0;
    const add = cache((a: number, b: number) => {
      calls++;
      return a + b;
    });
    expect(add(1, 2)).toBe(3);
    expect(add(1, 2)).toBe(3);
    expect(add(2, 1)).toBe(3);
    expect(calls).toBe(2);
    expectTypeOf(add(1, 2)).toEqualTypeOf<number>();
  });

  it("an async function stays async", async () => {
    let calls = 0;
    const translate = cache(async (text: string, lang: string) => {
      calls++;
      return `${text}@${lang}`;
    });
    expect(await translate("hi", "fr")).toBe("hi@fr");
    const hit = translate("hi", "fr");
    expect(hit).toBeInstanceOf(Promise);
    expect(await hit).toBe("hi@fr");
    expect(calls).toBe(1);
    expectTypeOf(translate("a", "b")).toEqualTypeOf<Promise<string>>();
  });

  it("a sync generator stays a sync generator and replays every yield", () => {
    let calls = 0;
    const countUp = cache(function* (n: number) {
      calls++;
      let total = 0;
      for (let i = 1; i <= n; i++) {
        total += i;
        yield total;
      }
      return "done";
    });
    const first = countUp(3);
    expect(Symbol.iterator in first).toBe(true);
    expect([...first]).toEqual([1, 3, 6]);
    expect([...countUp(3)]).toEqual([1, 3, 6]);
    expect(calls).toBe(1);
    const replay = countUp(3);
    replay.next();
    replay.next();
    replay.next();
    expect(replay.next()).toEqual({ done: true, value: "done" });
    expectTypeOf(countUp(1)).toEqualTypeOf<Generator<number, string, unknown>>();
  });

  it("an async generator stays an async generator", async () => {
    let calls = 0;
    const summarize = cache(async function* (text: string) {
      calls++;
      for (const word of text.split(" ")) yield word;
    });
    expect(await collect(summarize("a b c"))).toEqual(["a", "b", "c"]);
    expect(await collect(summarize("a b c"))).toEqual(["a", "b", "c"]);
    expect(calls).toBe(1);
  });

  it("keeps `this` for methods", () => {
    const model = {
      scale: 10,
      run: cache(function (this: { scale: number }, x: number) {
        return x * this.scale;
      }),
    };
    expect(model.run(2)).toBe(20);
  });

  it("keeps the function's name and length", () => {
    function classify(_image: Float32Array, _threshold: number) {
      return "cat";
    }
    const cached = cache(classify);
    expect(cached.name).toBe("classify");
    expect(cached.length).toBe(2);
  });

  it("caches what a plain function's promise resolves to", async () => {
    let calls = 0;
    const fetchLike = cache((x: number) => {
      calls++;
      return Promise.resolve(x * 2);
    });
    expect(await fetchLike(2)).toBe(4);
    expect(await fetchLike(2)).toBe(4);
    expect(calls).toBe(1);
  });

  it("caches undefined and null results (absence is not a miss)", () => {
    let calls = 0;
    const nothing = cache((_x: number) => {
      calls++;
      return undefined;
    });
    nothing(1);
    nothing(1);
    expect(calls).toBe(1);
  });
});

describe("cache(fn) on an asynchronous store becomes async", () => {
  it("a sync function returns a promise, and hits come from the store", async () => {
    const store = new AsyncStore();
    let calls = 0;
    const add = cache(
      (a: number, b: number) => {
        calls++;
        return a + b;
      },
      { store, namespace: "add" },
    );
    expectTypeOf(add(1, 2)).toEqualTypeOf<Promise<number>>();
    expect(await add(1, 2)).toBe(3);
    expect(await add(1, 2)).toBe(3);
    expect(calls).toBe(1);
    expect(await store.size({ namespace: "add" })).toBe(1);
  });

  it("a sync generator becomes an async generator", async () => {
    const store = new AsyncStore();
    let calls = 0;
    const gen = cache(
      function* (n: number) {
        calls++;
        for (let i = 0; i < n; i++) yield i;
      },
      { store, namespace: "gen" },
    );
    expectTypeOf(gen(1)).toEqualTypeOf<AsyncGenerator<number, void, unknown>>();
    expect(await collect(gen(3))).toEqual([0, 1, 2]);
    expect(await collect(gen(3))).toEqual([0, 1, 2]);
    expect(calls).toBe(1);
  });

  it("uses full SHA-256 keys in a store outside the process", async () => {
    const store = new AsyncStore();
    const f = cache((x: string) => x, { store, namespace: "f" });
    await f("a");
    const keys: string[] = [];
    for await (const [key] of store.entries({ namespace: "f" })) keys.push(key);
    expect(keys).toEqual([f.cache.key("a")]);
    expect(keys[0]).toMatch(/^[0-9a-f]{64}$/);
  });
});

describe("cache(fn) options", () => {
  it("`key` receives the arguments and decides what is hashed", () => {
    let calls = 0;
    const generate = cache(
      (prompt: string, temperature: number) => {
        calls++;
        return `${prompt}_${temperature}`;
      },
      { key: (prompt) => prompt },
    );
    expect(generate("hello", 0.5)).toBe("hello_0.5");
    expect(generate("hello", 0.9)).toBe("hello_0.5");
    expect(calls).toBe(1);
  });

  it("`maxSize` bounds the entries (LRU)", async () => {
    const fn = cache((x: number) => x, { maxSize: 2 });
    fn(1);
    fn(2);
    fn(3);
    expect(await fn.cache.size()).toBe(2);
  });

  it("`version` separates what was cached before", async () => {
    const store = new MemoryStore();
    let calls = 0;
    const v1 = cache((x: number) => ++calls + x * 0, { store, namespace: "f", version: 1 });
    const v2 = cache((x: number) => ++calls + x * 0, { store, namespace: "f", version: 2 });
    v1(1);
    v2(1);
    v1(1);
    expect(calls).toBe(2);
    expect(v1.cache.key(1)).not.toBe(v2.cache.key(1));
  });

  it("`ttl` expires results", async () => {
    let now = 0;
    let calls = 0;
    const fn = cache(
      (_x: number) => {
        calls++;
        return calls;
      },
      { ttl: "1s", clock: { now: () => now } },
    );
    fn(1);
    now = 999;
    fn(1);
    now = 1000;
    fn(1);
    expect(calls).toBe(2);
  });

  it("`clone` gives every hit its own copy", () => {
    const plain = cache((_x: number) => [1, 2]);
    const a = plain(1);
    a.push(99);
    expect(plain(1)).toEqual([1, 2, 99]); // shared by default, like lru-cache and Gradio
    const cloned = cache((_x: number) => [1, 2], { clone: true });
    const b = cloned(1);
    b.push(99);
    expect(cloned(1)).toEqual([1, 2]);
    cloned(1).push(7);
    expect(cloned(1)).toEqual([1, 2]);
  });

  it("`refresh` computes afresh and replaces the entry", async () => {
    let calls = 0;
    const fn = cache(async (_x: number) => ++calls);
    expect(await fn(1)).toBe(1);
    expect(await fn.cache.with({ refresh: true })(1)).toBe(2);
    expect(await fn(1)).toBe(2);
  });

  it("`status` reports what a call did", async () => {
    const fn = cache(async (x: number) => x);
    const first = {};
    await fn.cache.with({ status: first })(1);
    expect(first).toMatchObject({ source: "miss" });
    const second: CallStatus = {};
    await fn.cache.with({ status: second })(1);
    expect(second.source).toBe("hit");
    expect(second.ageMs).toBeGreaterThanOrEqual(0);
    expect(second.computeMs).toBeGreaterThanOrEqual(0);
  });

  it("the handle deletes, checks and clears entries", async () => {
    const fn = cache((x: number) => x * 2);
    fn(1);
    fn(2);
    expect(await fn.cache.has(1)).toBe(true);
    expect(await fn.cache.delete(1)).toBe(true);
    expect(await fn.cache.has(1)).toBe(false);
    expect(await fn.cache.clear()).toBe(1);
    expect(await fn.cache.size()).toBe(0);
  });
});

describe("cache(fn) validates at construction", () => {
  it("rejects a non-function, pointing at cache(fn)(...args)", () => {
    expect(() => cache(123 as never)).toThrow(
      /cache\(fn\) expected a function, got `123` \(number\); write cache\(fn\)\(\.\.\.args\), not cache\(fn\(\.\.\.args\)\)/,
    );
  });

  it("asks for a namespace with a store of your own (a type error too)", () => {
    // @ts-expect-error: a store of your own needs a namespace
    expect(() => cache((x: number) => x, { store: new MemoryStore() })).toThrow(
      /pass a `namespace` with `store`/,
    );
  });

  it("refuses memory limits beside a store of your own (a type error too)", () => {
    expect(() =>
      // @ts-expect-error: limits belong to the store you give
      cache((x: number) => x, { store: new MemoryStore(), namespace: "n", maxSize: 3 }),
    ).toThrow(
      /`maxSize` applies to the default MemoryStore; with your own `store`, set `maxSize` on the store instead/,
    );
  });

  it("rejects bad limits naming the option", () => {
    expect(() => cache((x: number) => x, { maxSize: -1 })).toThrow(
      "Expected `maxSize` to be a non-negative integer",
    );
    expect(() => cache((x: number) => x, { maxMemory: "1.5 bananas" })).toThrow(/`maxMemory`/);
    expect(() => cache((x: number) => x, { ttl: "later" })).toThrow(/`ttl`/);
  });
});

describe("unhashable arguments", () => {
  it("throw a TypeError naming the argument path, for sync functions", () => {
    const fn = cache((_opts: { model: unknown }) => 1);
    expect(() => fn({ model: new (class LlamaModel {})() })).toThrow(
      /args\[0\]\.model \(instance of LlamaModel\)/,
    );
  });

  it("reject for async functions, and the function does not run", async () => {
    let calls = 0;
    const fn = cache(async (_f: () => void) => ++calls);
    await expect(fn(() => {})).rejects.toThrow(/args\[0\] \(function\)/);
    expect(calls).toBe(0);
  });

  it("name the key function's result when `key` is used", () => {
    const fn = cache((_a: number) => 1, { key: () => ({ bad: Symbol("x") }) });
    expect(() => fn(1)).toThrow(/key\(\.\.\.args\)\.bad \(symbol\)/);
  });
});

describe("wrapping the same function again (Gradio's runtime gr.cache(fn)(...))", () => {
  it("shares one cache for the same function and options", async () => {
    let calls = 0;
    async function retrievePassages(question: string) {
      calls++;
      return [`passage about ${question}`];
    }
    const draftAnswer = async (question: string, tone: string) => {
      const passages = await cache(retrievePassages, { maxSize: 32 })(question);
      return `${passages[0]} (${tone})`;
    };
    expect(await draftAnswer("caching", "formal")).toBe("passage about caching (formal)");
    expect(await draftAnswer("caching", "casual")).toBe("passage about caching (casual)");
    expect(calls).toBe(1);
    expect(cache(retrievePassages, { maxSize: 32 })).toBe(cache(retrievePassages, { maxSize: 32 }));
  });

  it("gives different options, or a new key function, a cache of their own", () => {
    const f = (x: number) => x;
    expect(cache(f, { maxSize: 1 })).not.toBe(cache(f, { maxSize: 2 }));
    expect(cache(f, { key: (x) => x })).not.toBe(cache(f, { key: (x) => x }));
    const key = (x: number) => x;
    expect(cache(f, { key })).toBe(cache(f, { key }));
  });
});
