/**
 * Imports the built package by its own name, through package.json `exports`, the way users do.
 * `npm test` builds before running tests.
 */
import { describe, expect, it } from "vitest";

describe("the published package", () => {
  it("exports the public names from dist through `exports`", async () => {
    const pkg = (await import("infercache")) as Record<string, unknown>;
    // DESIGN.md's API, and the errors and helpers that go with it.
    for (const name of [
      "cache",
      "Cache",
      "hashKey",
      "HASH_HOOK",
      "MemoryStore",
      "TieredStore",
      "runInSession",
      "endSession",
      "currentSession",
      "trackCacheUsage",
      "currentSignal",
      "createQueue",
      "limit",
      "PrefixCache",
      "UnhashableError",
      "StoreError",
      "QueueFullError",
      "toKeyv",
      "fromKeyv",
    ]) {
      expect(pkg[name], name).toBeDefined();
    }
    // Internals stay internal: the root barrel is the public surface, on one screen.
    for (const name of ["RadixTree", "Lane", "estimateBytes", "parseSize", "systemClock"]) {
      expect(pkg[name], name).toBeUndefined();
    }
    const { cache, hashKey } = pkg as typeof import("../src/index.js");
    expect(hashKey(1)).toBe("4f62b774ad6ae7db92cea67634b7ba8747131cda3173e928b0e99869080f053a");
    const double = cache((x: number) => x * 2);
    expect(double(2)).toBe(4);
  });

  it("every subpath imports through `exports` and has its main names", async () => {
    const subpaths: Record<string, string[]> = {
      "infercache/sqlite": ["SqliteStore"],
      "infercache/redis": ["RedisStore"],
      "infercache/llm": ["cachingFetch", "chatKey"],
      "infercache/ai-sdk": ["cacheMiddleware"],
      "infercache/langchain": ["langChainCache"],
      "infercache/llama": ["LlamaEngine", "LlamaStateCache"],
      "infercache/server": ["createGateway", "serve"],
    };
    for (const [subpath, names] of Object.entries(subpaths)) {
      const mod = (await import(subpath)) as Record<string, unknown>;
      for (const name of names) expect(mod[name], `${subpath} ${name}`).toBeDefined();
    }
  });

  it("ships type declarations beside the code", async () => {
    const { existsSync } = await import("node:fs");
    expect(existsSync(new URL("../dist/index.d.ts", import.meta.url))).toBe(true);
    expect(existsSync(new URL("../dist/cache/cache-fn.d.ts", import.meta.url))).toBe(true);
  });
});
