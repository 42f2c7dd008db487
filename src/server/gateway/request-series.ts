/**
 * The dashboard's time series: one point a second for the last `seconds` (10 minutes), in a
 * ring of fixed size, so memory does not grow with uptime or traffic. A point closes when its
 * second is over; only closed points are reported (the current second is still counting).
 *
 * Per point: requests (every outcome), requests by route, answers served from the cache (hit,
 * coalesced) out of the cacheable ones (those and miss, partial: the hit rate), the running
 * totals of time and tokens saved at its end, and the p50/p99 of upstream latency (misses and
 * bypasses finished in that second, as the Prometheus histogram counts them).
 */

import type { Clock } from "../../base/clock.js";
import type { LlmResult } from "../../llm/call.js";
import { LatencySketch } from "./latency-sketch.js";

/** What `window()` reports: aligned columns, point `i` is the second `start + i`. */
export interface SeriesWindow {
  /** Unix time (seconds) of the first point. */
  start: number;
  requests: number[];
  /** Answers served from the cache (hit, coalesced, stale). */
  served: number[];
  /** Requests that could be served from the cache (hit, coalesced, stale, miss, partial). */
  cacheable: number[];
  /** Running total at the end of each second. */
  timeSavedSeconds: number[];
  /** Running total at the end of each second. */
  tokensSaved: number[];
  /** Upstream latency of the answers finished that second, ms (null: none). */
  p50Ms: (number | null)[];
  p99Ms: (number | null)[];
  /** Requests a second by route. */
  routes: Record<string, number[]>;
}

/** Routes beyond this many (the gateway has about ten) are counted in the totals only. */
const MAX_ROUTES = 32;

export class RequestSeries {
  /** Closed seconds reported, and slots held (those and the second being counted). */
  readonly #keep: number;
  readonly #size: number;
  readonly #clock: Clock;
  readonly #requests: number[];
  readonly #served: number[];
  readonly #cacheable: number[];
  readonly #timeSaved: number[];
  readonly #tokensSaved: number[];
  readonly #p50: (number | null)[];
  readonly #p99: (number | null)[];
  readonly #routes = new Map<string, number[]>();
  /** The second being counted, and the first one this series saw (it reports none before). */
  #current: number;
  readonly #first: number;
  #latency = new LatencySketch();
  #timeSavedTotal = 0;
  #tokensSavedTotal = 0;

  constructor(clock: Clock, seconds = 600) {
    this.#keep = seconds;
    this.#size = seconds + 1;
    this.#clock = clock;
    const zeros = () => new Array<number>(this.#size).fill(0);
    this.#requests = zeros();
    this.#served = zeros();
    this.#cacheable = zeros();
    this.#timeSaved = zeros();
    this.#tokensSaved = zeros();
    this.#p50 = new Array<number | null>(this.#size).fill(null);
    this.#p99 = new Array<number | null>(this.#size).fill(null);
    this.#current = this.#now();
    this.#first = this.#current;
  }

  record(result: LlmResult): void {
    this.#advance();
    const slot = this.#slot(this.#current);
    this.#requests[slot] = (this.#requests[slot] as number) + 1;
    const served =
      result.outcome === "hit" || result.outcome === "coalesced" || result.outcome === "stale";
    if (served) this.#served[slot] = (this.#served[slot] as number) + 1;
    if (served || result.outcome === "miss" || result.outcome === "partial")
      this.#cacheable[slot] = (this.#cacheable[slot] as number) + 1;
    if (result.outcome === "miss" || result.outcome === "bypass")
      this.#latency.add(result.durationMs);
    this.#timeSavedTotal += result.savedMs / 1000;
    this.#tokensSavedTotal += result.savedTokens;
    this.#timeSaved[slot] = this.#timeSavedTotal;
    this.#tokensSaved[slot] = this.#tokensSavedTotal;
    let route = this.#routes.get(result.route);
    if (route === undefined && this.#routes.size < MAX_ROUTES) {
      route = new Array<number>(this.#size).fill(0);
      this.#routes.set(result.route, route);
    }
    if (route !== undefined) route[slot] = (route[slot] as number) + 1;
  }

  /** The closed points of the last `seconds` (at most the series' length), oldest first. */
  window(seconds = this.#keep): SeriesWindow {
    this.#advance();
    const end = this.#current; // exclusive: the current second is still counting
    const start = Math.max(this.#first, end - Math.min(seconds, this.#keep));
    const column = <T>(ring: T[]): T[] => {
      const out: T[] = [];
      for (let second = start; second < end; second++) out.push(ring[this.#slot(second)] as T);
      return out;
    };
    const routes: Record<string, number[]> = {};
    for (const [name, ring] of this.#routes) routes[name] = column(ring);
    return {
      start,
      requests: column(this.#requests),
      served: column(this.#served),
      cacheable: column(this.#cacheable),
      timeSavedSeconds: column(this.#timeSaved).map(round3),
      tokensSaved: column(this.#tokensSaved),
      p50Ms: column(this.#p50),
      p99Ms: column(this.#p99),
      routes,
    };
  }

  #now(): number {
    return Math.floor(this.#clock.now() / 1000);
  }

  #slot(second: number): number {
    return ((second % this.#size) + this.#size) % this.#size;
  }

  /** Closes the seconds that are over and clears their slots for reuse. */
  #advance(): void {
    const now = this.#now();
    if (now <= this.#current) return;
    const closing = this.#slot(this.#current);
    this.#p50[closing] = roundMs(this.#latency.quantile(0.5));
    this.#p99[closing] = roundMs(this.#latency.quantile(0.99));
    if (this.#latency.count > 0) this.#latency = new LatencySketch();
    // A gap longer than the ring clears all of it: at most `size` slots are touched.
    const from = Math.max(this.#current + 1, now - this.#size + 1);
    for (let second = from; second <= now; second++) {
      const slot = this.#slot(second);
      this.#requests[slot] = 0;
      this.#served[slot] = 0;
      this.#cacheable[slot] = 0;
      this.#timeSaved[slot] = this.#timeSavedTotal;
      this.#tokensSaved[slot] = this.#tokensSavedTotal;
      this.#p50[slot] = null;
      this.#p99[slot] = null;
      for (const ring of this.#routes.values()) ring[slot] = 0;
    }
    this.#current = now;
  }
}

function roundMs(ms: number | undefined): number | null {
  return ms === undefined ? null : Math.round(ms * 10) / 10;
}

function round3(value: number): number {
  return Math.round(value * 1000) / 1000;
}
