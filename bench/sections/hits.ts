import { asyncHits, syncHits, workingSetHits } from "../hits.js";
import { formatNs, table } from "../measure.js";
import { by, type Report, type Section } from "../report.js";

export const hits: Section = {
  name: "hits",
  title: "sync and async hits",
  async run(report: Report) {
    const sync = syncHits();
    const ours = by(sync, "infercache");
    report.check("Sync hit median <= 300 ns", ours.medianNs <= 300, formatNs(ours.medianNs));
    for (const other of sync.filter((r) => r !== ours)) {
      const ratio = other.medianNs / ours.medianNs;
      report.check(`Sync hit >= 2x faster than ${other.name}`, ratio >= 2, `${ratio.toFixed(1)}x`);
    }
    const workingSet = workingSetHits();
    const asyncRows = await asyncHits();
    const asyncRatio = by(asyncRows, "p-memoize").medianNs / by(asyncRows, "infercache").medianNs;
    report.check(
      "Async hit >= 1.5x faster than p-memoize",
      asyncRatio >= 1.5,
      `${asyncRatio.toFixed(1)}x`,
    );
    report.add(`## Sync hit: \`f(prompt: 64-char string, temperature: number)\`

The issue's contenders, all keyed by content the same way (\`JSON.stringify(args)\`).

${table(sync)}

### For the record: memoizee's identity and primitive modes, 1 entry and a working set of 100

memoizee's default mode compares arguments by identity (a new but equal \`Float32Array\` misses)
and scans a list per argument position, so it is as quick as a Map with one entry and slows as
entries grow; \`primitive: true\` joins \`String(arg)\`, so \`1\` and \`"1"\` share a slot. Neither
is a content key, so they are not the target's contenders, but here they are.

${table(workingSet)}

## Async hit (awaited)

${table(asyncRows)}`);
  },
};
