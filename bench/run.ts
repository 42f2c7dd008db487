/**
 * `npm run bench`: runs every benchmark side by side in one process (the maxMemory check in a
 * fresh one) and writes BENCHMARKS.md with the machine, the date, the command and the verdicts.
 */
import { execFileSync } from "node:child_process";
import { writeFileSync } from "node:fs";
import os from "node:os";
import type { GatewayRow } from "./gateway.js";
import { hashThroughput } from "./hash.js";
import { asyncHits, syncHits, workingSetHits } from "./hits.js";
import type { LlmBenchRow } from "./llm.js";
import { formatNs, type Result, table } from "./measure.js";
import { lookupBench, type MemoryRow, type TtftRow } from "./prefix.js";
import { type BatchRow, hitBypass, queueOverhead } from "./queue.js";
import { storeOps } from "./store.js";
import { type OpsRow, redisBench, sqliteBench, tieredBench } from "./stores.js";

const verdicts: string[] = [];
function check(label: string, ok: boolean, detail: string): void {
  verdicts.push(`| ${label} | ${detail} | ${ok ? "met" : "**missed**"} |`);
  console.log(`${ok ? "met   " : "MISSED"} ${label}: ${detail}`);
}
const by = (rows: Result[], name: string) => {
  const row = rows.find((r) => r.name.startsWith(name));
  if (row === undefined) throw new Error(`no row ${name}`);
  return row;
};

console.log("sync hits…");
const sync = syncHits();
const ours = by(sync, "infercache");
check("Sync hit median <= 300 ns", ours.medianNs <= 300, formatNs(ours.medianNs));
for (const other of sync.filter((r) => r !== ours)) {
  const ratio = other.medianNs / ours.medianNs;
  check(`Sync hit >= 2x faster than ${other.name}`, ratio >= 2, `${ratio.toFixed(1)}x`);
}

const workingSet = workingSetHits();

console.log("async hits…");
const asyncRows = await asyncHits();
const asyncRatio = by(asyncRows, "p-memoize").medianNs / by(asyncRows, "infercache").medianNs;
check("Async hit >= 1.5x faster than p-memoize", asyncRatio >= 1.5, `${asyncRatio.toFixed(1)}x`);

console.log("hashKey throughput…");
const hashes = hashThroughput();
for (const row of hashes) {
  if (row.size === "64 MiB") {
    check(
      "hashKey 64 MiB >= 90% of node:crypto SHA-256",
      row.ratio >= 0.9,
      `${(row.ratio * 100).toFixed(0)}%`,
    );
  }
}

console.log("store get/set (3 interleaved rounds)…");
const storeRounds = [storeOps(), storeOps(), storeOps()];
const middle = (values: number[]) => [...values].sort((a, b) => a - b)[1] as number;
const store: Result[] = (storeRounds[0] as Result[]).map((row) => ({
  ...row,
  medianNs: middle(storeRounds.map((rows) => by(rows, row.name).medianNs)),
  p10Ns: middle(storeRounds.map((rows) => by(rows, row.name).p10Ns)),
  p90Ns: middle(storeRounds.map((rows) => by(rows, row.name).p90Ns)),
  opsPerSec: middle(storeRounds.map((rows) => by(rows, row.name).opsPerSec)),
}));
for (const op of ["getSync (hit)", "setSync (replace)", "setSync (insert + evict)"]) {
  const theirsName = `lru-cache ${op.replace("getSync", "get").replace("setSync", "set")}`;
  const ratio = middle(
    storeRounds.map(
      (rows) => by(rows, `MemoryStore.${op}`).medianNs / by(rows, theirsName).medianNs,
    ),
  );
  check(
    `MemoryStore ${op} within 1.5x of lru-cache`,
    ratio <= 1.5,
    `${ratio.toFixed(2)}x lru-cache's time (median of 3 rounds)`,
  );
}

console.log("maxMemory…");
const memory = JSON.parse(
  execFileSync(process.execPath, ["--expose-gc", "--import", "tsx", "bench/max-memory.ts"], {
    encoding: "utf8",
  }),
) as Record<string, number>;
const growth = memory.growthOverBudget as number;
check(
  "maxMemory 64mb: heap growth within 25% of the budget",
  growth <= 1.25,
  `${(growth * 100).toFixed(0)}% of budget`,
);

console.log("SQLite…");
const sqlite = await sqliteBench();
const ops = (rows: OpsRow[], name: string) => {
  const row = rows.find((r) => r.name === name);
  if (row === undefined) throw new Error(`no row ${name}`);
  return row.opsPerSec;
};
const smallGet = ops(sqlite.rows, "SqliteStore get, 100 B");
const smallSet = ops(sqlite.rows, "SqliteStore set, 100 B");
check(
  "SqliteStore small get >= 100k ops/s",
  smallGet >= 100_000,
  `${Math.round(smallGet).toLocaleString("en-US")} ops/s`,
);
check(
  "SqliteStore small set >= 20k ops/s",
  smallSet >= 20_000,
  `${Math.round(smallSet).toLocaleString("en-US")} ops/s`,
);

console.log("Redis (3 interleaved rounds)…");
const redisRounds: OpsRow[][] = [];
for (let round = 0; round < 3; round++) redisRounds.push(await redisBench());
const median = (values: number[]) =>
  [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)] as number;
const redisRatio = (ours: string, raw: string) =>
  median(redisRounds.map((rows) => ops(rows, raw) / ops(rows, ours)));
const redisRows: OpsRow[] = (redisRounds[0] as OpsRow[]).map((row) => ({
  name: row.name,
  opsPerSec: median(redisRounds.map((rows) => ops(rows, row.name))),
  medianUs: median(
    redisRounds.map((rows) => rows.find((r) => r.name === row.name)?.medianUs ?? Number.NaN),
  ),
}));
for (const [ours, raw, label] of [
  [
    "RedisStore get, 100 B",
    "raw ioredis GET, 100 B",
    "RedisStore get latency within 1.3x of raw ioredis GET",
  ],
  [
    "RedisStore set, 100 B",
    "raw ioredis SET, 100 B",
    "RedisStore set latency within 1.3x of raw ioredis SET",
  ],
  [
    "RedisStore get, 64 in flight",
    "raw ioredis GET, 64 in flight",
    "RedisStore get throughput within 1.3x of raw ioredis GET",
  ],
] as const) {
  const ratio = redisRatio(ours, raw);
  check(label, ratio <= 1.3, `${ratio.toFixed(2)}x raw's time (median of 3 rounds)`);
}

console.log("TieredStore…");
const tiered = await tieredBench();
const tieredRatio =
  ops(tiered, "MemoryStore get (hit)") / ops(tiered, "TieredStore get (memory hit)");
check(
  "TieredStore hit within 1.2x of a MemoryStore hit",
  tieredRatio <= 1.2,
  `${tieredRatio.toFixed(2)}x`,
);

console.log("queue overhead…");
const overhead = await queueOverhead();
for (const concurrency of [1, 16]) {
  const at = overhead.filter((r) => r.concurrency === concurrency);
  const ours = at.find((r) => r.name.startsWith("infercache"))?.ms as number;
  for (const peer of at.filter((r) => !r.name.startsWith("infercache"))) {
    const ratio = ours / peer.ms;
    check(
      `Queue overhead at concurrency ${concurrency} within 1.5x of ${peer.name}`,
      ratio <= 1.5,
      `${ratio.toFixed(2)}x ${peer.name}'s time`,
    );
  }
}
console.log("hit bypass…");
const bypass = await hitBypass();
const bypassRow = bypass[0] as {
  label: string;
  p50Us: number;
  p90Us: number;
  p99Us: number;
  maxUs: number;
};
check(
  "Cache hits answer in microseconds while the queue is full (p99)",
  bypassRow.p99Us < 1000,
  `p99 ${bypassRow.p99Us.toFixed(1)} µs`,
);
console.log("batching (embeddings upstream with node-llama-cpp)…");
// In a fresh process: after the store benchmarks, this one's heap and GC would slow the client.
const batching = JSON.parse(
  execFileSync(process.execPath, ["--import", "tsx", "bench/batching-main.ts"], {
    encoding: "utf8",
  }),
) as BatchRow[];
const rate = (name: string, concurrency: number) =>
  batching.find((r) => r.name.startsWith(name) && r.concurrency === concurrency)
    ?.perSecond as number;
const speedup = rate("infercache batch", 1) / rate("unbatched", 1);
check("Batching at concurrency 1 >= 4x unbatched", speedup >= 4, `${speedup.toFixed(1)}x`);

console.log("LLM layer through the OpenAI SDK…");
const llm = JSON.parse(
  execFileSync(process.execPath, ["--import", "tsx", "bench/llm-main.ts"], { encoding: "utf8" }),
) as { rows: LlmBenchRow[]; overheadMs: number };
check(
  "cachingFetch overhead on a miss under 1 ms beyond the upstream (p50)",
  llm.overheadMs < 1,
  `${llm.overheadMs.toFixed(2)} ms`,
);

console.log("prefix cache…");
const lookups = lookupBench();
const at10k = lookups.find((r) => r.entries === 10_000) as { speedup: number; treeUs: number };
check(
  "PrefixCache longestPrefix >= 1000x a linear scan at 10k entries",
  at10k.speedup >= 1000,
  `${Math.round(at10k.speedup)}x`,
);
const treeTimes = lookups.map((r) => r.treeUs);
const lookupGrowth = (treeTimes[2] as number) / (treeTimes[0] as number);
check(
  "PrefixCache lookup time independent of N (100k vs 1k entries; the scan grows ~100x)",
  lookupGrowth <= 2,
  `${treeTimes.map((t) => `${t.toFixed(1)} µs`).join(" / ")} (x${lookupGrowth.toFixed(2)})`,
);
const prefixRun = JSON.parse(
  execFileSync(process.execPath, ["--expose-gc", "--import", "tsx", "bench/prefix-main.ts"], {
    encoding: "utf8",
  }),
) as { memory: MemoryRow; ttft: TtftRow[] };
const accountedRatio = prefixRun.memory.accountedBytes / prefixRun.memory.heapGrowthBytes;
check(
  "PrefixCache accounted bytes within 10% of measured heap (10k entries)",
  Math.abs(1 - accountedRatio) <= 0.1,
  `${(accountedRatio * 100).toFixed(0)}% of measured`,
);

console.log("gateway under load (autocannon)…");
const gatewayRows = JSON.parse(
  execFileSync(process.execPath, ["--import", "tsx", "bench/gateway-main.ts"], {
    encoding: "utf8",
  }),
) as GatewayRow[];
const gatewayHit = gatewayRows[0] as GatewayRow;
const sqliteHit = gatewayRows[1] as GatewayRow;
const bareRoute = gatewayRows[gatewayRows.length - 1] as GatewayRow;
check(
  "Gateway cache hits >= 10k req/s at 50 connections",
  gatewayHit.requestsPerSec >= 10_000,
  `${Math.round(gatewayHit.requestsPerSec).toLocaleString("en-US")} req/s (${((100 * gatewayHit.requestsPerSec) / bareRoute.requestsPerSec).toFixed(0)}% of a bare Fastify route)`,
);
check(
  "Gateway cache hit p99 < 10 ms at 50 connections",
  gatewayHit.p99Ms < 10,
  `p99 ${gatewayHit.p99Ms} ms`,
);
check(
  "Gateway cache hits >= 10k req/s with the CLI's SQLite store",
  sqliteHit.requestsPerSec >= 10_000 && sqliteHit.p99Ms < 10,
  `${Math.round(sqliteHit.requestsPerSec).toLocaleString("en-US")} req/s, p99 ${sqliteHit.p99Ms} ms`,
);

const opsTable = (rows: OpsRow[]) =>
  [
    "| operation | ops/s | median latency |",
    "|---|---:|---:|",
    ...rows.map(
      (r) =>
        `| ${r.name} | ${Math.round(r.opsPerSec).toLocaleString("en-US")} | ${Number.isNaN(r.medianUs) ? "—" : `${r.medianUs.toFixed(1)} µs`} |`,
    ),
  ].join("\n");

const mb = (n: number) => `${(n / 1024 / 1024).toFixed(1)} MiB`;
const cpu = os.cpus()[0]?.model ?? "unknown CPU";
const markdown = `# Benchmarks

Measured side by side in one run with \`npm run bench\` (which builds, then runs \`bench/run.ts\`;
the maxMemory check runs in its own process under \`node --expose-gc\`).

- Date: ${new Date().toISOString().slice(0, 10)}
- Machine: ${cpu}, ${os.cpus().length} cores, ${mb(os.totalmem())} RAM, ${os.platform()} ${os.release()}
- Node ${process.version}; lru-cache, memoizee and p-memoize at the versions in package-lock.json

Timings are medians over samples of batched calls (a timer read costs as much as a hit), with
the 10th and 90th percentiles of the samples. Shared machines are noisy: compare rows of the same
run, not runs of different days.

## Verdicts (targets from the issues)

| target | measured | |
|---|---|---|
${verdicts.join("\n")}

## Sync hit: \`f(prompt: 64-char string, temperature: number)\`

The issue's contenders, all keyed by content the same way (\`JSON.stringify(args)\`).

${table(sync)}

### For the record: memoizee's identity and primitive modes, 1 entry and a working set of 100

memoizee's default mode compares arguments by identity (a new but equal \`Float32Array\` misses)
and scans a list per argument position, so it is as quick as a Map with one entry and slows as
entries grow; \`primitive: true\` joins \`String(arg)\`, so \`1\` and \`"1"\` share a slot. Neither
is a content key, so they are not the target's contenders, but here they are.

${table(workingSet)}

## Async hit (awaited)

${table(asyncRows)}

## hashKey on a Float32Array vs node:crypto SHA-256 over the same bytes

| size | hashKey | node:crypto | ratio |
|---|---:|---:|---:|
${hashes.map((r) => `| ${r.size} | ${r.oursMBs.toFixed(0)} MiB/s | ${r.cryptoMBs.toFixed(0)} MiB/s | ${(r.ratio * 100).toFixed(0)}% |`).join("\n")}

## MemoryStore vs lru-cache, string keys, 10,000 entries

Medians of 3 interleaved rounds.

${table(store)}

## maxMemory holds: \`maxMemory: "64mb"\` filled with 2x that in mixed values

| written | entries kept | estimate | measured heap growth | growth / budget | evictions |
|---:|---:|---:|---:|---:|---:|
| ${mb(memory.writtenBytes as number)} | ${memory.entries} | ${mb(memory.estimateBytes as number)} | ${mb(memory.heapGrowthBytes as number)} | ${(growth * 100).toFixed(0)}% | ${memory.evictions} |

Mixed values: Float32Array tensors of 8–20 KiB, generated strings of 4–9 KB, and objects of 40
\`{ label, score, id }\` records. Heap growth is V8 heap used plus ArrayBuffer memory after a full GC.

## SqliteStore vs the seed's JSON file and Keyv + @keyv/sqlite

One WAL file on local disk, values of 100 B and 1 MiB, keys spread over 10,000 entries.

${opsTable(sqlite.rows)}

The seed's file cache (\`load_cache\` + \`json.dump(indent=2)\` on every call), written the same way
in TypeScript: every lookup parses the whole file and every set rewrites it.

${opsTable(sqlite.json)}

## RedisStore vs raw ioredis and Keyv + @keyv/redis

A redis-server on loopback started by the benchmark, 100 B values, sequential calls (latency) and
64 calls in flight (throughput); the median of 3 interleaved rounds. RedisStore does more per call
than a raw GET/SET (an envelope with a checksum, a sorted-set index for scoped clears and LRU
listings, touch batching), and on a 2-core machine the server and the client share the cores.
Keyv + @keyv/redis uses node-redis, which pipelines every command.

${opsTable(redisRows)}

## TieredStore hit vs MemoryStore hit

${opsTable(tiered)}

## Queue overhead: 100,000 trivial async jobs

Best of 5 interleaved rounds; all jobs submitted at once, then awaited.

| contender | concurrency | total |
|---|---:|---:|
${overhead.map((r) => `| ${r.name} | ${r.concurrency} | ${r.ms.toFixed(0)} ms |`).join("\n")}

## Batching: single embedding requests against a loopback embeddings upstream

\`bench/embeddings-server.ts\` runs in its own process: real embeddings from node-llama-cpp with
\`../shared/models/llama-2-tiny-random.gguf\` (one thread), plus a fixed 20 ms per HTTP request for a
remote API's round trip. 64 callers each make single requests for 256 distinct texts (no cache
hits). DataLoader batches per tick and has no concurrency limit. Runs in its own process.

| contender | concurrency | HTTP requests | total | texts/s |
|---|---:|---:|---:|---:|
${batching.map((r) => `| ${r.name} | ${r.concurrency === 0 ? "unlimited" : r.concurrency} | ${r.requests} | ${r.ms.toFixed(0)} ms | ${r.perSecond.toFixed(0)} |`).join("\n")}

## LLM calls through the OpenAI SDK (cachingFetch, local llama engine)

The real \`openai\` SDK against \`LlamaEngine\` (node-llama-cpp, the tiny GGUF, one thread) on a
loopback port: chat completions of 8 tokens at temperature 0. Direct and cached misses are
interleaved on distinct prompts (200 each), so the engine's speed cancels out; then 1,000 hits and
500 streamed hits. Own process.

| | p50 | p90 | samples |
|---|---:|---:|---:|
${llm.rows.map((r) => `| ${r.label} | ${r.p50Ms.toFixed(3)} ms | ${r.p90Ms.toFixed(3)} ms | ${r.samples} |`).join("\n")}

Overhead of cachingFetch on a miss (p50 difference): ${llm.overheadMs.toFixed(2)} ms.

## Prefix cache: longest-prefix lookup against a linear scan

Conversations of one chat app: a shared 200-token system prompt, then turns, 256–2048 tokens
each; every query is a stored conversation plus a new 64-token turn. The scan is
llama-cpp-python's \`_find_longest_prefix_key\` / Gradio's KV demo (compare with every key),
written the same way in TypeScript over the same Uint32Arrays; both agree on every answer.

| stored sequences | PrefixCache.longestPrefix | linear scan | speedup |
|---:|---:|---:|---:|
${lookups.map((r) => `| ${r.entries.toLocaleString("en-US")} | ${r.treeUs.toFixed(1)} µs | ${(r.scanUs / 1000).toFixed(2)} ms | ${Math.round(r.speedup).toLocaleString("en-US")}x |`).join("\n")}

Memory: ${prefixRun.memory.entries.toLocaleString("en-US")} entries (256–2048 tokens, each with a 4 KiB state) are
accounted at ${(prefixRun.memory.accountedBytes / 1024 / 1024).toFixed(1)} MiB; the measured heap growth
(V8 heap plus ArrayBuffers, after a full GC, own process) is
${(prefixRun.memory.heapGrowthBytes / 1024 / 1024).toFixed(1)} MiB.

## Time to first token with a cached prefix (local engine)

\`LlamaEngine\` with \`stateCache\` vs without, the tiny GGUF, one thread, a prompt of about 1,650
tokens whose first ~1,630 were seen before (the live sequence was moved away first, so the
state comes from a snapshot file); median of 5, streaming, time to the first chunk.

| | prompt tokens | cached tokens | time to first token |
|---|---:|---:|---:|
${prefixRun.ttft.map((r) => `| ${r.label} | ${r.promptTokens} | ${r.cachedTokens} | ${r.ttftMs.toFixed(1)} ms |`).join("\n")}

## Gateway cache hits under load

autocannon, 50 connections, 5 s after a 1 s warm-up, POST of one primed chat completion (every
request a hit) on loopback: the gateway's Fastify app (which answers plain hits from the raw body)
with the default MemoryStore and with the SqliteStore \`infercache serve\` uses by default; the
same gateway through its fetch-style handler on node:http (Web \`Request\`/\`Response\` per
request, no fast path); and a bare Fastify route returning the same bytes (the HTTP stack's
limit). The server runs in one process, autocannon in another: they share the 2 cores.

| | req/s | p50 | p99 | errors |
|---|---:|---:|---:|---:|
${gatewayRows.map((r) => `| ${r.label} | ${Math.round(r.requestsPerSec).toLocaleString("en-US")} | ${r.p50Ms} ms | ${r.p99Ms} ms | ${r.errors} |`).join("\n")}

Ratio to the bare route (the limit): ${((100 * gatewayHit.requestsPerSec) / bareRoute.requestsPerSec).toFixed(0)}% with
MemoryStore, ${((100 * sqliteHit.requestsPerSec) / bareRoute.requestsPerSec).toFixed(0)}% with SqliteStore. What is left between
the gateway and the bare route is the hit itself (parse, key, read, headers, metrics; ~6 µs) and
Fastify's raw-body parser, plus the load generator competing for the same two cores.

## Cache hits while the queue is full

A cached function behind \`createQueue({ maxSize: 10 })\`: one slow call runs, ten wait, an
eleventh is rejected with QueueFullError; then 20,000 calls that hit are timed one by one.

| | p50 | p90 | p99 | max |
|---|---:|---:|---:|---:|
| ${bypassRow.label} | ${bypassRow.p50Us.toFixed(1)} µs | ${bypassRow.p90Us.toFixed(1)} µs | ${bypassRow.p99Us.toFixed(1)} µs | ${bypassRow.maxUs.toFixed(0)} µs |
`;
writeFileSync("BENCHMARKS.md", markdown);
console.log("wrote BENCHMARKS.md");
