/**
 * Compute times and ages come from the injected clock, like expiry: a test can drive them
 * exactly instead of sleeping and asserting ">= 0".
 */
import { describe, expect, it } from "vitest";
import { Cache, type CallStatus, cache } from "../src/index.js";
import { FakeClock } from "./helpers/fake-clock.js";

describe("time from the injected clock", () => {
  it("cache(fn): a miss's computeMs and a hit's ageMs and computeMs are the clock's", async () => {
    const clock = new FakeClock(1_000);
    const slow = cache(
      async (x: number) => {
        clock.advance(250);
        return x;
      },
      { clock },
    );
    const miss: CallStatus = {};
    await slow.cache.with({ status: miss })(1);
    expect(miss.computeMs).toBe(250);
    clock.advance(40);
    const hit: CallStatus = {};
    await slow.cache.with({ status: hit })(1);
    expect(hit).toMatchObject({ source: "hit", ageMs: 40, computeMs: 250 });
    expect(slow.cache.stats().timeSavedMs).toBe(250);
  });

  it("Cache.getOrSet records the clock's compute time, which a hit then saves", async () => {
    const clock = new FakeClock(5_000);
    const c = new Cache<{ v: number }>({ clock });
    await c.getOrSet("k", () => {
      clock.advance(75);
      return { v: 1 };
    });
    await c.get("k");
    expect(c.stats().timeSavedMs).toBe(75);
  });
});
