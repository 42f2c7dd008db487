import type { Report, Section } from "../report.js";
import { type OpsRow, sqliteBench, tieredBench } from "../stores.js";

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

export const sqlite: Section = {
  name: "sqlite",
  title: "SQLite",
  async run(report: Report) {
    const result = await sqliteBench();
    const smallGet = ops(result.rows, "SqliteStore get, 100 B");
    const smallSet = ops(result.rows, "SqliteStore set, 100 B");
    report.check(
      "SqliteStore small get >= 100k ops/s",
      smallGet >= 100_000,
      `${Math.round(smallGet).toLocaleString("en-US")} ops/s`,
    );
    report.check(
      "SqliteStore small set >= 20k ops/s",
      smallSet >= 20_000,
      `${Math.round(smallSet).toLocaleString("en-US")} ops/s`,
    );
    report.add(`## SqliteStore vs the seed's JSON file and Keyv + @keyv/sqlite

One WAL file on local disk, values of 100 B and 1 MiB, keys spread over 10,000 entries.

${opsTable(result.rows)}

The seed's file cache (\`load_cache\` + \`json.dump(indent=2)\` on every call), written the same way
in TypeScript: every lookup parses the whole file and every set rewrites it.

${opsTable(result.json)}`);
  },
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
