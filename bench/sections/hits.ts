import {
  asyncHits,
  chatRequest,
  OBJECT_ENTRIES,
  objectHits,
  syncHits,
  workingSetHits,
} from "../hits.js";
import { formatNs, table } from "../measure.js";
import { by, type Report, type Section } from "../report.js";

export const hits: Section = {
  name: "hits",
  title: "sync and async hits",
  async run(report: Report) {
    const sync = syncHits();
    const ours = by(sync, "infercache");
    report.check("Sync hit median <= 60 ns", ours.medianNs <= 60, formatNs(ours.medianNs));
    for (const other of sync.filter((r) => r !== ours)) {
      const ratio = other.medianNs / ours.medianNs;
      const target = other.name.startsWith("lru-cache") ? 8 : 2;
      report.check(
        `Sync hit >= ${target}x faster than ${other.name}`,
        ratio >= target,
        `${ratio.toFixed(1)}x`,
      );
    }
    const objects = objectHits();
    const oursObject = by(objects, "infercache");
    for (const peer of ["safeStableStringify", "fastJsonStableStringify"]) {
      const other = by(objects, `lru-cache, key ${peer}`);
      const ratio = other.medianNs / oursObject.medianNs;
      report.check(
        `Object-argument hit >= 1x lru-cache keyed by a stable stringify (${peer})`,
        ratio >= 1,
        `${ratio.toFixed(2)}x`,
      );
    }
    const requestBytes = Buffer.byteLength(JSON.stringify(chatRequest(0)));
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

## Sync hit: \`f(request)\` with one parsed chat request

One argument, a parsed chat completion request (${requestBytes} bytes of JSON: model, a system
prompt, five turns with a tool call, sampling settings, two tool schemas), the same object on
every call. Each contender holds the same ${OBJECT_ENTRIES} distinct requests and is hit in
turn. The contenders take their samples in turn and are timed in CPU time, so the machine's
other load reaches them alike. The peers key lru-cache by \`safe-stable-stringify\` and
\`fast-json-stable-stringify\` (content keys that ignore key order, as ours does) and by
\`JSON.stringify(args)\` (which does not: \`{ a, b }\` and \`{ b, a }\` miss each other).

${table(objects)}

## Async hit (awaited)

${table(asyncRows)}`);
  },
};
