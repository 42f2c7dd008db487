/**
 * Latency percentiles in bounded memory: durations fall into logarithmic bins (each 4% wider
 * than the last, as in DDSketch), so a percentile is known within 2% of its true value whatever
 * the number of samples, and a sketch holds at most a few hundred counters (one per bin used
 * between 10 µs and 3 hours). Used for the dashboard's p50/p99, per second and per route/model;
 * the Prometheus histogram keeps its own coarse buckets.
 */

/** Relative accuracy of a percentile: the estimate is within this fraction of the true value. */
export const SKETCH_ACCURACY = 0.02;
const GAMMA = (1 + SKETCH_ACCURACY) / (1 - SKETCH_ACCURACY);
const LOG_GAMMA = Math.log(GAMMA);
/** Durations below this (ms) share the lowest bin. */
const MIN_MS = 0.01;

export class LatencySketch {
  readonly #bins = new Map<number, number>();
  #count = 0;

  get count(): number {
    return this.#count;
  }

  add(durationMs: number): void {
    const index = Math.ceil(Math.log(Math.max(durationMs, MIN_MS)) / LOG_GAMMA);
    this.#bins.set(index, (this.#bins.get(index) ?? 0) + 1);
    this.#count++;
  }

  merge(other: LatencySketch): void {
    for (const [index, count] of other.#bins)
      this.#bins.set(index, (this.#bins.get(index) ?? 0) + count);
    this.#count += other.#count;
  }

  /** The `q`-quantile (0..1) by nearest rank, in ms; undefined without samples. */
  quantile(q: number): number | undefined {
    if (this.#count === 0) return undefined;
    const rank = Math.max(1, Math.ceil(q * this.#count));
    let seen = 0;
    for (const index of [...this.#bins.keys()].sort((a, b) => a - b)) {
      seen += this.#bins.get(index) as number;
      // The bin (γ^(i-1), γ^i] is reported by the value within 2% of both of its ends.
      if (seen >= rank) return (2 * GAMMA ** index) / (GAMMA + 1);
    }
    return undefined;
  }
}
