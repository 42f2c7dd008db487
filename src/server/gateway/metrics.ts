/**
 * Gateway metrics: counters by route and outcome, upstream failures by reason, an upstream
 * latency histogram, time and tokens saved, entries and bytes; rendered in Prometheus' text
 * format and as JSON (`snapshot()`) for the admin API and the dashboard. For the dashboard's
 * charts also: one point a second for the last 10 minutes (`series()`), totals and latency
 * percentiles by route (in the snapshot, for anyone) and by model (`models()`, for admins only:
 * model names belong to tenants).
 */

import { type Clock, systemClock } from "../../base/clock.js";
import type { LlmResult } from "../../llm/call.js";
import type { PipelineStats } from "../../llm/pipeline.js";
import type { StoreHealth } from "../../store/store.js";
import { Breakdown, type BreakdownView, cutLabel } from "./breakdown.js";
import { LatencySketch } from "./latency-sketch.js";
import { RequestSeries, type SeriesWindow } from "./request-series.js";

const BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];

export class Metrics {
  readonly requests = new Map<string, number>();
  readonly #latency = new Array<number>(BUCKETS.length).fill(0);
  #latencyCount = 0;
  #latencySum = 0;
  timeSavedSeconds = 0;
  tokensSaved = 0;
  /** Upstream failures by reason (`refused`, `first-byte-timeout`, …) and other gateway errors. */
  readonly failures = new Map<string, number>();
  #stats: (() => PipelineStats) | undefined;
  #health: (() => StoreHealth) | undefined;
  readonly #series: RequestSeries;
  readonly #upstream = new LatencySketch();
  readonly #routes = new Breakdown(32);
  readonly #models = new Breakdown(200);

  constructor(options: { clock?: Clock | undefined } = {}) {
    this.#series = new RequestSeries(options.clock ?? systemClock);
  }

  attach(stats: () => PipelineStats, health?: () => StoreHealth): void {
    this.#stats = stats;
    this.#health = health;
  }

  /** Counts a failure that turned into an error answer. */
  recordFailure(reason: string): void {
    this.failures.set(reason, (this.failures.get(reason) ?? 0) + 1);
  }

  get errors(): number {
    let total = 0;
    for (const count of this.failures.values()) total += count;
    return total;
  }

  record(result: LlmResult): void {
    const label = `route="${result.route}",outcome="${result.outcome}"`;
    this.requests.set(label, (this.requests.get(label) ?? 0) + 1);
    if (result.outcome === "miss" || result.outcome === "bypass") {
      const seconds = result.durationMs / 1000;
      this.#latencyCount++;
      this.#latencySum += seconds;
      for (const [i, bound] of BUCKETS.entries())
        if (seconds <= bound) this.#latency[i] = (this.#latency[i] as number) + 1;
      this.#upstream.add(result.durationMs);
    }
    this.timeSavedSeconds += result.savedMs / 1000;
    this.tokensSaved += result.savedTokens;
    this.#series.record(result);
    this.#routes.record(result.route, result);
    this.#models.record(result.model === undefined ? null : cutLabel(result.model), result);
  }

  /** One point a second for the last `seconds` (at most 600), for the dashboard's charts. */
  series(seconds?: number): SeriesWindow {
    return this.#series.window(seconds);
  }

  /**
   * Totals by model, the `top` busiest as rows (the 200 first models seen are tracked, later
   * ones are counted as others). Admin only: a model name is a tenant's data.
   */
  models(top = 25): BreakdownView {
    return this.#models.view(top);
  }

  snapshot(): GatewaySnapshot {
    const stats = this.#stats?.();
    const requests: Record<string, number> = {};
    for (const [label, count] of this.requests) requests[label] = count;
    return {
      requests,
      hits: stats?.hits ?? 0,
      misses: stats?.misses ?? 0,
      coalesced: stats?.coalesced ?? 0,
      stale: stats?.stale ?? 0,
      bypassed: stats?.bypassed ?? 0,
      errors: this.errors + (stats?.errors ?? 0),
      entries: stats?.entries ?? 0,
      bytes: stats?.bytes ?? 0,
      timeSavedSeconds: this.timeSavedSeconds,
      tokensSaved: this.tokensSaved,
      failures: Object.fromEntries(this.failures),
      store: this.#health?.() ?? { state: "ok" },
      upstreamLatencyMs: {
        p50: rounded(this.#upstream.quantile(0.5)),
        p99: rounded(this.#upstream.quantile(0.99)),
      },
      routes: this.#routes.view(),
    };
  }

  render(): string {
    const stats = this.#stats?.();
    const lines: string[] = [];
    const metric = (name: string, type: string, help: string, samples: [string, number][]) => {
      lines.push(`# HELP ${name} ${help}`, `# TYPE ${name} ${type}`);
      for (const [labels, value] of samples)
        lines.push(`${name}${labels === "" ? "" : `{${labels}}`} ${value}`);
    };
    metric("infercache_requests_total", "counter", "Cacheable requests by route and outcome.", [
      ...this.requests,
    ]);
    metric("infercache_hits_total", "counter", "Answers served from the cache.", [
      ["", stats?.hits ?? 0],
    ]);
    metric("infercache_misses_total", "counter", "Answers computed upstream.", [
      ["", stats?.misses ?? 0],
    ]);
    metric(
      "infercache_coalesced_total",
      "counter",
      "Requests that joined an identical one in flight.",
      [["", stats?.coalesced ?? 0]],
    );
    metric(
      "infercache_stale_total",
      "counter",
      "Answers served stale (stale-while-revalidate, stale-if-error).",
      [["", stats?.stale ?? 0]],
    );
    metric("infercache_bypassed_total", "counter", "Requests not cached by policy.", [
      ["", stats?.bypassed ?? 0],
    ]);
    metric("infercache_errors_total", "counter", "Store and upstream errors.", [
      ["", this.errors + (stats?.errors ?? 0)],
    ]);
    metric(
      "infercache_upstream_failures_total",
      "counter",
      "Requests that failed upstream (or in the gateway), by reason.",
      [...this.failures].map(([reason, count]) => [`reason="${reason}"`, count]),
    );
    metric(
      "infercache_store_degraded",
      "gauge",
      "1 while the store is degraded (calls run uncached).",
      [["", this.#health?.().state === "degraded" ? 1 : 0]],
    );
    metric("infercache_entries", "gauge", "Entries held.", [["", stats?.entries ?? 0]]);
    metric("infercache_bytes", "gauge", "Bytes held.", [["", stats?.bytes ?? 0]]);
    metric(
      "infercache_time_saved_seconds_total",
      "counter",
      "Recorded upstream time of answers served from the cache.",
      [["", this.timeSavedSeconds]],
    );
    metric("infercache_tokens_saved_total", "counter", "Tokens of answers served from the cache.", [
      ["", this.tokensSaved],
    ]);
    lines.push(
      "# HELP infercache_upstream_latency_seconds Time of requests answered upstream.",
      "# TYPE infercache_upstream_latency_seconds histogram",
    );
    for (const [i, bound] of BUCKETS.entries())
      lines.push(`infercache_upstream_latency_seconds_bucket{le="${bound}"} ${this.#latency[i]}`);
    lines.push(`infercache_upstream_latency_seconds_bucket{le="+Inf"} ${this.#latencyCount}`);
    lines.push(
      `infercache_upstream_latency_seconds_sum ${this.#latencySum}`,
      `infercache_upstream_latency_seconds_count ${this.#latencyCount}`,
    );
    return `${lines.join("\n")}\n`;
  }
}

/** What `snapshot()` reports. */
export interface GatewaySnapshot {
  requests: Record<string, number>;
  hits: number;
  misses: number;
  coalesced: number;
  /** Answers served stale (stale-while-revalidate, stale-if-error). */
  stale: number;
  bypassed: number;
  errors: number;
  entries: number;
  bytes: number;
  timeSavedSeconds: number;
  tokensSaved: number;
  failures: Record<string, number>;
  store: StoreHealth;
  /** Upstream latency since start (misses and bypasses), within 2%; null before the first. */
  upstreamLatencyMs: { p50: number | null; p99: number | null };
  /** Totals by route (route names are the gateway's, not its clients'). */
  routes: BreakdownView;
}

function rounded(ms: number | undefined): number | null {
  return ms === undefined ? null : Math.round(ms * 10) / 10;
}
