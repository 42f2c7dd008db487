import { shapes } from "../../test/helpers/memory-shapes.js";
import { maxMemoryRun } from "../max-memory.js";
import { mb, type Report, type Section } from "../report.js";

const LIMIT = 1.25;

export const maxMemory: Section = {
  name: "max-memory",
  title: "maxMemory per shape of value (a process per shape)",
  async run(report: Report) {
    const results = await maxMemoryRun();
    const rows: string[] = [];
    for (const r of results) {
      const ok = r.growthOverBudget <= LIMIT;
      const share = `${(r.growthOverBudget * 100).toFixed(0)}%`;
      report.check(`maxMemory 64mb, ${r.shape}: heap growth <= 125% of budget`, ok, share);
      rows.push(
        `| ${r.shape} | ${mb(r.budgetBytes)} | ${mb(r.accountedBytes)} | ${r.entries.toLocaleString("en-US")} | ${mb(r.heapGrowthBytes)} | ${share} | ${ok ? "met" : "**missed**"} |`,
      );
    }
    const described = shapes.map((s) => `- **${s.name}** (${s.api}): ${s.description}`);
    report.add(`## maxMemory holds for every shape of value

Each shape runs in its own process under \`node --expose-gc\`: a \`maxMemory: "64mb"\`,
\`maxSize: 0\` cache is written with fresh values of that shape until it has taken 10x what it
holds. *Accounted* is \`stats().bytes\`, *measured* the growth of V8 heap used plus ArrayBuffer
memory after full GCs, from before the cache was made to the end (the cache, its entries, and
whatever they keep alive).

| shape | budget | accounted | entries kept | measured growth | growth / budget | <= 125% |
|---|---:|---:|---:|---:|---:|---|
${rows.join("\n")}

${described.join("\n")}`);
  },
};
