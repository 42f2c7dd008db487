import { hashThroughput } from "../hash.js";
import type { Report, Section } from "../report.js";

export const hash: Section = {
  name: "hash",
  title: "hashKey throughput",
  async run(report: Report) {
    const hashes = hashThroughput();
    for (const row of hashes) {
      if (row.size === "64 MiB") {
        report.check(
          "hashKey 64 MiB >= 90% of node:crypto SHA-256",
          row.ratio >= 0.9,
          `${(row.ratio * 100).toFixed(0)}%`,
        );
      }
    }
    report.add(`## hashKey on a Float32Array vs node:crypto SHA-256 over the same bytes

| size | hashKey | node:crypto | ratio |
|---|---:|---:|---:|
${hashes.map((r) => `| ${r.size} | ${r.oursMBs.toFixed(0)} MiB/s | ${r.cryptoMBs.toFixed(0)} MiB/s | ${(r.ratio * 100).toFixed(0)}% |`).join("\n")}`);
  },
};
