import { describe, expect, it } from "vitest";
import { type Entry, MemoryStore, type StoreEvent } from "../src/index.js";
import { AsyncStore } from "./helpers/async-store.js";
import { FakeClock } from "./helpers/fake-clock.js";
import { runStoreContract } from "./store-contract.js";

runStoreContract("MemoryStore", () => new MemoryStore({ maxSize: 0 }), { live: true });
runStoreContract("AsyncStore (test helper)", () => new AsyncStore({ maxSize: 0 }), { live: true });

const scope = { namespace: "n" };
const entry = (value: unknown, extra: Partial<Entry> = {}): Entry => ({
  value,
  createdAt: 0,
  ...extra,
});

describe("MemoryStore eviction by entry count", () => {
  it("defaults to 128 entries and evicts the least recently used", () => {
    const store = new MemoryStore();
    for (let i = 0; i < 130; i++) store.setSync(`k${i}`, scope, entry(i));
    expect(store.count).toBe(128);
    expect(store.getSync("k0", scope)).toBeUndefined();
    expect(store.getSync("k1", scope)).toBeUndefined();
    expect(store.getSync("k2", scope)?.value).toBe(2);
  });

  it("keeps an entry that was read recently", () => {
    const store = new MemoryStore({ maxSize: 2 });
    store.setSync("a", scope, entry("a"));
    store.setSync("b", scope, entry("b"));
    store.getSync("a", scope);
    store.setSync("c", scope, entry("c"));
    expect(store.getSync("a", scope)?.value).toBe("a");
    expect(store.getSync("b", scope)).toBeUndefined();
  });

  it("treats maxSize 0 as unlimited", () => {
    const store = new MemoryStore({ maxSize: 0 });
    for (let i = 0; i < 1000; i++) store.setSync(`k${i}`, scope, entry(i));
    expect(store.count).toBe(1000);
  });

  it("rejects a negative or fractional maxSize at construction", () => {
    expect(() => new MemoryStore({ maxSize: -1 })).toThrow(
      "Expected `maxSize` to be a non-negative integer (0 = unlimited), got `-1` (number)",
    );
    expect(() => new MemoryStore({ maxSize: 1.5 })).toThrow(/maxSize/);
  });
});

describe("MemoryStore eviction by bytes", () => {
  it("evicts the oldest entries until the estimate fits maxMemory", () => {
    // Gradio's test: two 800-byte arrays do not fit together. With the view, buffer and entry
    // overhead counted, each takes about 1.2 kB, so the budget is 2 kB here.
    const store = new MemoryStore({ maxSize: 0, maxMemory: "2kb" });
    store.setSync("a", scope, entry(new Float64Array(100)));
    expect(store.bytes).toBeGreaterThan(800);
    store.setSync("b", scope, entry(new Float64Array(100)));
    expect(store.getSync("a", scope)).toBeUndefined();
    expect(store.getSync("b", scope)).toBeDefined();
    expect(store.count).toBe(1);
    expect(store.bytes).toBeLessThanOrEqual(2048);
  });

  it("refuses an entry larger than maxMemory instead of flushing the cache", () => {
    const store = new MemoryStore({ maxSize: 0, maxMemory: "4kb" });
    const evictions: StoreEvent[] = [];
    store.subscribe((event) => evictions.push(event));
    store.setSync("small", scope, entry("x"));
    expect(store.setSync("huge", scope, entry(new Uint8Array(10_000)))).toBe("too-large");
    expect(store.getSync("small", scope)?.value).toBe("x");
    expect(store.getSync("huge", scope)).toBeUndefined();
    expect(evictions).toHaveLength(0);
  });

  it("drops the old value when its replacement is too large (it would be stale)", () => {
    const store = new MemoryStore({ maxMemory: "4kb" });
    store.setSync("k", scope, entry("old"));
    expect(store.setSync("k", scope, entry(new Uint8Array(10_000)))).toBe("too-large");
    expect(store.getSync("k", scope)).toBeUndefined();
  });

  it("accounts bytes exactly back to zero after deletes and clears", () => {
    const store = new MemoryStore({ maxSize: 0 });
    for (let i = 0; i < 50; i++) store.setSync(`k${i}`, scope, entry({ text: "t".repeat(i) }));
    for (let i = 0; i < 25; i++) store.deleteSync(`k${i}`, scope);
    store.setSync("k30", scope, entry("replaced"));
    store.clearSync();
    expect(store.bytes).toBe(0);
    expect(store.count).toBe(0);
    expect(store.usage("n")).toEqual({ entries: 0, bytes: 0 });
  });

  it("reports evictions with their reason", () => {
    const store = new MemoryStore({ maxSize: 1 });
    const reasons: string[] = [];
    store.subscribe((event) => reasons.push(`${event.key}:${event.reason}`));
    store.setSync("a", scope, entry(1));
    store.setSync("b", scope, entry(2));
    expect(reasons).toEqual(["a:size"]);
  });
});

describe("MemoryStore TTL", () => {
  it("serves an entry until it expires, then forgets it", () => {
    const clock = new FakeClock();
    const store = new MemoryStore({ ttl: "10m", clock });
    store.setSync("k", scope, entry("v", { createdAt: clock.now() }));
    clock.advance(9 * 60_000);
    expect(store.getSync("k", scope)?.value).toBe("v");
    clock.advance(60_000);
    expect(store.getSync("k", scope)).toBeUndefined();
    expect(store.count).toBe(0);
  });

  it("lets an entry's own expiresAt win over the store default", () => {
    const clock = new FakeClock();
    const store = new MemoryStore({ ttl: "1h", clock });
    store.setSync(
      "k",
      scope,
      entry("v", { createdAt: clock.now(), expiresAt: clock.now() + 1000 }),
    );
    clock.advance(1000);
    expect(store.getSync("k", scope)).toBeUndefined();
  });

  it("purges every expired entry on demand", () => {
    const clock = new FakeClock();
    const store = new MemoryStore({ maxSize: 0, clock });
    for (let i = 0; i < 10; i++) {
      store.setSync(
        `k${i}`,
        scope,
        entry(i, { expiresAt: clock.now() + (i % 2 === 0 ? 10 : 1e9) }),
      );
    }
    clock.advance(10);
    expect(store.purgeExpired()).toBe(5);
    expect(store.count).toBe(5);
  });
});

describe("MemoryStore per-session quota", () => {
  it("evicts a greedy session's own entries, not everyone else's", () => {
    const store = new MemoryStore({ maxSize: 100, maxSizePerSession: 10 });
    const victim = { namespace: "n", session: "victim" };
    const greedy = { namespace: "n", session: "greedy" };
    for (let i = 0; i < 5; i++) store.setSync(`v${i}`, victim, entry(i));
    for (let i = 0; i < 500; i++) store.setSync(`g${i}`, greedy, entry(i));
    for (let i = 0; i < 5; i++) expect(store.getSync(`v${i}`, victim)?.value).toBe(i);
    expect(store.sizeSync({ namespace: "n", session: "greedy" })).toBe(10);
    expect(store.getSync("g499", greedy)?.value).toBe(499);
  });

  it("bounds a session's bytes", () => {
    const store = new MemoryStore({ maxSize: 0, maxMemoryPerSession: "8kb" });
    const s = { namespace: "n", session: "s" };
    for (let i = 0; i < 10; i++) store.setSync(`k${i}`, s, entry(new Uint8Array(2000)));
    expect(store.sizeSync({ namespace: "n", session: "s" })).toBeLessThan(10);
    expect(store.bytes).toBeLessThanOrEqual(8 * 1024);
  });
});

describe("MemoryStore options", () => {
  it("names the option and the accepted forms for a bad size string", () => {
    expect(() => new MemoryStore({ maxMemory: "lots" })).toThrow(
      /Expected `maxMemory` to be a size such as 1048576, "100kb", "512mb", "2gb" or "1.5GiB".*got `lots` \(string\)/,
    );
    expect(() => new MemoryStore({ ttl: "soon" })).toThrow(
      /Expected `ttl` to be milliseconds or a duration/,
    );
  });
});

describe("MemoryStore against a reference LRU (property)", () => {
  it("holds the same keys in the same order under random sets, gets and deletes", async () => {
    const fc = (await import("fast-check")).default;
    const op = fc.oneof(
      fc.record({
        kind: fc.constant("set" as const),
        key: fc.integer({ min: 0, max: 9 }),
        session: fc.constantFrom(undefined, "s1", "s2"),
      }),
      fc.record({
        kind: fc.constant("get" as const),
        key: fc.integer({ min: 0, max: 9 }),
        session: fc.constantFrom(undefined, "s1", "s2"),
      }),
      fc.record({
        kind: fc.constant("delete" as const),
        key: fc.integer({ min: 0, max: 9 }),
        session: fc.constantFrom(undefined, "s1", "s2"),
      }),
    );
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 6 }),
        fc.array(op, { maxLength: 80 }),
        (maxSize, ops) => {
          const store = new MemoryStore({ maxSize });
          const model: string[] = []; // least recently used first
          const id = (o: { key: number; session: string | undefined }) =>
            `${o.session ?? "-"}/${o.key}`;
          for (const o of ops) {
            const scope =
              o.session === undefined ? { namespace: "n" } : { namespace: "n", session: o.session };
            const name = id(o);
            const at = model.indexOf(name);
            if (o.kind === "set") {
              store.setSync(String(o.key), scope, { value: name, createdAt: 0 });
              if (at >= 0) model.splice(at, 1);
              model.push(name);
              while (model.length > maxSize) model.shift();
            } else if (o.kind === "get") {
              const got = store.getSync(String(o.key), scope);
              expect(got?.value).toBe(at >= 0 ? name : undefined);
              if (at >= 0) {
                model.splice(at, 1);
                model.push(name);
              }
            } else {
              expect(store.deleteSync(String(o.key), scope)).toBe(at >= 0);
              if (at >= 0) model.splice(at, 1);
            }
            expect(store.count).toBe(model.length);
          }
          for (const session of [undefined, "s1", "s2"]) {
            const scope = session === undefined ? { namespace: "n" } : { namespace: "n", session };
            const listed = [...store.entriesSync(scope)].map(([, e]) => e.value);
            expect(listed).toEqual(model.filter((name) => name.startsWith(`${session ?? "-"}/`)));
          }
          store.clearSync();
          expect(store.bytes).toBe(0);
        },
      ),
      { numRuns: 500 },
    );
  });
});
