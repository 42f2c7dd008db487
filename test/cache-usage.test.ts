import { describe, expect, it } from "vitest";
import { Cache, cache, trackCacheUsage } from "../src/index.js";

describe("trackCacheUsage", () => {
  it("reports 'full' when the result came wholly from a cache (Gradio's 'from cache')", async () => {
    const classify = cache(async (x: string) => {
      await new Promise((resolve) => setTimeout(resolve, 20));
      return `label:${x}`;
    });
    const cold = await trackCacheUsage(() => classify("a"));
    expect(cold.usage).toBe("none");
    expect(cold.misses).toBe(1);
    const warm = await trackCacheUsage(() => classify("a"));
    expect(warm.result).toBe("label:a");
    expect(warm.usage).toBe("full");
    expect(warm.savedMs).toBeGreaterThanOrEqual(15);
    expect(warm.durationMs).toBeLessThan(warm.savedMs);
  });

  it("reports 'partial' when a cached step inside hit but other cached work ran (Gradio's 'used cache')", async () => {
    const retrieve = cache(async (q: string) => `passages for ${q}`);
    const answer = cache(
      async (q: string, tone: string) => `${await retrieve(q)} in a ${tone} tone`,
    );
    await answer("q", "formal");
    const report = await trackCacheUsage(() => answer("q", "casual"));
    expect(report.usage).toBe("partial");
    expect(report.hits).toBe(1);
    expect(report.misses).toBe(1);
  });

  it("reports 'partial' for a manual Cache hit inside a function that ran", async () => {
    const c = new Cache<{ forecast: string }>();
    const lookup = async (city: string) => {
      const hit = await c.get(city);
      if (hit) return hit.forecast;
      await c.set(city, { forecast: "sunny" });
      return "sunny";
    };
    expect((await trackCacheUsage(() => lookup("paris"))).usage).toBe("none");
    expect((await trackCacheUsage(() => lookup("paris"))).usage).toBe("partial");
  });

  it("counts coalesced joins as served from cache", async () => {
    let release!: () => void;
    const gate = new Promise<void>((resolve) => {
      release = resolve;
    });
    const slow = cache(async (x: number) => {
      await gate;
      return x;
    });
    const first = slow(1);
    const joined = trackCacheUsage(() => slow(1));
    release();
    await first;
    const report = await joined;
    expect(report.usage).toBe("full");
    expect(report.coalesced).toBe(1);
  });

  it("keeps concurrent trackers apart", async () => {
    const fn = cache(async (x: number) => x);
    await fn(1);
    const [hit, miss] = await Promise.all([
      trackCacheUsage(() => fn(1)),
      trackCacheUsage(() => fn(2)),
    ]);
    expect(hit.usage).toBe("full");
    expect(miss.usage).toBe("none");
  });

  it("sees through generators consumed inside", async () => {
    const gen = cache(async function* (n: number) {
      for (let i = 0; i < n; i++) yield i;
    });
    const consume = async () => {
      const out: number[] = [];
      for await (const v of gen(2)) out.push(v);
      return out;
    };
    await consume();
    const report = await trackCacheUsage(consume);
    expect(report.result).toEqual([0, 1]);
    expect(report.usage).toBe("full");
  });
});
