/**
 * One call, one key wherever it is shown: `status.key`, the events and `fn.cache.key()` (was:
 * the status showed the in-memory short key, holding argument text, and the handle the SHA-256).
 */
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { Cache, type CallStatus, cache, hashKey } from "../src/index.js";
import { SqliteStore } from "../src/sqlite.js";

const hex = /^[0-9a-f]{64}$/;

describe("one call, one key wherever it is shown", () => {
  it("in memory: status.key, hit/miss/set events and fn.cache.key() agree, with no argument text", () => {
    const f = cache((prompt: string, temperature: number) => `${prompt}@${temperature}`);
    const shown: string[] = [];
    f.cache.on("miss", (e) => shown.push(e.key));
    f.cache.on("set", (e) => shown.push(e.key));
    f.cache.on("hit", (e) => shown.push(e.key));
    const miss: CallStatus = {};
    const hit: CallStatus = {};
    f.cache.with({ status: miss })("a secret prompt", 0.5);
    f.cache.with({ status: hit })("a secret prompt", 0.5);
    const key = f.cache.key("a secret prompt", 0.5);
    expect(key).toMatch(hex);
    expect(miss.key).toBe(key);
    expect(hit.key).toBe(key);
    expect(shown).toEqual([key, key, key]);
    expect(hit.source).toBe("hit");
    // The canonical key of the argument list, as every store would hash it.
    expect(key).toBe(hashKey(["a secret prompt", 0.5], { context: "" }));
  });

  it("an eviction from memory names the evicted call by the same key", () => {
    const f = cache((prompt: string) => prompt.length, { maxSize: 1 });
    const evicted: string[] = [];
    f.cache.on("evict", (e) => evicted.push(e.key));
    f("first secret prompt");
    f("second");
    expect(evicted).toEqual([f.cache.key("first secret prompt")]);
  });

  it("with a version, the shown key carries it (and differs from the unversioned one)", () => {
    const g = (x: number) => x;
    const v1 = cache(g, { version: 1 });
    const v2 = cache(g, { version: 2 });
    const status: CallStatus = {};
    v1.cache.with({ status })(3);
    expect(status.key).toBe(v1.cache.key(3));
    expect(v1.cache.key(3)).not.toBe(v2.cache.key(3));
  });

  it("on a SQLite store the shown key is the stored key", async () => {
    const store = new SqliteStore({ path: join(mkdtempSync(join(tmpdir(), "ic-key-")), "c.db") });
    try {
      const f = cache(async (x: { q: string }) => x.q.length, { store, namespace: "k" });
      const status: CallStatus = {};
      await f.cache.with({ status })({ q: "hello" });
      expect(status.key).toBe(f.cache.key({ q: "hello" }));
      const stored: string[] = [];
      for await (const [key] of store.entries({ namespace: "k" })) stored.push(key);
      expect(stored).toEqual([status.key]);
    } finally {
      await store.close();
    }
  });

  it("a manual Cache's events show the canonical key of what was given", async () => {
    const c = new Cache<{ v: number }>();
    const shown: string[] = [];
    c.on("set", (e) => shown.push(e.key));
    c.on("hit", (e) => shown.push(e.key));
    await c.set("prompt text", { v: 1 });
    await c.get("prompt text");
    const key = hashKey("prompt text");
    expect(shown).toEqual([key, key]);
  });
});
