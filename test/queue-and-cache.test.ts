import { describe, expect, it } from "vitest";
import { cache, createQueue, QueueFullError, type QueuePosition } from "../src/index.js";
import { deferred, flush } from "./helpers/deferred.js";

describe("cache(fn, { queue })", () => {
  it("serves hits while the queue is full; only misses are rejected (Gradio rejects both)", async () => {
    const queue = createQueue({ maxSize: 1 });
    const gate = deferred();
    const slow = cache(
      async (x: number) => {
        if (x !== 0) await gate.promise;
        return x * 10;
      },
      { queue },
    );
    expect(await slow(0)).toBe(0); // cached before the queue fills
    const running = slow(1);
    const waiting = slow(2);
    await flush();
    expect(queue.running).toBe(1);
    expect(queue.waiting).toBe(1);
    await expect(slow(3)).rejects.toBeInstanceOf(QueueFullError);
    const started = performance.now();
    expect(await slow(0)).toBe(0); // a hit: no slot, no waiting, no rejection
    expect(performance.now() - started).toBeLessThan(50);
    const joined = slow(1); // coalesced with the running call: never enters the queue
    expect(queue.waiting).toBe(1);
    gate.resolve();
    expect(await Promise.all([running, waiting, joined])).toEqual([10, 20, 10]);
    expect(slow.cache.stats()).toMatchObject({ hits: 1, coalesced: 1 });
  });

  it("applies the function's concurrency, and sync functions become async", async () => {
    const queue = createQueue();
    let running = 0;
    let peak = 0;
    const fn = cache(
      (x: number) => {
        running++;
        peak = Math.max(peak, running);
        return flush().then(() => {
          running--;
          return x;
        });
      },
      { queue, concurrency: 2 },
    );
    const calls = [1, 2, 3, 4, 5].map((x) => fn(x));
    expect(calls[0]).toBeInstanceOf(Promise);
    expect(await Promise.all(calls)).toEqual([1, 2, 3, 4, 5]);
    expect(peak).toBe(2);
  });

  it("reports a waiting miss's position to the caller", async () => {
    const queue = createQueue();
    const gate = deferred();
    const fn = cache(
      async (x: number) => {
        await gate.promise;
        return x;
      },
      { queue },
    );
    const first = fn(1);
    const positions: QueuePosition[] = [];
    const second = fn.cache.with({ onPosition: (p) => positions.push(p) })(2);
    await flush();
    expect(positions[0]?.position).toBe(1);
    gate.resolve();
    await Promise.all([first, second]);
  });

  it("streams hold a slot while they run", async () => {
    const queue = createQueue();
    const gate = deferred();
    const order: string[] = [];
    const gen = cache(
      async function* (name: string) {
        order.push(`start ${name}`);
        yield 1;
        if (name === "a") await gate.promise;
        order.push(`end ${name}`);
      },
      { queue },
    );
    const consume = async (name: string) => {
      for await (const _ of gen(name)) {
      }
    };
    const a = consume("a");
    const b = consume("b");
    await flush();
    expect(order).toEqual(["start a"]);
    gate.resolve();
    await Promise.all([a, b]);
    expect(order).toEqual(["start a", "end a", "start b", "end b"]);
  });

  it("needs a queue for a concurrency (a type error too)", () => {
    // @ts-expect-error: concurrency is a limit within a queue
    expect(() => cache(async (x: number) => x, { concurrency: 2 })).toThrow(
      /pass `queue: createQueue\(\)`/,
    );
  });
});
