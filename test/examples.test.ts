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
      timeout: 30_000,
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
  });
});
