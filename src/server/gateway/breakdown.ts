/**
 * Totals since start by one label (route, model): requests, hit rate, time and tokens saved and
 * upstream latency p50/p99. At most `maxNames` labels are tracked; later ones are counted
 * together in an "others" row, so a client that sends a new model name with every request cannot
 * grow the gateway's memory.
 */

import type { LlmResult } from "../../llm/call.js";
import { LatencySketch } from "./latency-sketch.js";

export interface BreakdownRow {
  /** The label; null for the requests that had none (a route without a model field). */
  name: string | null;
  requests: number;
  /** Answers served from the cache (hit, coalesced, stale). */
  served: number;
  /** Requests that could be served from the cache (hit, coalesced, stale, miss, partial). */
  cacheable: number;
  timeSavedSeconds: number;
  tokensSaved: number;
  /** Upstream latency (misses and bypasses), ms; null without any. */
  p50Ms: number | null;
  p99Ms: number | null;
}

export interface BreakdownView {
  /** Rows by requests, most first. */
  rows: BreakdownRow[];
  /** The labels past `maxNames` (or past `top` in this view), counted together; null if none. */
  others: BreakdownRow | null;
}

class Tally {
  requests = 0;
  served = 0;
  cacheable = 0;
  timeSavedSeconds = 0;
  tokensSaved = 0;
  readonly latency = new LatencySketch();

  add(result: LlmResult): void {
    this.requests++;
    const served =
      result.outcome === "hit" || result.outcome === "coalesced" || result.outcome === "stale";
    if (served) this.served++;
    if (served || result.outcome === "miss" || result.outcome === "partial") this.cacheable++;
    if (result.outcome === "miss" || result.outcome === "bypass")
      this.latency.add(result.durationMs);
    this.timeSavedSeconds += result.savedMs / 1000;
    this.tokensSaved += result.savedTokens;
  }

  merge(other: Tally): void {
    this.requests += other.requests;
    this.served += other.served;
    this.cacheable += other.cacheable;
    this.timeSavedSeconds += other.timeSavedSeconds;
    this.tokensSaved += other.tokensSaved;
    this.latency.merge(other.latency);
  }

  row(name: string | null): BreakdownRow {
    const ms = (q: number) => {
      const value = this.latency.quantile(q);
      return value === undefined ? null : Math.round(value * 10) / 10;
    };
    return {
      name,
      requests: this.requests,
      served: this.served,
      cacheable: this.cacheable,
      timeSavedSeconds: Math.round(this.timeSavedSeconds * 1000) / 1000,
      tokensSaved: this.tokensSaved,
      p50Ms: ms(0.5),
      p99Ms: ms(0.99),
    };
  }
}

export class Breakdown {
  readonly #tallies = new Map<string | null, Tally>();
  readonly #others = new Tally();
  readonly #maxNames: number;

  constructor(maxNames: number) {
    this.#maxNames = maxNames;
  }

  record(name: string | null, result: LlmResult): void {
    let tally = this.#tallies.get(name);
    if (tally === undefined) {
      if (this.#tallies.size >= this.#maxNames) {
        this.#others.add(result);
        return;
      }
      tally = new Tally();
      this.#tallies.set(name, tally);
    }
    tally.add(result);
  }

  /** The `top` busiest labels as rows, the rest as `others`. */
  view(top = Number.POSITIVE_INFINITY): BreakdownView {
    const sorted = [...this.#tallies].sort((a, b) => b[1].requests - a[1].requests);
    const others = new Tally();
    others.merge(this.#others);
    for (const [, tally] of sorted.slice(top)) others.merge(tally);
    return {
      rows: sorted.slice(0, top).map(([name, tally]) => tally.row(name)),
      others: others.requests === 0 ? null : others.row(null),
    };
  }
}

/** Labels (model names) longer than this are cut, in the breakdown and the dashboard's rows. */
export const MAX_LABEL = 64;

/** A label cut to `MAX_LABEL` characters (an ellipsis marks the cut). */
export function cutLabel(label: string): string {
  return label.length > MAX_LABEL ? `${label.slice(0, MAX_LABEL - 1)}…` : label;
}
