import { describe, expect, it } from "vitest";
import {
  createQueue,
  currentSignal,
  limit,
  QueueFullError,
  type QueuePosition,
} from "../src/index.js";
import { deferred, flush } from "./helpers/deferred.js";
import { FakeClock } from "./helpers/fake-clock.js";

describe("concurrency limits", () => {
  it("runs one call at a time by default (Gradio's default for model functions)", async () => {
    let running = 0;
    let peak = 0;
    const model = limit(async (x: number) => {
      running++;
      peak = Math.max(peak, running);
      await flush();
      running--;
      return x;
    });
    expect(await Promise.all([1, 2, 3, 4].map((x) => model(x)))).toEqual([1, 2, 3, 4]);
    expect(peak).toBe(1);
  });

  it("takes a per-function limit and a queue-wide default", async () => {
    const queue = createQueue({ concurrency: 3 });
    const peaks = { a: 0, b: 0 };
    const running = { a: 0, b: 0 };
    const make = (name: "a" | "b", concurrency?: number) =>
      limit(
        async () => {
          running[name]++;
          peaks[name] = Math.max(peaks[name], running[name]);
          await flush();
          running[name]--;
        },
        { queue, ...(concurrency !== undefined && { concurrency }) },
      );
    const a = make("a");
    const b = make("b", 2);
    await Promise.all([
      ...Array.from({ length: 6 }, () => a()),
      ...Array.from({ length: 6 }, () => b()),
    ]);
    expect(peaks).toEqual({ a: 3, b: 2 });
  });

  it("bounds what runs across functions with maxConcurrency, in arrival order", async () => {
    const queue = createQueue({ concurrency: 5, maxConcurrency: 2 });
    const order: string[] = [];
    const gates = new Map<string, ReturnType<typeof deferred<void>>>();
    const task = () =>
      limit(
        async (id: string) => {
          order.push(id);
          const gate = deferred();
          gates.set(id, gate);
          await gate.promise;
        },
        { queue, concurrency: 5 },
      );
    const a = task();
    const b = task();
    const calls = [a("a1"), b("b1"), a("a2"), b("b2"), a("a3")];
    await flush();
    expect(order).toEqual(["a1", "b1"]);
    expect(queue.running).toBe(2);
    expect(queue.waiting).toBe(3);
    gates.get("b1")?.resolve();
    await flush();
    expect(order).toEqual(["a1", "b1", "a2"]);
    for (const id of ["a1", "a2", "b2", "a3"]) {
      await flush();
      gates.get(id)?.resolve();
    }
    await Promise.all(calls);
    expect(order).toEqual(["a1", "b1", "a2", "b2", "a3"]);
  });

  it("rejects bad limits at construction", () => {
    expect(() => createQueue({ concurrency: 0 })).toThrow(
      "Expected `concurrency` to be a positive integer, got `0`",
    );
    expect(() => createQueue({ maxSize: -1 })).toThrow(
      "Expected `maxSize` to be a non-negative integer",
    );
    // @ts-expect-error: maxQueue is a private queue's bound; a shared queue has maxSize
    expect(() => limit(async () => 1, { queue: createQueue(), maxQueue: 3 })).toThrow(
      /set `maxSize` on the queue/,
    );
  });
});

describe("maximum queue size", () => {
  it("rejects at once with QueueFullError when the waiting line is full", async () => {
    const gate = deferred();
    const slow = limit(() => gate.promise, { maxQueue: 2 });
    const running = slow();
    const waiting = [slow(), slow()];
    const error = await slow().catch((e: unknown) => e);
    expect(error).toBeInstanceOf(QueueFullError);
    expect(error).toMatchObject({ maxSize: 2, waiting: 2 });
    expect((error as Error).message).toBe("Queue is full: max size is 2 and 2 are waiting");
    gate.resolve();
    await Promise.all([running, ...waiting]);
  });

  it("counts waiting calls across the functions that share a queue", async () => {
    const queue = createQueue({ maxSize: 1 });
    const gate = deferred();
    const a = limit(() => gate.promise, { queue });
    const b = limit(() => gate.promise, { queue });
    const calls = [a(), b(), a()];
    await expect(b()).rejects.toBeInstanceOf(QueueFullError);
    expect(queue.waiting).toBe(1);
    expect(queue.running).toBe(2);
    expect(queue.size).toBe(3);
    gate.resolve();
    await Promise.all(calls);
    await queue.onIdle();
    expect(queue.size).toBe(0);
  });
});

describe("abort", () => {
  it("removes a waiting call: it never starts", async () => {
    const gate = deferred();
    const started: number[] = [];
    const fn = limit(async (x: number) => {
      started.push(x);
      await gate.promise;
    });
    const first = fn(1);
    const controller = new AbortController();
    const second = fn.queue.with({ signal: controller.signal })(2);
    const third = fn(3);
    controller.abort(new Error("user left"));
    await expect(second).rejects.toThrow("user left");
    expect(fn.queue.queue.waiting).toBe(1);
    gate.resolve();
    await Promise.all([first, third]);
    expect(started).toEqual([1, 3]);
  });

  it("passes the signal to a running call", async () => {
    const seen: (AbortSignal | undefined)[] = [];
    const gate = deferred();
    const fn = limit(async () => {
      seen.push(currentSignal());
      await gate.promise;
    });
    const controller = new AbortController();
    const call = fn.queue.with({ signal: controller.signal })();
    await flush();
    controller.abort();
    expect(seen[0]?.aborted).toBe(true);
    gate.resolve();
    await call;
  });

  it("keeps a lane moving after cancelled calls (no stall)", async () => {
    const gate = deferred();
    const fn = limit(async (x: number) => {
      if (x === 1) await gate.promise;
      return x;
    });
    const first = fn(1);
    const controllers = [new AbortController(), new AbortController()];
    const cancelled = controllers.map((c, i) =>
      fn.queue
        .with({ signal: c.signal })(10 + i)
        .catch(() => "aborted"),
    );
    for (const c of controllers) c.abort();
    gate.resolve();
    expect(await first).toBe(1);
    expect(await Promise.all(cancelled)).toEqual(["aborted", "aborted"]);
    expect(await fn(2)).toBe(2);
  });
});

describe("position and ETA", () => {
  it("reports each waiting call's position and an ETA from recent durations", async () => {
    const clock = new FakeClock();
    const queue = createQueue({ clock });
    const gates: ReturnType<typeof deferred<void>>[] = [];
    const fn = limit(
      async () => {
        const gate = deferred();
        gates.push(gate);
        await gate.promise;
      },
      { queue },
    );
    // Teach the lane that a call takes 2 s.
    const warm = fn();
    clock.advance(2000);
    gates[0]?.resolve();
    await warm;
    const first = fn();
    const updates: QueuePosition[][] = [[], []];
    const second = fn.queue.with({ onPosition: (u) => updates[0]?.push(u) })();
    const third = fn.queue.with({ onPosition: (u) => updates[1]?.push(u) })();
    expect(updates[0]).toEqual([{ position: 1, etaMs: 2000 }]);
    expect(updates[1]).toEqual([{ position: 2, etaMs: 4000 }]);
    clock.advance(1000); // this call takes 1 s: the average becomes 1.5 s
    gates[1]?.resolve();
    await flush();
    expect(updates[1]?.at(-1)).toEqual({ position: 1, etaMs: 1500 });
    gates[2]?.resolve();
    await flush();
    gates[3]?.resolve();
    await Promise.all([first, second, third]);
  });
});
