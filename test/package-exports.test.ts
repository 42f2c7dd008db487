/**
 * Imports the built package by its own name, through package.json `exports`, the way users do.
 * `npm test` builds before running tests.
 */
import { describe, expect, it } from "vitest";

describe("the published package", () => {
  it("exports the public names from dist through `exports`", async () => {
    const pkg = (await import("infercache")) as Record<string, unknown>;
    for (const name of [
      "cache",
      "Cache",
      "hashKey",
      "MemoryStore",
      "runInSession",
      "endSession",
      "trackCacheUsage",
      "currentSignal",
      "UnhashableError",
      "StoreError",
      "RadixTree",
      "parseSize",
      "parseDuration",
    ]) {
      expect(pkg[name], name).toBeDefined();
    }
    const { cache, hashKey } = pkg as typeof import("../src/index.js");
    expect(hashKey(1)).toBe("4f62b774ad6ae7db92cea67634b7ba8747131cda3173e928b0e99869080f053a");
    const double = cache((x: number) => x * 2);
    expect(double(2)).toBe(4);
  });

  it("ships type declarations beside the code", async () => {
    const { existsSync } = await import("node:fs");
    expect(existsSync(new URL("../dist/index.d.ts", import.meta.url))).toBe(true);
    expect(existsSync(new URL("../dist/cache/cache-fn.d.ts", import.meta.url))).toBe(true);
  });
});
