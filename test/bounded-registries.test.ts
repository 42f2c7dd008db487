/**
 * What the cache layer keeps on the side stays bounded: wrappers made again per call, and the
 * prefix indexes of sessions (regressions: 4 KB kept per re-wrap, two radix trees kept per
 * session forever). Measured in a child process under --expose-gc.
 */
import { execFile } from "node:child_process";
import { promisify } from "node:util";
import { describe, expect, it } from "vitest";

const run = promisify(execFile);

async function growth(scenario: string, n: number): Promise<number> {
  const { stdout } = await run(
    process.execPath,
    ["--expose-gc", "--import", "tsx", "test/helpers/heap-probe.ts", scenario, String(n)],
    { encoding: "utf8", timeout: 60_000 },
  );
  return (JSON.parse(stdout) as { growthBytes: number }).growthBytes;
}

describe("bounded side tables", () => {
  it("cache(fn, { key }) with a fresh key lambda per call keeps no cache per call", async () => {
    // Before: ~4 KB a call stayed reachable (200k calls held 768 MB).
    const bytes = await growth("rewrap", 20_000);
    expect(bytes / 20_000).toBeLessThan(200);
  }, 60_000);

  it("a per-session Cache keeps no prefix index for sessions whose entries are gone", async () => {
    const bytes = await growth("prefix-sessions", 20_000);
    expect(bytes / 20_000).toBeLessThan(200);
  }, 60_000);
});
