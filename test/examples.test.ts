/**
 * The examples are the README's main job until the gateway lands: run them as a user would
 * (against the built package) and check what they print.
 */
import { execFileSync } from "node:child_process";
import { describe, expect, it } from "vitest";

describe("examples", () => {
  it("run end to end and show hits, normalised keys and prefix reuse", () => {
    const output = execFileSync(process.execPath, ["--import", "tsx", "examples/run-all.ts"], {
      encoding: "utf8",
      // The KV-state example loads the tiny model three times (about 2 s each on a busy 2-core box).
      timeout: 120_000,
    });
    expect(output.match(/⚡ from cache/g)).toHaveLength(4);
    expect(output).toContain('replayed chat states: 12, first "H", last "Hello there!"');
    expect(output).toMatch(
      /" {2}new {3}york " +-> new york: sunny, 18°C \(cache hit\) {2}\[used cache/,
    );
    expect(output).toContain("entries: 2");
    expect(output).toContain("prompt of 122 chars: evaluated 49 new");
    expect(output).toContain("state restored from a prefix equals a cold evaluation: true");
    expect(output).toMatch(
      /queue: 1 running, 4 waiting; a 6th miss rejected: true; a hit answered in \d+\.\d+ ms: "story about dragons"/,
    );
    expect(output).toMatch(
      /40 single calls became [2-5] batches of (16, |\d+, )*\d+; repeats were hits/,
    );
    // llama-cpp-python's caching examples, against LlamaEngine and LlamaStateCache.
    expect(output).toContain(
      "basic: the repeat evaluated 1 prompt token (first: 6), same text: true; cache size: 2 items",
    );
    expect(output).toContain(
      [1, 2, 3, 4]
        .map((i) => `Prompt ${i}: CACHE MISS - New cache size: ${i}`)
        .concat("Prompt 5: CACHE HIT - Cache size: 4", "Cache statistics: hits 1, misses 4")
        .join("\n"),
    );
    expect(output).toContain(
      "performance, second run: no cache evaluated 9 prompt tokens, with cache 1",
    );
    expect(output).toContain(
      "disk: after a restart the cache contains 3 items; fact 0 again evaluated 1 prompt token, same text: true",
    );
    expect(output).toMatch(
      /memory: capacity 16 KiB, \d+ items .* \(within capacity: true\), \d+ on disk/,
    );
    expect(output).toMatch(
      /cleanup: [\d.]+ KiB of state files on disk before clear\(\), 0 files after, 0 items/,
    );
    // The CI recipe: record through the gateway, then replay with the upstream gone.
    expect(output).toContain("record: miss, miss; upstream calls 2");
    expect(output).toContain("replay: hit, hit; upstream calls 0");
    expect(output).toContain("a new request: 504 cache_miss");
  }, 150_000);
});
