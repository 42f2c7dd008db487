/**
 * What one benchmark section gives the run: verdicts against the issues' targets and its part of
 * BENCHMARKS.md. Sections live in `bench/sections/`, one file each, and `bench/run.ts` runs them
 * in order (all of them for BENCHMARKS.md, or `--only name,name` to print a few).
 */

export class Report {
  readonly verdicts: string[] = [];
  readonly parts: string[] = [];

  /** A target and whether this run met it. */
  check(label: string, ok: boolean, detail: string): void {
    this.verdicts.push(`| ${label} | ${detail} | ${ok ? "met" : "**missed**"} |`);
    console.log(`${ok ? "met   " : "MISSED"} ${label}: ${detail}`);
  }

  /** Markdown for BENCHMARKS.md: a `## heading` and what was measured. */
  add(markdown: string): void {
    this.parts.push(markdown.trim());
  }
}

export interface Section {
  /** A short name for `--only`. */
  name: string;
  /** What the console says while it runs. */
  title: string;
  run(report: Report): Promise<void>;
}

export const middle = (values: number[]): number =>
  [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)] as number;

export const mb = (n: number): string => `${(n / 1024 / 1024).toFixed(1)} MiB`;

export function by<T extends { name: string }>(rows: T[], name: string): T {
  const row = rows.find((r) => r.name.startsWith(name));
  if (row === undefined) throw new Error(`no row ${name}`);
  return row;
}
