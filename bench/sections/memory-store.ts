import type { Result } from "../measure.js";
import { table } from "../measure.js";
import { by, middle, type Report, type Section } from "../report.js";
import { storeOps } from "../store.js";

export const memoryStore: Section = {
  name: "memory-store",
  title: "MemoryStore get/set (3 interleaved rounds)",
  async run(report: Report) {
    const rounds = [storeOps(), storeOps(), storeOps()];
    const store: Result[] = (rounds[0] as Result[]).map((row) => ({
      ...row,
      medianNs: middle(rounds.map((rows) => by(rows, row.name).medianNs)),
      p10Ns: middle(rounds.map((rows) => by(rows, row.name).p10Ns)),
      p90Ns: middle(rounds.map((rows) => by(rows, row.name).p90Ns)),
      opsPerSec: middle(rounds.map((rows) => by(rows, row.name).opsPerSec)),
    }));
    for (const op of ["getSync (hit)", "setSync (replace)", "setSync (insert + evict)"]) {
      const theirsName = `lru-cache ${op.replace("getSync", "get").replace("setSync", "set")}`;
      const ratio = middle(
        rounds.map(
          (rows) => by(rows, `MemoryStore.${op}`).medianNs / by(rows, theirsName).medianNs,
        ),
      );
      report.check(
        `MemoryStore ${op} within 1.5x of lru-cache`,
        ratio <= 1.5,
        `${ratio.toFixed(2)}x lru-cache's time (median of 3 rounds)`,
      );
    }
    report.add(`## MemoryStore vs lru-cache, string keys, 10,000 entries

Medians of 3 interleaved rounds.

${table(store)}`);
  },
};
