/**
 * OpenTelemetry spans of the library: a call's span (`infercache.call`) is the parent of its store
 * operations, its computation and its queue wait; attributes say the outcome and the canonical
 * key, never an argument. Spans come from a real SDK (`BasicTracerProvider` + the in-memory
 * exporter) over real stores: memory, a SQLite file and a redis-server process.
 */

import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { ReadableSpan } from "@opentelemetry/sdk-trace-base";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { Cache, type CallStatus, cache, createQueue, MemoryStore } from "../src/index.js";
import { RedisStore } from "../src/redis.js";
import { SqliteStore } from "../src/sqlite.js";
import { allAttributeText, installTracing, type TestTracing } from "./helpers/otel.js";
import { RedisServer } from "./helpers/redis-server.js";
import { until } from "./helpers/until.js";

const MARKER = "PROMPT-MARKER-7f3a9c";
let tracing: TestTracing;

beforeAll(() => {
  tracing = installTracing();
});
afterAll(() => tracing.uninstall());
beforeEach(() => tracing.reset());

function one(name: string): ReadableSpan {
  const spans = tracing.named(name);
  expect(spans, `spans named ${name}`).toHaveLength(1);
  return spans[0] as ReadableSpan;
}

function childrenOf(parent: ReadableSpan): string[] {
  const id = parent.spanContext().spanId;
  return tracing
    .spans()
    .filter((span) => tracing.parentOf(span) === id)
    .map((span) => span.name)
    .sort();
}

function expectNoMarker(): void {
  expect(allAttributeText(tracing.spans())).not.toContain(MARKER);
}

describe("cache(fn) spans", () => {
  it("a sync miss: the call span holds the computation and the write", () => {
    let runs = 0;
    const summarize = cache(function summarizeText(text: string) {
      runs++;
      return `summary of ${text.length} characters`;
    });
    expect(summarize(`${MARKER} a long document`)).toBe("summary of 36 characters");
    expect(runs).toBe(1);
    const call = one("infercache.call");
    expect(call.attributes["infercache.outcome"]).toBe("miss");
    expect(call.attributes["infercache.key"]).toMatch(/^[0-9a-f]{64}$/);
    expect(call.attributes["infercache.key"]).toBe(
      summarize.cache.key(`${MARKER} a long document`),
    );
    expect(call.attributes["infercache.store"]).toBe("memory");
    expect(call.attributes["infercache.namespace"]).toBe(`fn:${summarize.name}`);
    expect(call.attributes["code.function.name"]).toBe(summarize.name);
    expect(tracing.parentOf(call)).toBe("");
    // A read of an in-process store costs a fraction of a span: the call span stands for it.
    expect(childrenOf(call)).toEqual(["infercache.compute", "infercache.store.set"]);
    expect(one("infercache.store.set").attributes["infercache.store.outcome"]).toBe("stored");
    expectNoMarker();
  });

  it("a sync hit: a call span with the outcome and the key, and no computation", () => {
    const double = cache(function double(n: number) {
      return n * 2;
    });
    double(21);
    tracing.reset();
    expect(double(21)).toBe(42);
    const call = one("infercache.call");
    expect(call.attributes["infercache.outcome"]).toBe("hit");
    expect(call.attributes["infercache.key"]).toBe(double.cache.key(21));
    expect(childrenOf(call)).toEqual([]);
    expect(tracing.named("infercache.compute")).toHaveLength(0);
  });

  it("an async miss, a coalesced call and a hit, each with its own call span", async () => {
    let release!: () => void;
    const gate = new Promise<void>((resolve) => {
      release = resolve;
    });
    const answer = cache(async function answer(prompt: string) {
      await gate;
      return { text: `answer to ${prompt.length}` };
    });
    const first = answer(`${MARKER} question`);
    const second = answer(`${MARKER} question`);
    release();
    await Promise.all([first, second]);
    const calls = tracing.named("infercache.call");
    expect(calls.map((span) => span.attributes["infercache.outcome"]).sort()).toEqual([
      "coalesced",
      "miss",
    ]);
    const miss = calls.find((span) => span.attributes["infercache.outcome"] === "miss")!;
    expect(childrenOf(miss)).toEqual(["infercache.compute", "infercache.store.set"]);
    tracing.reset();
    await answer(`${MARKER} question`);
    expect(one("infercache.call").attributes["infercache.outcome"]).toBe("hit");
    expectNoMarker();
  });

  it("a computation that throws fails its span and the call's, by the error's class only", async () => {
    const broken = cache(async function broken(_prompt: string): Promise<string> {
      throw new RangeError(`bad input: ${MARKER}`);
    });
    await expect(broken(MARKER)).rejects.toThrow(RangeError);
    const compute = one("infercache.compute");
    expect(compute.status.code).toBe(2);
    expect(compute.attributes["error.type"]).toBe("RangeError");
    expect(one("infercache.call").attributes["error.type"]).toBe("RangeError");
    expect(JSON.stringify(tracing.spans().map((span) => [span.events, span.status]))).not.toContain(
      MARKER,
    );
    expectNoMarker();
  });

  it("a queued miss: the wait for a slot and the computation are children of the waiting call", async () => {
    const queue = createQueue({ concurrency: 1 });
    let release!: () => void;
    const gate = new Promise<void>((resolve) => {
      release = resolve;
    });
    const generate = cache(
      async function generateText(prompt: string) {
        if (prompt === "first") await gate;
        return prompt.length;
      },
      { queue },
    );
    const first = generate("first");
    const second = generate(`${MARKER} second`);
    // The second call waits until the first frees the slot.
    await new Promise((resolve) => setImmediate(resolve));
    expect(queue.waiting).toBe(1);
    release();
    await Promise.all([first, second]);
    const wait = one("infercache.queue.wait");
    expect(wait.attributes["infercache.queue.lane"]).toBe(generate.name);
    expect(wait.attributes["infercache.queue.position"]).toBe(1);
    const calls = tracing.named("infercache.call");
    const secondCall = calls.find((span) => span.spanContext().spanId === tracing.parentOf(wait))!;
    expect(secondCall).toBeDefined();
    expect(childrenOf(secondCall)).toEqual([
      "infercache.compute",
      "infercache.queue.wait",
      "infercache.store.set",
    ]);
    // The first call found a free slot: it never waited.
    const firstCall = calls.find((span) => span !== secondCall)!;
    expect(childrenOf(firstCall)).toEqual(["infercache.compute", "infercache.store.set"]);
    expectNoMarker();
  });

  it("`fn.cache.with({ status })` still fills the caller's status object", () => {
    const triple = cache((n: number) => n * 3, { store: new MemoryStore(), namespace: "triple" });
    const status: CallStatus = {};
    triple.cache.with({ status })(2);
    expect(status.source).toBe("miss");
    expect(one("infercache.call").attributes["infercache.outcome"]).toBe("miss");
  });
});

describe("Cache spans", () => {
  it("get, set and getOrSet have spans with the canonical key, never the key itself", async () => {
    const store = new Cache<{ text: string }>({ namespace: "notes" });
    expect(await store.get(`${MARKER} key`)).toBeUndefined();
    const get = one("infercache.cache.get");
    expect(get.attributes["infercache.outcome"]).toBe("miss");
    expect(get.attributes["infercache.key"]).toMatch(/^[0-9a-f]{64}$/);
    expect(childrenOf(get)).toEqual([]);
    tracing.reset();
    await store.set(`${MARKER} key`, { text: MARKER });
    expect(childrenOf(one("infercache.cache.set"))).toEqual(["infercache.store.set"]);
    tracing.reset();
    expect(await store.getOrSet(`${MARKER} other`, () => ({ text: "computed" }))).toEqual({
      text: "computed",
    });
    expect(childrenOf(one("infercache.cache.getOrSet"))).toEqual([
      "infercache.compute",
      "infercache.store.set",
    ]);
    tracing.reset();
    expect(await store.get(`${MARKER} key`)).toEqual({ text: MARKER });
    expect(one("infercache.cache.get").attributes["infercache.outcome"]).toBe("hit");
    expectNoMarker();
  });
});

describe("store operations on persistent stores", () => {
  let redis: RedisServer;
  const closers: (() => Promise<void> | void)[] = [];
  beforeAll(async () => {
    redis = await RedisServer.start();
  });
  afterAll(async () => {
    for (const close of closers) await close();
    await redis.kill();
  });

  const stores: [string, () => SqliteStore | RedisStore][] = [
    [
      "sqlite",
      () => {
        const dir = mkdtempSync(join(tmpdir(), "infercache-tracing-"));
        const store = new SqliteStore({ path: join(dir, "cache.db") });
        closers.push(() => store.close());
        return store;
      },
    ],
    [
      "redis",
      () => {
        const store = new RedisStore({ url: redis.url, prefix: "tracing:" });
        closers.push(() => store.close());
        return store;
      },
    ],
  ];

  for (const [kind, makeStore] of stores) {
    it(`${kind}: a miss, a hit, a delete and a clear, one span per store operation`, async () => {
      const store = makeStore();
      const embed = cache(
        async function embed(text: string) {
          return [text.length, 1, 2];
        },
        { store, namespace: `embed-${kind}` },
      );
      await embed(`${MARKER} text`);
      // The write goes on in the background: its span ends when the store has taken it.
      await until(() => tracing.named("infercache.store.set").length === 1, "the write's span");
      await new Promise((resolve) => setImmediate(resolve));
      const miss = one("infercache.call");
      expect(miss.attributes["infercache.outcome"]).toBe("miss");
      expect(miss.attributes["infercache.store"]).toBe(kind);
      const reads = tracing.named("infercache.store.get");
      expect(reads.length).toBeGreaterThanOrEqual(1);
      for (const span of [...reads, ...tracing.named("infercache.store.set")]) {
        expect(span.attributes["infercache.store"]).toBe(kind);
        expect(span.attributes["infercache.namespace"]).toBe(`embed-${kind}`);
        expect(tracing.parentOf(span)).toBe(miss.spanContext().spanId);
      }
      expect(childrenOf(miss)).toContain("infercache.store.set");
      expect(childrenOf(miss)).toContain("infercache.compute");
      tracing.reset();
      await embed(`${MARKER} text`);
      const hit = one("infercache.call");
      expect(hit.attributes["infercache.outcome"]).toBe("hit");
      expect(hit.attributes["infercache.key"]).toBe(embed.cache.key(`${MARKER} text`));
      expect(childrenOf(hit)).toEqual(["infercache.store.get"]);
      expect(one("infercache.store.get").attributes["infercache.store.found"]).toBe(true);
      tracing.reset();
      expect(await embed.cache.delete(`${MARKER} text`)).toBe(true);
      expect(one("infercache.store.delete").attributes["infercache.store"]).toBe(kind);
      await embed.cache.clear();
      expect(one("infercache.store.clear").attributes["infercache.store"]).toBe(kind);
      expectNoMarker();
    });
  }
});

describe("without a tracer provider", () => {
  it("a provider registered while a cache runs is seen within 1,024 of its calls", () => {
    tracing.uninstall();
    const inc = cache((n: number) => n + 1);
    for (let i = 0; i < 10; i++) inc(i);
    tracing = installTracing();
    let calls = 0;
    while (tracing.named("infercache.call").length === 0 && calls < 2048) inc(calls++ % 10);
    expect(calls).toBeGreaterThan(0);
    expect(calls).toBeLessThanOrEqual(1024);
  });

  it("makes no spans, and calls still hit", async () => {
    tracing.uninstall();
    try {
      let runs = 0;
      const square = cache((n: number) => {
        runs++;
        return n * n;
      });
      square(4);
      expect(square(4)).toBe(16);
      expect(runs).toBe(1);
      const store = new Cache();
      await store.set("a", { value: 1 });
      expect(await store.get("a")).toEqual({ value: 1 });
      expect(tracing.spans()).toHaveLength(0);
    } finally {
      tracing = installTracing();
    }
  });
});
