/**
 * Serving stale in the library (RFC 5861's `stale-while-revalidate` and `stale-if-error`):
 * `cache(fn, { ttl, staleWhileRevalidate, staleIfError })` and `new Cache({ … })`, on a
 * MemoryStore, a SQLite file and a real redis-server, driven by an injected clock.
 */
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Cache, type CallStatus, cache, MemoryStore, trackCacheUsage } from "../src/index.js";
import { RedisStore } from "../src/redis.js";
import { SqliteStore } from "../src/sqlite.js";
import type { Store } from "../src/store/store.js";
import { FakeClock } from "./helpers/fake-clock.js";
import { RedisServer } from "./helpers/redis-server.js";
import { until } from "./helpers/until.js";

const dir = mkdtempSync(join(tmpdir(), "infercache-stale-"));
let redis: RedisServer;
let made = 0;
const opened: Store[] = [];

beforeAll(async () => {
  redis = await RedisServer.start();
});
afterAll(async () => {
  for (const store of opened) await store.close();
  await redis?.kill();
});

const stores: [string, (clock: FakeClock) => Promise<Store>][] = [
  ["MemoryStore", async (clock) => new MemoryStore({ clock })],
  [
    "SqliteStore",
    async (clock) => {
      const store = new SqliteStore({ path: join(dir, `db-${++made}.db`), clock });
      opened.push(store);
      return store;
    },
  ],
  [
    "RedisStore",
    async (clock) => {
      const store = new RedisStore({ url: redis.url, prefix: `stale${++made}:`, clock });
      opened.push(store);
      await store.ready();
      return store;
    },
  ],
];

/** Waits until `n` entries were written: on SQLite and Redis a call returns before its write. */
const written = (fn: { cache: { stats(): { sets: number } } }, n: number) =>
  until(() => fn.cache.stats().sets === n, `${n} entries to be written`);

describe.each(stores)("serving stale on a %s", (_name, open) => {
  it("answers N concurrent stale reads with the stale value and refreshes exactly once", async () => {
    const clock = new FakeClock();
    const store = await open(clock);
    let runs = 0;
    const compute = cache(
      async (prompt: string) => {
        runs++;
        return `${prompt} #${runs}`;
      },
      { store, namespace: "swr", ttl: 1000, staleWhileRevalidate: 5000, clock },
    );
    expect(await compute("q")).toBe("q #1");
    await written(compute, 1);
    clock.advance(1500);
    const statuses: CallStatus[] = Array.from({ length: 8 }, () => ({}));
    const answers = await Promise.all(
      statuses.map((status) => compute.cache.with({ status })("q")),
    );
    expect(answers).toEqual(Array(8).fill("q #1"));
    // In-process stores read before joining a flight: each call is answered stale. On SQLite and
    // Redis the read is part of the flight, so identical calls join the first one's stale answer.
    const sources = statuses.map((s) => s.source);
    expect(sources[0]).toBe("stale");
    for (const source of sources) expect(["stale", "coalesced"]).toContain(source);
    expect(statuses[0]?.ageMs).toBe(1500);
    expect(statuses[0]?.staleMs).toBe(500);
    await until(() => compute.cache.stats().sets === 2, "the background refresh to be stored");
    expect(runs).toBe(2);
    const status: CallStatus = {};
    expect(await compute.cache.with({ status })("q")).toBe("q #2");
    expect(status.source).toBe("hit");
    const stats = compute.cache.stats();
    expect(stats.stale + stats.coalesced).toBe(8);
    expect(runs).toBe(2);
  });

  it("reports a failed refresh as an error event and never hands it to the caller", async () => {
    const clock = new FakeClock();
    const store = await open(clock);
    let runs = 0;
    const compute = cache(
      async (prompt: string) => {
        if (++runs > 1) throw new Error("model down");
        return `${prompt} ok`;
      },
      { store, namespace: "swr-fail", ttl: 1000, staleWhileRevalidate: 5000, clock },
    );
    const errors: { operation: string; error: unknown }[] = [];
    compute.cache.on("error", (event) => errors.push(event));
    await compute("q");
    await written(compute, 1);
    clock.advance(2000);
    expect(await compute("q")).toBe("q ok");
    await until(() => errors.length === 1, "the refresh's failure to be reported");
    expect(errors[0]?.operation).toBe("refresh");
    expect(errors[0]?.error).toEqual(new Error("model down"));
    expect(compute.cache.stats().errors).toBe(1);
    // The failed refresh wrote nothing: the entry is still the stale one, and a new read may
    // try again (one refresh at a time, not one forever).
    expect(await compute("q")).toBe("q ok");
    await until(() => errors.length === 2, "the second refresh's failure");
    expect(runs).toBe(3);
  });

  it("answers with the stale value when computing fails, within the window only", async () => {
    const clock = new FakeClock();
    const store = await open(clock);
    let fail = false;
    let runs = 0;
    const compute = cache(
      async (prompt: string) => {
        runs++;
        if (fail) throw new Error("upstream 503");
        return `${prompt} ok`;
      },
      { store, namespace: "sie", ttl: 1000, staleIfError: 10_000, clock },
    );
    expect(await compute("q")).toBe("q ok");
    await written(compute, 1);
    fail = true;
    clock.advance(999);
    expect(await compute("q")).toBe("q ok"); // fresh: a hit, nothing ran
    expect(runs).toBe(1);
    clock.advance(2);
    const status: CallStatus = {};
    expect(await compute.cache.with({ status })("q")).toBe("q ok");
    expect(status.source).toBe("stale");
    expect(runs).toBe(2);
    clock.advance(10_000);
    await expect(compute("q")).rejects.toThrow("upstream 503");
  });

  it("never extends an entry's life by serving it stale", async () => {
    const clock = new FakeClock();
    const store = await open(clock);
    const compute = cache(
      async (_prompt: string): Promise<string> => {
        throw new Error("always down");
      },
      { store, namespace: "life", ttl: 1000, staleIfError: 3000, clock },
    );
    const writer = cache(async (prompt: string) => `${prompt} v1`, {
      store,
      namespace: "life",
      ttl: 1000,
      staleIfError: 3000,
      clock,
    });
    expect(await writer("q")).toBe("q v1");
    await written(writer, 1);
    const key = compute.cache.key("q");
    const before = await store.get(key, { namespace: "life" });
    for (let i = 0; i < 5; i++) {
      clock.advance(500);
      expect(await compute("q")).toBe("q v1");
    }
    const after = await store.get(key, { namespace: "life" });
    expect(after?.createdAt).toBe(before?.createdAt);
    expect(after?.staleAt).toBe(before?.staleAt);
    expect(after?.expiresAt).toBe(before?.expiresAt);
    expect(compute.cache.stats().sets).toBe(0);
    clock.advance(1500); // 4000 ms after writing: past the fresh second and the three stale ones
    await expect(compute("q")).rejects.toThrow("always down");
  });

  it("never serves a stale entry as fresh to a reader that does not allow stale", async () => {
    const clock = new FakeClock();
    const store = await open(clock);
    let runs = 0;
    const lenient = cache(async (prompt: string) => `${prompt} #${++runs}`, {
      store,
      namespace: "shared",
      ttl: 1000,
      staleWhileRevalidate: 60_000,
      clock,
    });
    const strict = cache(async (prompt: string) => `${prompt} #${++runs}`, {
      store,
      namespace: "shared",
      ttl: 1000,
      clock,
    });
    expect(await lenient("q")).toBe("q #1");
    await written(lenient, 1);
    expect(await strict("q")).toBe("q #1"); // fresh: the same entry
    clock.advance(1000);
    expect(await strict.cache.has("q")).toBe(false);
    const status: CallStatus = {};
    expect(await strict.cache.with({ status })("q")).toBe("q #2");
    expect(status.source).toBe("miss");

    const manual = new Cache<{ answer: string }>({
      store,
      namespace: "manual",
      ttl: 1000,
      staleIfError: 60_000,
      clock,
    });
    await manual.set("k", { answer: "old" });
    expect(await manual.get("k")).toEqual({ answer: "old" });
    clock.advance(1000);
    expect(await manual.get("k")).toBeUndefined();
    expect(await manual.has("k")).toBe(false);
    const keys: unknown[] = [];
    for await (const key of manual.keys()) keys.push(key);
    expect(keys).toEqual([]);
    // getOrSet allows stale: its computation failing falls back to the stale fields.
    const fields = await manual.getOrSet("k", () => {
      throw new Error("down");
    });
    expect(fields).toEqual({ answer: "old" });
  });
});

describe("serving stale on the synchronous path", () => {
  it("keeps a sync function sync: the stale value at once, one refresh after", async () => {
    const clock = new FakeClock();
    let runs = 0;
    const square = cache(
      (n: number) => {
        runs++;
        return n * n + runs / 10;
      },
      { ttl: 1000, staleWhileRevalidate: 5000, clock },
    );
    expect(square(3)).toBe(9.1);
    clock.advance(1000);
    const status: CallStatus = {};
    expect(square.cache.with({ status })(3)).toBe(9.1);
    expect(status.source).toBe("stale");
    expect(square(3)).toBe(9.1);
    expect(square(3)).toBe(9.1);
    expect(runs).toBe(1); // the refresh runs after the caller got its answer
    await until(() => runs === 2 && square.cache.stats().sets === 2, "the refresh");
    expect(square(3)).toBe(9.2);
    expect(runs).toBe(2);
  });

  it("answers a sync function's failure with the stale value", () => {
    const clock = new FakeClock();
    let fail = false;
    const parse = cache(
      (text: string) => {
        if (fail) throw new Error("parser crashed");
        return text.length;
      },
      { ttl: 1000, staleIfError: 1000, clock },
    );
    expect(parse("abc")).toBe(3);
    fail = true;
    clock.advance(1500);
    const status: CallStatus = {};
    expect(parse.cache.with({ status })("abc")).toBe(3);
    expect(status.source).toBe("stale");
    clock.advance(500);
    expect(() => parse("abc")).toThrow("parser crashed");
  });

  it("counts stale answers in trackCacheUsage and the stale event", async () => {
    const clock = new FakeClock();
    const double = cache((n: number) => n * 2, { ttl: 10, staleWhileRevalidate: 1000, clock });
    const events: { ageMs: number; staleMs: number; reason: string }[] = [];
    double.cache.on("stale", (event) => events.push(event));
    double(1);
    clock.advance(25);
    const report = await trackCacheUsage(() => double(1));
    expect(report.result).toBe(2);
    expect(report.stale).toBe(1);
    expect(report.usage).toBe("full");
    expect(events).toEqual([
      expect.objectContaining({ ageMs: 25, staleMs: 15, reason: "revalidate" }),
    ]);
  });
});

describe("stale options", () => {
  it("refuses a stale window without a ttl, naming the fix", () => {
    expect(() => cache((n: number) => n, { staleWhileRevalidate: "1m" })).toThrow(
      /`staleWhileRevalidate` needs a `ttl`.*ttl: "10m"/,
    );
    expect(() => new Cache({ staleIfError: 1000 })).toThrow(/`staleIfError` needs a `ttl`/);
    expect(() => cache((n: number) => n, { ttl: 1000, staleIfError: -1 })).toThrow(
      /Expected `staleIfError`/,
    );
  });
});

describe("export and import of an entry kept to be served stale", () => {
  it("keeps its staleAt, so an imported entry is not fresh until the end of its stale window", async () => {
    const { exportLine, importLine } = await import("../src/cli/store-commands.js");
    const entry = { value: "answer", createdAt: 1000, staleAt: 2000, expiresAt: 9000 };
    const line = JSON.parse(JSON.stringify(exportLine("k", "n", entry))) as unknown;
    expect(importLine(line).entry).toEqual(entry);
  });
});
