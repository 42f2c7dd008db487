import { describe, expect, it } from "vitest";
import { cache, currentSignal } from "../src/index.js";
import { AsyncStore } from "./helpers/async-store.js";
import { collect } from "./helpers/collect.js";
import { deferred } from "./helpers/deferred.js";

describe("single-flight for async functions", () => {
  it("runs N identical concurrent calls once and gives all the result", async () => {
    const gate = deferred();
    let calls = 0;
    const classify = cache(async (image: string) => {
      calls++;
      await gate.promise;
      return `label:${image}`;
    });
    const pending = Array.from({ length: 50 }, () => classify("cat.png"));
    gate.resolve();
    expect(new Set(await Promise.all(pending))).toEqual(new Set(["label:cat.png"]));
    expect(calls).toBe(1);
    expect(classify.cache.stats()).toMatchObject({ misses: 1, coalesced: 49, hits: 0 });
  });

  it("coalesces across an asynchronous store lookup too", async () => {
    const store = new AsyncStore();
    let calls = 0;
    const fn = cache(
      async (x: number) => {
        calls++;
        return x;
      },
      { store, namespace: "fn" },
    );
    await Promise.all(Array.from({ length: 20 }, () => fn(1)));
    expect(calls).toBe(1);
    expect(await fn(1)).toBe(1);
    expect(calls).toBe(1);
  });

  it("shares a failure with every waiting caller and caches nothing", async () => {
    const gate = deferred();
    let calls = 0;
    const fn = cache(async (_x: number) => {
      calls++;
      await gate.promise;
      throw new Error("out of memory");
    });
    const pending = [fn(1), fn(1), fn(1)];
    gate.resolve();
    for (const p of pending) await expect(p).rejects.toThrow("out of memory");
    expect(calls).toBe(1);
    await expect(fn(1)).rejects.toThrow("out of memory");
    expect(calls).toBe(2);
  });

  it("keeps different arguments apart", async () => {
    let calls = 0;
    const fn = cache(async (x: number) => {
      calls++;
      return x;
    });
    expect(await Promise.all([fn(1), fn(2), fn(1), fn(2)])).toEqual([1, 2, 1, 2]);
    expect(calls).toBe(2);
  });

  it("can be turned off with coalesce: false", async () => {
    let calls = 0;
    const fn = cache(
      async (x: number) => {
        calls++;
        return x;
      },
      { coalesce: false },
    );
    await Promise.all([fn(1), fn(1)]);
    expect(calls).toBe(2);
  });
});

describe("abort", () => {
  it("an aborted caller stops waiting; the computation goes on for the others", async () => {
    const gate = deferred();
    let aborted = false;
    const fn = cache(async (_x: number) => {
      currentSignal()?.addEventListener("abort", () => {
        aborted = true;
      });
      await gate.promise;
      return "result";
    });
    const controller = new AbortController();
    const leaving = fn.cache.with({ signal: controller.signal })(1);
    const staying = fn(1);
    controller.abort(new Error("user left"));
    await expect(leaving).rejects.toThrow("user left");
    gate.resolve();
    expect(await staying).toBe("result");
    expect(aborted).toBe(false);
    expect(await fn.cache.has(1)).toBe(true);
  });

  it("the computation is aborted when its last caller leaves, and nothing is stored", async () => {
    const gate = deferred();
    let signalSeen: AbortSignal | undefined;
    let calls = 0;
    const fn = cache(async (_x: number) => {
      calls++;
      signalSeen = currentSignal();
      await gate.promise;
      return "late";
    });
    const a = new AbortController();
    const b = new AbortController();
    const first = fn.cache.with({ signal: a.signal })(1);
    const second = fn.cache.with({ signal: b.signal })(1);
    a.abort(new Error("a left"));
    expect(signalSeen?.aborted).toBe(false);
    b.abort(new Error("b left"));
    expect(signalSeen?.aborted).toBe(true);
    await expect(first).rejects.toThrow("a left");
    await expect(second).rejects.toThrow("b left");
    gate.resolve();
    await new Promise((resolve) => setImmediate(resolve));
    expect(await fn.cache.has(1)).toBe(false);
    expect(await fn(1)).toBe("late");
    expect(calls).toBe(2);
  });

  it("an already aborted signal rejects at once without running anything", async () => {
    let calls = 0;
    const fn = cache(async (_x: number) => ++calls);
    await expect(fn.cache.with({ signal: AbortSignal.abort(new Error("no")) })(1)).rejects.toThrow(
      "no",
    );
    expect(calls).toBe(0);
  });

  it("a streaming consumer's signal stops it; the last one leaving closes the source", async () => {
    const gate = deferred();
    let closed = false;
    const gen = cache(async function* (_x: number) {
      try {
        yield 1;
        await gate.promise;
        yield 2;
      } finally {
        closed = true;
      }
    });
    const controller = new AbortController();
    const it = gen.cache.with({ signal: controller.signal })(1);
    expect(await it.next()).toEqual({ done: false, value: 1 });
    const next = it.next();
    controller.abort(new Error("closed tab"));
    await expect(next).rejects.toThrow("closed tab");
    gate.resolve();
    await new Promise((resolve) => setImmediate(resolve));
    expect(closed).toBe(true);
    expect(await gen.cache.size()).toBe(0);
  });
});

describe("single-flight for streams", () => {
  it("runs identical concurrent streams once", async () => {
    let calls = 0;
    const gen = cache(async function* (n: number) {
      calls++;
      for (let i = 0; i < n; i++) {
        await new Promise((resolve) => setImmediate(resolve));
        yield i;
      }
    });
    const results = await Promise.all([collect(gen(5)), collect(gen(5)), collect(gen(5))]);
    expect(results).toEqual([
      [0, 1, 2, 3, 4],
      [0, 1, 2, 3, 4],
      [0, 1, 2, 3, 4],
    ]);
    expect(calls).toBe(1);
    expect(gen.cache.stats()).toMatchObject({ misses: 1, coalesced: 2 });
  });

  it("a late joiner replays what was produced so far, then follows live", async () => {
    const gates = [deferred(), deferred(), deferred()];
    let calls = 0;
    const gen = cache(async function* (_x: number) {
      calls++;
      for (let i = 0; i < 3; i++) {
        await gates[i]?.promise;
        yield `token${i}`;
      }
    });
    const first = gen(1);
    gates[0]?.resolve();
    expect((await first.next()).value).toBe("token0");
    gates[1]?.resolve();
    expect((await first.next()).value).toBe("token1");
    // Joins after two tokens: gets them at once, then waits with the first caller.
    const late = gen(1);
    expect((await late.next()).value).toBe("token0");
    expect((await late.next()).value).toBe("token1");
    const lateThird = late.next();
    const firstThird = first.next();
    gates[2]?.resolve();
    expect((await lateThird).value).toBe("token2");
    expect((await firstThird).value).toBe("token2");
    expect((await late.next()).done).toBe(true);
    expect((await first.next()).done).toBe(true);
    expect(calls).toBe(1);
  });

  it("keeps going for the others when one consumer stops early", async () => {
    let calls = 0;
    const gen = cache(async function* (_x: number) {
      calls++;
      for (let i = 0; i < 4; i++) {
        await new Promise((resolve) => setImmediate(resolve));
        yield i;
      }
    });
    const quitter = (async () => {
      for await (const v of gen(1)) if (v === 1) break;
    })();
    const full = collect(gen(1));
    await quitter;
    expect(await full).toEqual([0, 1, 2, 3]);
    expect(calls).toBe(1);
    expect(await collect(gen(1))).toEqual([0, 1, 2, 3]);
    expect(calls).toBe(1);
  });

  it("sync generators share one run between interleaved consumers", () => {
    let calls = 0;
    const gen = cache(function* (_x: number) {
      calls++;
      yield "a";
      yield "b";
    });
    const one = gen(1);
    const two = gen(1);
    expect(one.next().value).toBe("a");
    expect(two.next().value).toBe("a");
    expect(two.next().value).toBe("b");
    expect(one.next().value).toBe("b");
    expect(one.next().done).toBe(true);
    expect(two.next().done).toBe(true);
    expect(calls).toBe(1);
  });
});

describe("clone mode with joiners", () => {
  it("hands an uncopyable shared result to joiners instead of failing them", async () => {
    class Handle {}
    let release!: () => void;
    const gate = new Promise<void>((resolve) => {
      release = resolve;
    });
    const fn = cache(
      async (_x: number) => {
        await gate;
        return new Handle();
      },
      { clone: true },
    );
    const first = fn(1);
    const joiner = fn(1);
    release();
    expect(await first).toBeInstanceOf(Handle);
    expect(await joiner).toBeInstanceOf(Handle);
    expect(fn.cache.stats().rejected).toBe(1);
  });
});
