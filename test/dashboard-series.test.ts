/**
 * What the dashboard's charts are drawn from: the per-second series (a bounded ring), latency
 * percentiles from a bounded sketch, and the totals by route and by model, on a fake clock.
 */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import type { LlmResult } from "../src/llm/call.js";
import { Breakdown } from "../src/server/gateway/breakdown.js";
import { LatencySketch, SKETCH_ACCURACY } from "../src/server/gateway/latency-sketch.js";
import { Metrics } from "../src/server/gateway/metrics.js";
import { RequestSeries } from "../src/server/gateway/request-series.js";
import { FakeClock } from "./helpers/fake-clock.js";

function result(outcome: LlmResult["outcome"], extra: Partial<LlmResult> = {}): LlmResult {
  return {
    route: "chat",
    outcome,
    status: 200,
    stream: false,
    durationMs: outcome === "hit" ? 1 : 100,
    savedMs: outcome === "hit" ? 100 : 0,
    savedTokens: outcome === "hit" ? 10 : 0,
    model: "tiny",
    key: undefined,
    tenant: undefined,
    ...extra,
  };
}

/** The exact `q`-quantile by nearest rank, as the sketch defines it. */
function exact(values: number[], q: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.max(1, Math.ceil(q * sorted.length)) - 1] as number;
}

describe("the per-second series", () => {
  it("reports closed seconds only, one point each, with the hit rate's parts and running totals", () => {
    const clock = new FakeClock(1_700_000_000_000);
    const series = new RequestSeries(clock);
    series.record(result("miss"));
    series.record(result("hit"));
    series.record(result("coalesced"));
    series.record(result("bypass"));
    // The second is still counting: nothing to report yet.
    expect(series.window().requests).toEqual([]);
    clock.advance(1000);
    series.record(result("partial", { route: "embeddings" }));
    clock.advance(2000);
    const window = series.window();
    expect(window.start).toBe(1_700_000_000);
    expect(window.requests).toEqual([4, 1, 0]);
    expect(window.served).toEqual([2, 0, 0]);
    expect(window.cacheable).toEqual([3, 1, 0]);
    // Running totals carry through quiet seconds.
    expect(window.timeSavedSeconds).toEqual([0.1, 0.1, 0.1]);
    expect(window.tokensSaved).toEqual([10, 10, 10]);
    expect(window.routes).toEqual({ chat: [4, 0, 0], embeddings: [0, 1, 0] });
    // Latency counts what went upstream (miss, bypass), as the Prometheus histogram does.
    expect(window.p50Ms[0]).toBeCloseTo(100, -1);
    expect(window.p50Ms.slice(1)).toEqual([null, null]);
    expect(series.window(1).requests).toEqual([0]);
    expect(series.window(1).start).toBe(1_700_000_002);
  });

  it("keeps 10 minutes and no more, and a gap longer than that reads as quiet", () => {
    const clock = new FakeClock(1_700_000_000_000);
    const series = new RequestSeries(clock);
    for (let second = 0; second < 700; second++) {
      series.record(result("miss"));
      clock.advance(1000);
    }
    const window = series.window();
    expect(window.requests.length).toBe(600);
    expect(window.start).toBe(1_700_000_100);
    expect(window.requests.every((count) => count === 1)).toBe(true);
    clock.advance(3_600_000);
    const later = series.window();
    expect(later.requests.length).toBe(600);
    expect(later.requests.every((count) => count === 0)).toBe(true);
    expect(later.p50Ms.every((ms) => ms === null)).toBe(true);
  });

  it("gives each second its own p50 and p99 of upstream latency", () => {
    const clock = new FakeClock(1_700_000_000_000);
    const series = new RequestSeries(clock);
    for (let ms = 1; ms <= 100; ms++) series.record(result("miss", { durationMs: ms }));
    clock.advance(1000);
    series.record(result("miss", { durationMs: 5000 }));
    clock.advance(1000);
    const { p50Ms, p99Ms } = series.window();
    expect(Math.abs((p50Ms[0] as number) - 50) / 50).toBeLessThanOrEqual(SKETCH_ACCURACY + 0.001);
    expect(Math.abs((p99Ms[0] as number) - 99) / 99).toBeLessThanOrEqual(SKETCH_ACCURACY + 0.001);
    expect(Math.abs((p50Ms[1] as number) - 5000) / 5000).toBeLessThanOrEqual(
      SKETCH_ACCURACY + 0.001,
    );
  });
});

describe("the latency sketch", () => {
  it("estimates any quantile within 2% of the exact one", () => {
    fc.assert(
      fc.property(
        fc.array(fc.double({ min: 0.01, max: 1e7, noNaN: true }), { minLength: 1, maxLength: 300 }),
        fc.double({ min: 0, max: 1, noNaN: true }),
        (values, q) => {
          const sketch = new LatencySketch();
          for (const value of values) sketch.add(value);
          const truth = exact(values, q);
          const estimate = sketch.quantile(q) as number;
          return Math.abs(estimate - truth) <= truth * SKETCH_ACCURACY * 1.0001;
        },
      ),
    );
  });

  it("holds a bounded number of bins whatever it is fed", () => {
    const sketch = new LatencySketch();
    for (let i = 0; i < 100_000; i++) sketch.add(Math.random() * 1e7);
    // Bins are 4% wide: 10 µs to 3 h is about 520 of them.
    expect(sketch.count).toBe(100_000);
    const bins = new Set<number>();
    for (let q = 0; q <= 1; q += 0.001) bins.add(sketch.quantile(q) as number);
    expect(bins.size).toBeLessThan(600);
    expect(new LatencySketch().quantile(0.5)).toBeUndefined();
  });
});

describe("the breakdowns", () => {
  it("track a bounded number of labels and count the rest as others", () => {
    const breakdown = new Breakdown(3);
    for (const [i, name] of ["a", "b", "c", "d", "e"].entries()) {
      for (let n = 0; n <= i; n++) breakdown.record(name, result(n === 0 ? "miss" : "hit"));
    }
    const all = breakdown.view();
    expect(all.rows.map((row) => [row.name, row.requests])).toEqual([
      ["c", 3],
      ["b", 2],
      ["a", 1],
    ]);
    expect(all.others?.requests).toBe(4 + 5);
    const top = breakdown.view(1);
    expect(top.rows.map((row) => row.name)).toEqual(["c"]);
    expect(top.others?.requests).toBe(2 + 1 + 9);
    expect(top.others?.served).toBe(1 + 0 + 3 + 4);
  });

  it("come with the metrics: routes in the snapshot, models cut to 64 characters apart", () => {
    const metrics = new Metrics({ clock: new FakeClock() });
    metrics.record(result("miss", { model: "m".repeat(1000) }));
    metrics.record(result("hit", { model: "m".repeat(1000) }));
    metrics.record(result("miss", { route: "embeddings", model: undefined }));
    const snapshot = metrics.snapshot();
    // The fields the admin API and `infercache stats` read are all still there.
    for (const field of ["requests", "hits", "misses", "coalesced", "bypassed", "errors"])
      expect(snapshot).toHaveProperty(field);
    expect(snapshot.routes.rows.map((row) => [row.name, row.requests, row.served])).toEqual([
      ["chat", 2, 1],
      ["embeddings", 1, 0],
    ]);
    expect(snapshot.upstreamLatencyMs.p50).toBeCloseTo(100, -1);
    expect(JSON.stringify(snapshot)).not.toContain("mmm");
    const models = metrics.models();
    expect(models.rows.map((row) => [row.name?.length, row.requests])).toEqual([
      [64, 2],
      [undefined, 1],
    ]);
    expect(models.rows[1]?.name).toBeNull();
  });
});
