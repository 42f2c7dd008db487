/**
 * Tags and purge in the library: `Cache.set(key, value, { tags })`, `getOrSet`, `cache(fn, {
 * tags })` (a list, or a function of the arguments), and `purge({ tag, tags, olderThan })` on a
 * `Cache` and on `fn.cache`, counting what went, on an in-process store and on a SQLite file.
 */
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import OpenAI from "openai";
import { describe, expect, it } from "vitest";
import { Cache, cache, MemoryStore } from "../src/index.js";
import { cachingFetch } from "../src/llm.js";
import { SqliteStore } from "../src/sqlite.js";
import { FakeClock } from "./helpers/fake-clock.js";
import { startFakeUpstream } from "./helpers/fake-upstream.js";

const dir = mkdtempSync(join(tmpdir(), "infercache-tags-"));
let files = 0;

describe("Cache with tags", () => {
  it("purges what was set with a tag, and only in this cache", async () => {
    const store = new MemoryStore({ maxSize: 0 });
    const docs = new Cache<{ text: string }>({ store, namespace: "docs" });
    const other = new Cache<{ text: string }>({ store, namespace: "other" });
    await docs.set("a", { text: "a" }, { tags: ["doc:1"] });
    await docs.set("b", { text: "b" }, { tags: ["doc:1", "doc:2"] });
    await docs.set("c", { text: "c" }, { tags: ["doc:2"] });
    await docs.getOrSet("d", () => ({ text: "d" }), { tags: ["doc:1"] });
    await other.set("a", { text: "other" }, { tags: ["doc:1"] });
    expect(await docs.purge({ tag: "doc:1" })).toBe(3);
    expect(await docs.get("a")).toBeUndefined();
    expect(await docs.get("d")).toBeUndefined();
    expect(await docs.get("c")).toEqual({ text: "c" });
    expect(await other.get("a")).toEqual({ text: "other" });
    expect(await docs.purge({ tags: ["doc:2", "doc:9"] })).toBe(1);
  });

  it("purges by age on the cache's clock: a duration or an absolute Date", async () => {
    const clock = new FakeClock();
    const c = new Cache({ clock });
    await c.set("old", { v: 1 });
    clock.advance(10 * 60_000);
    await c.set("recent", { v: 2 }, { tags: ["t"] });
    clock.advance(60_000);
    expect(await c.purge({ olderThan: "5m" })).toBe(1);
    expect(await c.get("old")).toBeUndefined();
    expect(await c.purge({ olderThan: new Date(clock.now()), tag: "nope" })).toBe(0);
    expect(await c.purge({ olderThan: new Date(clock.now()) })).toBe(1);
  });

  it("refuses bad tags on set and an empty purge, naming the option", async () => {
    const c = new Cache();
    await expect(c.set("k", { v: 1 }, { tags: ["two words"] })).rejects.toThrow(
      /Expected `tags\[0\]` to be a tag without whitespace/,
    );
    await expect(c.set("k", { v: 1 }, { tags: "one" as never })).rejects.toThrow(
      /Expected `tags` to be an array of strings/,
    );
    await expect(c.purge({})).rejects.toThrow(/`tag`, `tags` or `olderThan`/);
    await expect(c.purge({ tag: "a", tags: ["b"] })).rejects.toThrow(/either `tag` or `tags`/);
    await expect(c.purge({ olderThan: "soon" as never })).rejects.toThrow(/`olderThan`/);
  });
});

describe("cache(fn) with tags", () => {
  it("tags every entry with a static list; fn.cache.purge counts and drops them", async () => {
    let runs = 0;
    const embed = cache((text: string) => `${text}:${++runs}`, { tags: ["embed-v1"] });
    embed("a");
    embed("b");
    expect(embed("a")).toBe("a:1");
    expect(await embed.cache.purge({ tag: "embed-v1" })).toBe(2);
    expect(embed("a")).toBe("a:3");
  });

  it("takes tags from the arguments, with the call's `this`", async () => {
    const store = new SqliteStore({ path: join(dir, `f${++files}.db`) });
    let runs = 0;
    const answer = cache(
      async (doc: { id: string }, question: string) => `${doc.id}/${question}/${++runs}`,
      { store, namespace: "answers", tags: (doc) => [`doc:${doc.id}`] },
    );
    await answer({ id: "1" }, "q1");
    await answer({ id: "1" }, "q2");
    await answer({ id: "2" }, "q1");
    expect(await answer.cache.purge({ tag: "doc:1" })).toBe(2);
    expect(await answer({ id: "2" }, "q1")).toBe("2/q1/3");
    expect(await answer({ id: "1" }, "q1")).toBe("1/q1/4");
    await store.close();
  });

  it("tags generator records too", async () => {
    const stream = cache(
      function* (n: number) {
        for (let i = 0; i < n; i++) yield i;
      },
      { tags: ["stream"] },
    );
    expect([...stream(3)]).toEqual([0, 1, 2]);
    expect(await stream.cache.purge({ tags: ["stream"] })).toBe(1);
  });

  it("refuses bad tags: at construction for a list, at the call for a function's result", async () => {
    expect(() => cache((x: number) => x, { tags: ["a,b"] })).toThrow(
      /Expected `tags\[0\]` to be a tag without whitespace, commas/,
    );
    expect(() => cache((x: number) => x, { tags: 3 as never })).toThrow(
      /Expected `tags` to be an array of tags or a function/,
    );
    const bad = cache((x: number) => x, { tags: () => [""] });
    expect(() => bad(1)).toThrow(/Expected `tags\[0\]` to be a string of 1 to 200 characters/);
  });
});

describe("cachingFetch with tags", () => {
  it("stores x-infercache-tags and the model's tag; fetch.cache.purge drops them", async () => {
    const upstream = await startFakeUpstream();
    try {
      const fetch = cachingFetch({ store: new MemoryStore({ maxSize: 0 }) });
      const openai = new OpenAI({
        apiKey: "sk-lib",
        baseURL: upstream.baseURL,
        fetch,
        maxRetries: 0,
      });
      const ask = async (model: string, content: string, tags?: string) => {
        const { response } = await openai.chat.completions
          .create(
            { model, messages: [{ role: "user", content }], temperature: 0 },
            tags === undefined ? {} : { headers: { "x-infercache-tags": tags } },
          )
          .withResponse();
        return response.headers.get("x-infercache");
      };
      expect(await ask("m1", "one", "faq")).toBe("miss");
      expect(await ask("m1", "two")).toBe("miss");
      expect(await ask("m2", "three")).toBe("miss");
      expect(upstream.received.every((r) => r.headers["x-infercache-tags"] === undefined)).toBe(
        true,
      );
      expect(await fetch.cache.purge({ tag: "faq" })).toBe(1);
      expect(await fetch.cache.purge({ model: "m1" })).toBe(1);
      expect(await ask("m2", "three")).toBe("hit");
      expect(await ask("m1", "two")).toBe("miss");
      await expect(fetch.cache.purge({})).rejects.toThrow(/`tag`, `tags` or `olderThan`/);
    } finally {
      await upstream.close();
    }
  });
});
