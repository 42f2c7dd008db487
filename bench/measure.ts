/**
 * Batch timing for nanosecond-scale operations: a timer read costs ~30 ns, as much as a cache
 * hit, so each sample times a batch of calls and divides. The median over samples is reported,
 * with the 10th and 90th percentiles to show the spread.
 */

export interface Result {
  name: string;
  /** Median ns per operation. */
  medianNs: number;
  p10Ns: number;
  p90Ns: number;
  opsPerSec: number;
}

export interface MeasureOptions {
  /** Calls per sample. */
  batch?: number;
  /** Samples to take. */
  samples?: number;
  /** Batches run before timing, for the JIT. */
  warmup?: number;
}

export function measureSync(
  name: string,
  fn: (i: number) => unknown,
  options: MeasureOptions = {},
): Result {
  const batch = options.batch ?? 10_000;
  const samples = options.samples ?? 60;
  let sink: unknown;
  for (let w = 0; w < (options.warmup ?? 20); w++) for (let i = 0; i < batch; i++) sink = fn(i);
  const times: number[] = [];
  for (let s = 0; s < samples; s++) {
    const start = process.hrtime.bigint();
    for (let i = 0; i < batch; i++) sink = fn(i);
    times.push(Number(process.hrtime.bigint() - start) / batch);
  }
  keep(sink);
  return summarize(name, times);
}

export async function measureAsync(
  name: string,
  fn: (i: number) => Promise<unknown>,
  options: MeasureOptions = {},
): Promise<Result> {
  const batch = options.batch ?? 2_000;
  const samples = options.samples ?? 40;
  let sink: unknown;
  for (let w = 0; w < (options.warmup ?? 10); w++)
    for (let i = 0; i < batch; i++) sink = await fn(i);
  const times: number[] = [];
  for (let s = 0; s < samples; s++) {
    const start = process.hrtime.bigint();
    for (let i = 0; i < batch; i++) sink = await fn(i);
    times.push(Number(process.hrtime.bigint() - start) / batch);
  }
  keep(sink);
  return summarize(name, times);
}

function summarize(name: string, times: number[]): Result {
  const sorted = [...times].sort((a, b) => a - b);
  const at = (q: number) =>
    sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] as number;
  const medianNs = at(0.5);
  return { name, medianNs, p10Ns: at(0.1), p90Ns: at(0.9), opsPerSec: 1e9 / medianNs };
}

let kept: unknown;
/** Keeps results alive so the JIT cannot drop the work. */
export function keep(value: unknown): void {
  kept = value;
  if (kept === Symbol.for("never")) console.log(kept);
}

export function formatNs(ns: number): string {
  if (ns < 1000) return `${ns.toFixed(0)} ns`;
  if (ns < 1e6) return `${(ns / 1000).toFixed(2)} µs`;
  return `${(ns / 1e6).toFixed(2)} ms`;
}

export function table(rows: Result[]): string {
  const lines = ["| contender | median | p10 | p90 | ops/s |", "|---|---:|---:|---:|---:|"];
  for (const r of rows) {
    lines.push(
      `| ${r.name} | ${formatNs(r.medianNs)} | ${formatNs(r.p10Ns)} | ${formatNs(r.p90Ns)} | ${Math.round(r.opsPerSec).toLocaleString("en-US")} |`,
    );
  }
  return lines.join("\n");
}
