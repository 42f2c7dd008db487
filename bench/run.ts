/**
 * `npm run bench`: runs every benchmark section side by side in one run (the ones that need a
 * fresh heap or their own server in their own processes) and writes BENCHMARKS.md with the
 * machine, its load, the date, the command and the verdicts.
 *
 * `npm run bench -- --only redis,sqlite` runs just those sections and prints their markdown
 * instead of writing BENCHMARKS.md (a partial run must not replace the full one).
 */
import { writeFileSync } from "node:fs";
import os from "node:os";
import { mb, Report, type Section } from "./report.js";
import { audioKey } from "./sections/audio-key.js";
import { gateway } from "./sections/gateway.js";
import { hash } from "./sections/hash.js";
import { hits } from "./sections/hits.js";
import { llm } from "./sections/llm.js";
import { maxMemory } from "./sections/max-memory.js";
import { memoryStore } from "./sections/memory-store.js";
import { prefix } from "./sections/prefix.js";
import { protocolHits } from "./sections/protocol-hits.js";
import { purge } from "./sections/purge.js";
import { batching, queue } from "./sections/queue.js";
import { redis } from "./sections/redis.js";
import { sealed } from "./sections/sealed.js";
import { sqlite } from "./sections/sqlite.js";
import { tiered } from "./sections/stores.js";
import { tracing } from "./sections/tracing.js";

// `npm run bench` builds first: the gateway's own processes run `dist/`, the code that ships
// (through tsx, every closure a request makes also pays for esbuild's `__name` helper).
process.env.INFERCACHE_BENCH_DIST ??= "1";

const sections: Section[] = [
  hits,
  hash,
  memoryStore,
  maxMemory,
  sqlite,
  redis,
  tiered,
  sealed,
  queue,
  batching,
  llm,
  prefix,
  gateway,
  protocolHits,
  audioKey,
  purge,
  // Last: it registers OpenTelemetry's globals (and removes them), which every later hit would see.
  tracing,
];

const onlyFlag = process.argv.indexOf("--only");
const only = onlyFlag === -1 ? undefined : (process.argv[onlyFlag + 1] ?? "").split(",");
const unknown = only?.filter((name) => !sections.some((s) => s.name === name)) ?? [];
if (unknown.length > 0) {
  console.error(
    `unknown section ${unknown.join(", ")}; the sections are ${sections.map((s) => s.name).join(", ")}`,
  );
  process.exit(2);
}

const report = new Report();
const load = os.loadavg();
for (const section of sections) {
  if (only !== undefined && !only.includes(section.name)) continue;
  console.log(`${section.title}…`);
  await section.run(report);
}
const loadAfter = os.loadavg();

const cpu = os.cpus()[0]?.model ?? "unknown CPU";
const markdown = `# Benchmarks

Measured side by side in one run with \`npm run bench\` (which builds, then runs \`bench/run.ts\`;
sections that need a fresh heap or their own servers run in their own processes).

- Date: ${new Date().toISOString().slice(0, 10)}
- Machine: ${cpu}, ${os.cpus().length} cores, ${mb(os.totalmem())} RAM, ${os.platform()} ${os.release()}
- Load average (1 min) at the start and the end of the run: ${load[0]?.toFixed(2)} / ${loadAfter[0]?.toFixed(2)}
- Node ${process.version}; every peer at the version in package-lock.json

Timings are medians over samples of batched calls (a timer read costs as much as a hit), with
the 10th and 90th percentiles of the samples. Shared machines are noisy: compare rows of the same
run, not runs of different days; absolute figures hold only for this machine at this load.

## Verdicts (targets from the issues)

| target | measured | |
|---|---|---|
${report.verdicts.join("\n")}

${report.parts.join("\n\n")}
`;
if (only === undefined) {
  writeFileSync("BENCHMARKS.md", markdown);
  console.log("wrote BENCHMARKS.md");
} else {
  console.log(markdown);
}
