import type { Report, Section } from "../report.js";
import { type OpsRow, tieredBench } from "../stores.js";

export const opsTable = (rows: OpsRow[]): string =>
  [
    "| operation | ops/s | median latency |",
    "|---|---:|---:|",
    ...rows.map(
      (r) =>
        `| ${r.name} | ${Math.round(r.opsPerSec).toLocaleString("en-US")} | ${Number.isNaN(r.medianUs) ? "—" : `${r.medianUs.toFixed(1)} µs`} |`,
    ),
  ].join("\n");

export const ops = (rows: OpsRow[], name: string): number => {
  const row = rows.find((r) => r.name === name);
  if (row === undefined) throw new Error(`no row ${name}`);
  return row.opsPerSec;
};

export const tiered: Section = {
  name: "tiered",
  title: "TieredStore",
  async run(report: Report) {
    const rows = await tieredBench();
    const ratio = ops(rows, "MemoryStore get (hit)") / ops(rows, "TieredStore get (memory hit)");
    report.check(
      "TieredStore hit within 1.2x of a MemoryStore hit",
      ratio <= 1.2,
      `${ratio.toFixed(2)}x`,
    );
    report.add(`## TieredStore hit vs MemoryStore hit

${opsTable(rows)}`);
  },
};
