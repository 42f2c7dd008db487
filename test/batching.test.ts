import { describe, expect, it } from "vitest";
import { cache, createQueue, limit, QueueFullError } from "../src/index.js";
import { deferred, flush } from "./helpers/deferred.js";
import { ManualScheduler } from "./helpers/manual-scheduler.js";

function embedder(
  scheduler: ManualScheduler,
  options: { maxBatchSize: number; maxWaitMs: number },
) {
  const batches: string[][] = [];
  const embed = limit(
    async (calls: [text: string][]) => {
      batches.push(calls.map(([text]) => text));
      return calls.map(([text]) => ({ text, vector: [text.length] }));
    },
    { batch: options, scheduler: scheduler.schedule },
  );
  return { embed, batches };
}

describe("batching", () => {
  it("collects calls until the window closes and maps results back by position", async () => {
    const scheduler = new ManualScheduler();
    const { embed, batches } = embedder(scheduler, { maxBatchSize: 8, maxWaitMs: 5 });
    const calls = ["a", "bb", "ccc"].map((t) => embed(t));
    expect(batches).toEqual([]);
    expect(scheduler.pending[0]?.waitMs).toBe(5);
    scheduler.fire();
    const results = await Promise.all(calls);
    expect(batches).toEqual([["a", "bb", "ccc"]]);
    expect(results.map((r) => r.vector[0])).toEqual([1, 2, 3]);
  });

  it("sends a full batch at once, without waiting for the window", async () => {
    const scheduler = new ManualScheduler();
    const { embed, batches } = embedder(scheduler, { maxBatchSize: 2, maxWaitMs: 1000 });
    const calls = ["a", "b", "c"].map((t) => embed(t));
    await flush();
    expect(batches).toEqual([["a", "b"]]);
    expect(scheduler.armed).toBe(1); // "c" waits for its window
    scheduler.fire();
    await Promise.all(calls);
    expect(batches).toEqual([["a", "b"], ["c"]]);
  });

  it("forms batches greedily from what waits while the slot is busy (Gradio), one batch per slot", async () => {
    const scheduler = new ManualScheduler();
    const gate = deferred();
    const batches: number[][] = [];
    let running = 0;
    let peak = 0;
    const fn = limit(
      async (calls: [n: number][]) => {
        running++;
        peak = Math.max(peak, running);
        batches.push(calls.map(([n]) => n));
        if (batches.length === 1) await gate.promise;
        running--;
        return calls.map(([n]) => n * 10);
      },
      { batch: { maxBatchSize: 4, maxWaitMs: 0 }, scheduler: scheduler.schedule },
    );
    const first = fn(1);
    scheduler.fire();
    await flush();
    const rest = [2, 3, 4, 5, 6].map((n) => fn(n));
    scheduler.fire();
    await flush();
    expect(batches).toEqual([[1]]); // the slot is busy: the others wait together
    gate.resolve();
    await Promise.all([first, ...rest]);
    expect(batches).toEqual([[1], [2, 3, 4, 5], [6]]);
    expect(peak).toBe(1);
  });

  it("fails the whole batch when the batch function throws", async () => {
    const scheduler = new ManualScheduler();
    const fn = limit(
      async (_calls: [number][]): Promise<number[]> => {
        throw new Error("GPU out of memory");
      },
      { batch: { maxBatchSize: 4, maxWaitMs: 0 }, scheduler: scheduler.schedule },
    );
    const calls = [fn(1), fn(2)];
    scheduler.fire();
    for (const call of calls) await expect(call).rejects.toThrow("GPU out of memory");
  });

  it("fails only the item whose result is an Error", async () => {
    const scheduler = new ManualScheduler();
    const fn = limit(
      async (calls: [number][]) =>
        calls.map(([n]) => (n < 0 ? new RangeError(`bad input ${n}`) : Math.sqrt(n))),
      { batch: { maxBatchSize: 4, maxWaitMs: 0 }, scheduler: scheduler.schedule },
    );
    const calls = [fn(4), fn(-1), fn(9)];
    scheduler.fire();
    expect(await calls[0]).toBe(2);
    await expect(calls[1]).rejects.toThrow("bad input -1");
    expect(await calls[2]).toBe(3);
  });

  it("rejects every item when the batch function returns the wrong number of results", async () => {
    const scheduler = new ManualScheduler();
    const fn = limit(async (_calls: [number][]) => [1], {
      batch: { maxBatchSize: 4, maxWaitMs: 0 },
      scheduler: scheduler.schedule,
    });
    const calls = [fn(1), fn(2)];
    scheduler.fire();
    for (const call of calls) await expect(call).rejects.toThrow(/returned 1 results for 2 calls/);
  });

  it("drops an aborted item before its batch is formed", async () => {
    const scheduler = new ManualScheduler();
    const { embed, batches } = embedder(scheduler, { maxBatchSize: 8, maxWaitMs: 5 });
    const controller = new AbortController();
    const kept = embed("kept");
    const dropped = embed.queue.with({ signal: controller.signal })("dropped");
    controller.abort(new Error("gone"));
    await expect(dropped).rejects.toThrow("gone");
    scheduler.fire();
    await kept;
    expect(batches).toEqual([["kept"]]);
  });

  it("counts waiting items against the queue's maximum size", async () => {
    const scheduler = new ManualScheduler();
    const queue = createQueue({ maxSize: 2 });
    const fn = limit(async (calls: [number][]) => calls.map(([n]) => n), {
      queue,
      batch: { maxBatchSize: 10, maxWaitMs: 5 },
      scheduler: scheduler.schedule,
    });
    const calls = [fn(1), fn(2)];
    await expect(fn(3)).rejects.toBeInstanceOf(QueueFullError);
    scheduler.fire();
    expect(await Promise.all(calls)).toEqual([1, 2]);
  });

  it("validates batch options", () => {
    expect(() => limit(async (c: [number][]) => c, { batch: { maxBatchSize: 0 } })).toThrow(
      /`batch.maxBatchSize` to be a positive integer/,
    );
  });
});

describe("batching with caching: each item is cached on its own", () => {
  it("a later single call hits, and a batch sends only the items not cached", async () => {
    const scheduler = new ManualScheduler();
    const sent: string[][] = [];
    const embed = cache(
      limit(
        async (calls: [text: string][]) => {
          sent.push(calls.map(([t]) => t));
          return calls.map(([t]) => t.toUpperCase());
        },
        { batch: { maxBatchSize: 8, maxWaitMs: 2 }, scheduler: scheduler.schedule },
      ),
    );
    const first = [embed("a"), embed("b")];
    scheduler.fire();
    expect(await Promise.all(first)).toEqual(["A", "B"]);
    expect(await embed("a")).toBe("A"); // a single call for one item of the batch: a hit
    const second = [embed("a"), embed("c"), embed("b"), embed("d"), embed("c")];
    scheduler.fire();
    expect(await Promise.all(second)).toEqual(["A", "C", "B", "D", "C"]);
    expect(sent).toEqual([
      ["a", "b"],
      ["c", "d"],
    ]); // cached items and the repeated "c" never sent
    expect(embed.cache.stats()).toMatchObject({ hits: 3, coalesced: 1, misses: 4 });
  });

  it("caches nothing from a batch that failed", async () => {
    const scheduler = new ManualScheduler();
    let fail = true;
    const fn = cache(
      limit(
        async (calls: [number][]) => {
          if (fail) throw new Error("upstream down");
          return calls.map(([n]) => n);
        },
        { batch: { maxBatchSize: 4, maxWaitMs: 0 }, scheduler: scheduler.schedule },
      ),
    );
    const call = fn(1);
    scheduler.fire();
    await expect(call).rejects.toThrow("upstream down");
    fail = false;
    const retry = fn(1);
    scheduler.fire();
    expect(await retry).toBe(1);
    expect(await fn.cache.size()).toBe(1);
  });
});
