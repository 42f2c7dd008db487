import { execFileSync } from "node:child_process";
import { mb, type Report, type Section } from "../report.js";

export const maxMemory: Section = {
  name: "max-memory",
  title: "maxMemory (own process)",
  async run(report: Report) {
    const memory = JSON.parse(
      execFileSync(process.execPath, ["--expose-gc", "--import", "tsx", "bench/max-memory.ts"], {
        encoding: "utf8",
      }),
    ) as Record<string, number>;
    const growth = memory.growthOverBudget as number;
    report.check(
      "maxMemory 64mb: heap growth within 25% of the budget",
      growth <= 1.25,
      `${(growth * 100).toFixed(0)}% of budget`,
    );
    report.add(`## maxMemory holds: \`maxMemory: "64mb"\` filled with 2x that in mixed values

| written | entries kept | estimate | measured heap growth | growth / budget | evictions |
|---:|---:|---:|---:|---:|---:|
| ${mb(memory.writtenBytes as number)} | ${memory.entries} | ${mb(memory.estimateBytes as number)} | ${mb(memory.heapGrowthBytes as number)} | ${(growth * 100).toFixed(0)}% | ${memory.evictions} |

Mixed values: Float32Array tensors of 8–20 KiB, generated strings of 4–9 KB, and objects of 40
\`{ label, score, id }\` records. Heap growth is V8 heap used plus ArrayBuffer memory after a full GC.`);
  },
};
