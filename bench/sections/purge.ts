import { type PurgeRow, purgeBench } from "../purge.js";
import type { Report, Section } from "../report.js";

export const purge: Section = {
  name: "purge",
  title: "purge by tag on 100k entries (SQLite, Redis)",
  async run(report: Report) {
    const rows: PurgeRow[] = await purgeBench();
    report.add(`## Purge by tag: 100,000 entries, one tag naming 10,000 of them

Each store holds 100,000 entries tagged \`model:m<i % 10>\` and \`tenant:t<i % 100>\` (a ~100-byte
value each); one purge of a model tag removes 10,000. Next to each store's indexed purge, the scan
a store without the index must run. Medians of 3 rounds, each on a freshly seeded store
(SQLite: a file; Redis: one redis-server on loopback), on a machine shared with other work.

| what | ms per purge | entries removed |
|---|---:|---:|
${rows.map((r) => `| ${r.name} | ${r.ms.toFixed(0)} | ${r.removed} |`).join("\n")}`);
  },
};
