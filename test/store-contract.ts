/**
 * The contract every Store passes: `runStoreContract(name, makeStore)`. Each backend's test file
 * calls it with a factory for a fresh, empty store (keyv's shared suite is the model).
 */

import { afterEach, describe, expect, it } from "vitest";
import type { Entry, Store } from "../src/index.js";
import { until } from "./helpers/until.js";

export interface ContractOptions {
  /** Whether the store keeps live objects (no serialization), so identity is preserved. */
  live?: boolean;
  /** Whether `entries()` follows use (LRU). Stores over foreign backends list in their own order. */
  lruOrder?: boolean;
}

export function runStoreContract(
  name: string,
  makeStore: () => Store | Promise<Store>,
  options: ContractOptions = {},
): void {
  describe(`${name} store contract`, () => {
    const opened: Store[] = [];
    const open = async () => {
      const store = await makeStore();
      opened.push(store);
      return store;
    };
    afterEach(async () => {
      for (const store of opened.splice(0)) await store.close();
    });
    const a = { namespace: "a" };
    const b = { namespace: "b" };
    const entry = (value: unknown, extra: Partial<Entry> = {}): Entry => ({
      value,
      createdAt: Date.now(),
      ...extra,
    });

    it("returns undefined for a key never set", async () => {
      const store = await open();
      expect(await store.get("missing", a)).toBeUndefined();
    });

    it("returns what was set, with its bookkeeping", async () => {
      const store = await open();
      const createdAt = Date.now();
      expect(
        await store.set("k", a, {
          value: { text: "hi", n: 1 },
          createdAt,
          computeMs: 12.5,
          rawKey: "raw",
        }),
      ).toBe("stored");
      const got = await store.get("k", a);
      expect(got?.value).toEqual({ text: "hi", n: 1 });
      expect(got?.createdAt).toBe(createdAt);
      expect(got?.computeMs).toBe(12.5);
      expect(got?.rawKey).toBe("raw");
    });

    it("keeps null, undefined, false, 0 and empty string as values", async () => {
      const store = await open();
      const values = [null, undefined, false, 0, "", [], {}];
      for (const [i, value] of values.entries()) await store.set(`k${i}`, a, entry(value));
      for (const [i, value] of values.entries()) {
        const got = await store.get(`k${i}`, a);
        expect(got).toBeDefined();
        expect(got?.value).toEqual(value);
      }
    });

    it("replaces a value set twice", async () => {
      const store = await open();
      await store.set("k", a, entry(1));
      await store.set("k", a, entry(2));
      expect((await store.get("k", a))?.value).toBe(2);
      expect(await store.size({ namespace: "a" })).toBe(1);
    });

    it("deletes one key and says whether it was there", async () => {
      const store = await open();
      await store.set("k", a, entry(1));
      await store.set("other", a, entry(2));
      expect(await store.delete("k", a)).toBe(true);
      expect(await store.delete("k", a)).toBe(false);
      expect(await store.get("k", a)).toBeUndefined();
      expect((await store.get("other", a))?.value).toBe(2);
    });

    it("keeps namespaces apart", async () => {
      const store = await open();
      await store.set("k", a, entry("in a"));
      await store.set("k", b, entry("in b"));
      expect((await store.get("k", a))?.value).toBe("in a");
      expect((await store.get("k", b))?.value).toBe("in b");
      expect(await store.clear({ namespace: "a" })).toBe(1);
      expect(await store.get("k", a)).toBeUndefined();
      expect((await store.get("k", b))?.value).toBe("in b");
    });

    it("keeps sessions apart and matches them exactly, never by prefix", async () => {
      const store = await open();
      await store.set("k", { namespace: "a", session: "s" }, entry("s"));
      await store.set("k", { namespace: "a", session: "s:t" }, entry("s:t"));
      await store.set("k", a, entry("shared"));
      expect((await store.get("k", { namespace: "a", session: "s" }))?.value).toBe("s");
      expect(await store.clear({ session: "s" })).toBe(1);
      expect(await store.get("k", { namespace: "a", session: "s" })).toBeUndefined();
      expect((await store.get("k", { namespace: "a", session: "s:t" }))?.value).toBe("s:t");
      expect((await store.get("k", a))?.value).toBe("shared");
    });

    it("counts by scope: everything, a namespace, a session, the shared entries", async () => {
      const store = await open();
      await store.set("1", a, entry(1));
      await store.set("2", { namespace: "a", session: "s" }, entry(2));
      await store.set("3", { namespace: "a", session: "s" }, entry(3));
      await store.set("4", b, entry(4));
      expect(await store.size()).toBe(4);
      expect(await store.size({ namespace: "a" })).toBe(3);
      expect(await store.size({ namespace: "a", session: "s" })).toBe(2);
      expect(await store.size({ namespace: "a", session: null })).toBe(1);
      expect(await store.clear()).toBe(4);
      expect(await store.size()).toBe(0);
    });

    it("does not serve an expired entry", async () => {
      const store = await open();
      await store.set("old", a, entry("old", { expiresAt: Date.now() - 1 }));
      await store.set("new", a, entry("new", { expiresAt: Date.now() + 60_000 }));
      expect(await store.get("old", a)).toBeUndefined();
      expect((await store.get("new", a))?.value).toBe("new");
    });

    it("lists a scope's entries, least recently used first, without expired ones", async () => {
      const store = await open();
      await store.set("x", a, entry(1));
      await store.set("y", a, entry(2));
      await store.set("z", a, entry(3, { expiresAt: Date.now() - 1 }));
      await store.set("w", b, entry(4));
      await store.get("x", a);
      const keys: string[] = [];
      for await (const [key] of store.entries(a)) keys.push(key);
      if (options.lruOrder === false) expect(keys.sort()).toEqual(["x", "y"]);
      else expect(keys).toEqual(["y", "x"]);
    });

    it("stores binary values and nested structures intact", async () => {
      const store = await open();
      const value = {
        tensor: new Float32Array([0.5, -1, 3.25]),
        bytes: new Uint8Array([0, 255, 7]),
        nested: { list: [1, "two", { three: 3n }], when: new Date(0) },
        map: new Map([["k", 1]]),
        set: new Set([1, 2]),
      };
      await store.set("bin", a, entry(value));
      expect((await store.get("bin", a))?.value).toEqual(value);
    });

    describe("purge", () => {
      const purgeOf = (store: Store) => {
        if (store.purge === undefined) throw new Error(`${store.kind} has no purge()`);
        return store.purge.bind(store);
      };
      const has = async (store: Store, key: string, scope = a) =>
        (await store.get(key, scope)) !== undefined;

      it("refuses an empty filter and bad tags, naming what to pass", async () => {
        const purge = purgeOf(await open());
        await expect(purge({})).rejects.toThrow(/`tags` or `olderThan`/);
        await expect(purge({ namespace: "a" })).rejects.toThrow(/use clear/);
        await expect(purge({ tags: [] })).rejects.toThrow(/at least one tag/);
        await expect(purge({ tags: ["has space"] })).rejects.toThrow(/Expected `tags\[0\]`/);
        await expect(purge({ tags: ["x".repeat(201)] })).rejects.toThrow(/200 characters/);
        await expect(purge({ olderThan: Number.NaN })).rejects.toThrow(/`olderThan`/);
      });

      it("removes the entries carrying a tag, in every namespace and session, and counts them", async () => {
        const store = await open();
        const session = { namespace: "a", session: "s1" };
        await store.set("t1", a, entry(1, { tags: ["red", "big"] }));
        await store.set("t2", b, entry(2, { tags: ["red"] }));
        await store.set("t3", session, entry(3, { tags: ["red"] }));
        await store.set("u1", a, entry(4, { tags: ["blue"] }));
        await store.set("u2", a, entry(5));
        expect(await purgeOf(store)({ tags: ["red"] })).toBe(3);
        expect(await has(store, "t1")).toBe(false);
        expect(await has(store, "t2", b)).toBe(false);
        expect(await has(store, "t3", session)).toBe(false);
        expect(await has(store, "u1")).toBe(true);
        expect(await has(store, "u2")).toBe(true);
        expect(await store.size()).toBe(2);
        expect(await purgeOf(store)({ tags: ["red"] })).toBe(0);
      });

      it("matches any of several tags, counting an entry once, and keeps to a namespace when given", async () => {
        const store = await open();
        await store.set("both", a, entry(1, { tags: ["x", "y"] }));
        await store.set("x", a, entry(2, { tags: ["x"] }));
        await store.set("y", b, entry(3, { tags: ["y"] }));
        await store.set("yb", b, entry(4, { tags: ["x"] }));
        expect(await purgeOf(store)({ tags: ["x", "y"], namespace: "a" })).toBe(2);
        expect(await has(store, "y", b)).toBe(true);
        expect(await has(store, "yb", b)).toBe(true);
        expect(await purgeOf(store)({ tags: ["y", "x"] })).toBe(2);
        expect(await store.size()).toBe(0);
      });

      it("with allTags, removes only entries carrying every one of them (and any of `tags`)", async () => {
        const store = await open();
        await store.set("mt", a, entry(1, { tags: ["model:m", "tenant:t", "x"] }));
        await store.set("m", a, entry(2, { tags: ["model:m"] }));
        await store.set("t", b, entry(3, { tags: ["tenant:t"] }));
        await store.set("mt2", b, entry(4, { tags: ["tenant:t", "model:m"] }));
        expect(await purgeOf(store)({ allTags: ["model:m", "tenant:t"], tags: ["x", "y"] })).toBe(
          1,
        );
        expect(await has(store, "mt")).toBe(false);
        expect(await purgeOf(store)({ allTags: ["tenant:t", "model:m"] })).toBe(1);
        expect(await has(store, "m")).toBe(true);
        expect(await has(store, "t", b)).toBe(true);
        expect(await purgeOf(store)({ allTags: ["model:m", "nobody"] })).toBe(0);
        expect(await purgeOf(store)({ allTags: ["model:m"] })).toBe(1);
        await expect(purgeOf(store)({ allTags: [] })).rejects.toThrow(/at least one tag/);
      });

      it("removes entries written before a time, alone or with a tag (AND)", async () => {
        const store = await open();
        const now = Date.now();
        await store.set("old", a, entry(1, { createdAt: now - 10_000 }));
        await store.set("oldTagged", b, entry(2, { createdAt: now - 10_000, tags: ["t"] }));
        await store.set("edge", a, entry(3, { createdAt: now - 5_000 }));
        await store.set("new", a, entry(4, { createdAt: now, tags: ["t"] }));
        expect(await purgeOf(store)({ tags: ["t"], olderThan: now - 5_000 })).toBe(1);
        expect(await has(store, "oldTagged", b)).toBe(false);
        expect(await has(store, "new")).toBe(true);
        // Written exactly at the bound is not older than it.
        expect(await purgeOf(store)({ olderThan: now - 5_000 })).toBe(1);
        expect(await has(store, "old")).toBe(false);
        expect(await has(store, "edge")).toBe(true);
        expect(await purgeOf(store)({ olderThan: now + 1, namespace: "b" })).toBe(0);
        expect(await purgeOf(store)({ olderThan: now + 1 })).toBe(2);
        expect(await store.size()).toBe(0);
      });

      it("goes by the entry as it is now: a rewrite without the tag, or at a new time, is kept", async () => {
        const store = await open();
        const now = Date.now();
        await store.set("k", a, entry(1, { tags: ["t"], createdAt: now - 10_000 }));
        await store.set("k", a, entry(2, { createdAt: now }));
        // (Rewritten in a later millisecond: RedisStore tells versions apart by creation time.)
        await store.set("j", a, entry(3, { tags: ["t"], createdAt: now - 5_000 }));
        await store.set("j", a, entry(4, { tags: ["u"], createdAt: now }));
        expect(await purgeOf(store)({ tags: ["t"] })).toBe(0);
        expect(await purgeOf(store)({ olderThan: now - 1 })).toBe(0);
        expect((await store.get("k", a))?.value).toBe(2);
        expect(await purgeOf(store)({ tags: ["u"] })).toBe(1);
        // Tagged again after a purge: found again.
        await store.set("j", a, entry(5, { tags: ["u"] }));
        expect(await purgeOf(store)({ tags: ["u"] })).toBe(1);
        expect(await has(store, "j")).toBe(false);
      });

      it("skips entries deleted, cleared or expired since they were tagged", async () => {
        const store = await open();
        await store.set("deleted", a, entry(1, { tags: ["t"] }));
        await store.set("cleared", b, entry(2, { tags: ["t"] }));
        const expiresAt = Date.now() + 40;
        await store.set("expiring", a, entry(3, { tags: ["t"], expiresAt }));
        await store.set("kept", a, entry(4, { tags: ["t"] }));
        await store.delete("deleted", a);
        await store.clear({ namespace: "b" });
        await until(async () => !(await has(store, "expiring")), "the tagged entry to expire");
        // Redis drops the key by its own TTL (relative, from when it received the SET), which can
        // end a few ms after the entry's expiresAt: until then the key is there to delete.
        await until(async () => Date.now() > expiresAt + 100, "Redis's TTL to pass as well");
        expect(await purgeOf(store)({ tags: ["t"] })).toBe(1);
        expect(await store.size()).toBe(0);
        expect(await purgeOf(store)({ tags: ["t"] })).toBe(0);
      });
    });

    it("takes keys of any characters", async () => {
      const store = await open();
      const keys = ["", " ", "ключ", "🔑", "a\u0000b", "x".repeat(1000)];
      for (const key of keys) await store.set(key, a, entry(key));
      for (const key of keys) expect((await store.get(key, a))?.value).toBe(key);
    });
  });
}
