import { execFileSync } from "node:child_process";
import type { CpuRow, GatewayBenchResult, HitRow, MissRow } from "../gateway.js";
import { median } from "../gateway.js";
import type { Report, Section } from "../report.js";

const int = (n: number) => Math.round(n).toLocaleString("en-US");
const x = (n: number) => `${n.toFixed(2)}x`;
const ms = (n: number) => `${n.toFixed(2)} ms`;
const spread = (values: number[], format: (n: number) => string) =>
  values.length < 2 ? "" : `${format(Math.min(...values))}–${format(Math.max(...values))}`;

function row<T extends { name: string }>(rows: T[], name: string): T {
  const found = rows.find((r) => r.name === name);
  if (found === undefined) throw new Error(`the gateway benchmark has no row ${name}`);
  return found;
}

/** `0.31x (0.29–0.33x over 3 rounds)`, and whether every request was a clean hit. */
function ratioOf(hit: HitRow | CpuRow): string {
  return `${x(median(hit.ratio))}${hit.ratio.length > 1 ? ` (${spread(hit.ratio, x)} over ${hit.ratio.length} rounds)` : ""}`;
}

function clean(hit: HitRow | CpuRow): string {
  const faults = [
    hit.errors > 0 ? `${hit.errors} errors` : "",
    hit.notHits > 0 ? `${hit.notHits} requests not answered from the cache` : "",
  ].filter((s) => s !== "");
  return faults.length === 0 ? "" : `; **${faults.join(", ")}**`;
}

export const gateway: Section = {
  name: "gateway",
  title: "gateway: hits, CPU per hit, miss overhead (servers and load generator in own processes)",
  async run(report: Report) {
    const result = JSON.parse(
      execFileSync(process.execPath, ["--import", "tsx", "bench/gateway-main.ts"], {
        encoding: "utf8",
        stdio: ["ignore", "pipe", "inherit"],
        maxBuffer: 64 * 1024 * 1024,
      }),
    ) as GatewayBenchResult;
    const o = result.options;
    const hitTarget = (name: string, min: number, label: string) => {
      const hit = row(result.hits, name);
      report.check(
        label,
        median(hit.ratio) >= min && hit.errors === 0 && hit.notHits === 0,
        `${ratioOf(hit)}, ${int(median(hit.rps))} req/s${clean(hit)}`,
      );
    };
    hitTarget(
      "gateway, MemoryStore",
      0.6,
      "Gateway hits (MemoryStore), 50 connections, >= 0.6x a bare node:http server returning the same bytes",
    );
    hitTarget(
      "gateway, SqliteStore",
      0.5,
      "Gateway hits (SqliteStore), 50 connections, >= 0.5x the bare server",
    );
    hitTarget(
      "gateway, streamed hit, MemoryStore",
      0.6,
      "Gateway streamed hits (MemoryStore) >= 0.6x a bare server returning the same SSE bytes",
    );
    hitTarget(
      "gateway, streamed hit, SqliteStore",
      0.5,
      "Gateway streamed hits (SqliteStore) >= 0.5x the bare server",
    );
    const cpuHit = row(result.cpu, "gateway, MemoryStore");
    const cpuBare = row(result.cpu, "bare node:http, same bytes");
    report.check(
      `Gateway CPU per hit at ${int(o.cpuRate)} req/s <= 2x the bare server's`,
      median(cpuHit.ratio) <= 2 && cpuHit.errors === 0 && cpuHit.notHits === 0,
      `${median(cpuHit.usPerRequest).toFixed(1)} µs against ${median(cpuBare.usPerRequest).toFixed(1)} µs: ${ratioOf(cpuHit)}${clean(cpuHit)}`,
    );
    const miss = row(result.misses, "gateway, MemoryStore");
    const missFaults = miss.unexpected > 0 ? `; **${miss.unexpected} answers not a 200 miss**` : "";
    report.check(
      "Gateway miss overhead over calling the loopback upstream directly, p50 <= 1 ms",
      miss.overheadP50 <= 1 && miss.unexpected === 0,
      `${ms(miss.overheadP50)} (by round ${miss.overheadP50ByRound.map(ms).join(", ")}; a bare node:http proxy ${ms(row(result.misses, "bare node:http pipe proxy").overheadP50)})${missFaults}`,
    );
    report.check(
      "Gateway miss overhead, p99 <= 3 ms",
      miss.overheadP99 <= 3 && miss.unexpected === 0,
      `${ms(miss.overheadP99)} (a bare node:http proxy ${ms(row(result.misses, "bare node:http pipe proxy").overheadP99)})${missFaults}`,
    );

    const portkey = result.portkey;
    const portkeyLine =
      "error" in portkey
        ? `Portkey's gateway did not start: ${portkey.error}.`
        : `Portkey's gateway is \`@portkey-ai/gateway\` ${portkey.version} from npm (\`build/start-server.js --headless\`), forwarding with \`x-portkey-provider: openai\` and \`x-portkey-custom-host\` set to the same loopback upstream. Its npm build ships with its cache compiled out (\`"cache": false\` in its \`conf.json\`: nothing in the build sets the cache hooks its handlers look for), so it can only be compared on miss overhead.${portkey.streams ? "" : ` It is left out of the streamed rows: a streamed request through it ${portkey.streamFailure ?? "fails"}.`}`;
    const hitRows = result.hits
      .map((h) => {
        const base = h.baseline === "" ? "1" : ratioOf(h);
        return `| ${h.name} | ${int(median(h.rps))} | ${spread(h.rps, int)} | ${base} | ${median(h.p50)} ms | ${median(h.p99)} ms | ${int(h.bytesPerResponse)} | ${h.errors} | ${h.baseline === "" ? "" : h.notHits} |`;
      })
      .join("\n");
    const cpuRows = result.cpu
      .map((c) => {
        const base = c.baseline === "" ? "1" : ratioOf(c);
        return `| ${c.name} | ${median(c.usPerRequest).toFixed(1)} µs | ${median(c.userUs).toFixed(1)} / ${median(c.systemUs).toFixed(1)} µs | ${spread(c.usPerRequest, (n) => n.toFixed(1))} | ${base} | ${int(median(c.achievedRps))} | ${c.errors} |`;
      })
      .join("\n");
    const missRows = (rows: MissRow[]) =>
      rows
        .map(
          (m) =>
            `| ${m.name} | ${ms(m.p50)} | ${ms(m.p99)} | ${m.name === "direct" ? "" : ms(m.overheadP50)} | ${m.name === "direct" ? "" : ms(m.overheadP99)} | ${m.name === "direct" ? "" : m.overheadP50ByRound.map((v) => v.toFixed(2)).join(", ")} | ${m.samples} | ${m.unexpected} |`,
        )
        .join("\n");
    const load = (l: number[]) => l.map((v) => v.toFixed(2)).join(" / ");
    const layer = result.cpu.find((c) => c.name.startsWith("the gateway's HTTP layer"));
    const split =
      layer === undefined
        ? ""
        : `Of a hit's ${(median(cpuHit.usPerRequest) - median(cpuBare.usPerRequest)).toFixed(1)} µs over the bare server (MemoryStore), the gateway's HTTP layer alone (\`nodeServer\` + \`Router\` answering the same bytes, no pipeline) accounts for ${(median(layer.usPerRequest) - median(cpuBare.usPerRequest)).toFixed(1)} µs and the rest (the pipeline, its awaits and the garbage it leaves) for ${(median(cpuHit.usPerRequest) - median(layer.usPerRequest)).toFixed(1)} µs.`;
    const partRows = result.parts
      .map(
        (p) =>
          `| ${p.name} | ${p.us.toFixed(2)} µs | ${typeof p.bytes === "number" && !Number.isNaN(p.bytes) ? int(p.bytes) : ""} |`,
      )
      .join("\n");
    report.add(`## Gateway: hits, CPU per hit, miss overhead

Every server in its own process (\`bench/gateway-server.ts\`), the load generator (autocannon,
\`bench/load.ts\`) in another; the machine's ${result.cpus} cores are shared by them (and by
whatever else runs). Load average (1 / 5 / 15 min) at the start: ${load(result.loadStart)}; at
the end: ${load(result.loadEnd)}. Absolute figures hold only for this machine at this load: read
the ratios, which compare rows of the same rounds. ${o.rounds} interleaved rounds (every row once
per round), medians of the rounds, with the range over rounds.

The upstream is a loopback OpenAI-format server (\`bench/gateway-server.ts\`) answering a chat
completion of ~1 KB (${int(result.bodyBytes.plain)} bytes), or for \`stream: true\` the same text
as ${int(result.bodyBytes.stream)} bytes of SSE. The streamed request has a prompt of its own, so
its record is that SSE body (a key does not depend on \`stream\`: with the plain prompt it would
be served from the plain record, converted). The gateway is \`createGateway({ upstream })\` with
its default MemoryStore, or with a \`SqliteStore\` file (the CLI's default store).

### Hits at 50 connections

autocannon, 50 connections, ${o.seconds} s after a ${o.warmupSeconds} s warm-up, POST of one primed
request (every request a hit; "not hits" counts requests the gateway did not answer from the
cache, from its own stats). The bare server is node:http reading the body and answering the
gateway's own hit, byte for byte (status, headers, body), so both send the same bytes per
response.

| | req/s | range | x bare | p50 | p99 | bytes/response | errors | not hits |
|---|---:|---:|---:|---:|---:|---:|---:|---:|
${hitRows}

### CPU per request at a fixed rate

autocannon at ${int(o.cpuRate)} req/s overall (50 connections) for ${o.cpuSeconds} s: the server
process's own user+system CPU time (\`process.cpuUsage()\` inside it, before and after) over the
requests it served.

| | CPU per request | user / system | range | x bare | achieved req/s | errors |
|---|---:|---:|---:|---:|---:|---:|
${cpuRows}

${split}

What a hit's steps cost on their own, in one process without HTTP (\`bench/gateway-parts.ts\`;
medians of batches of calls; the key context and the memo lookup are private to
\`src/llm/pipeline.ts\` and are timed as the same operations written out). Under load the same
steps cost more: 50 requests in flight keep more garbage alive, and the code sees more shapes.

| step | time per call | heap bytes allocated per call |
|---|---:|---:|
${partRows}

### Miss overhead

One request at a time on one keep-alive node:http client, every request a distinct body (so
every one through the gateway is a miss, with the cache on), interleaved over the rows with the
order rotating: calling the upstream directly, and through the gateway, a bare node:http pipe
proxy (\`http.request\` + \`pipe\`, ~20 lines) and Portkey's gateway. Overhead is a row's
percentile minus the direct call's. ${o.missSamples} requests per row and round after ${o.missWarmup}
discarded, pooled over the rounds.

| plain | p50 | p99 | overhead p50 | overhead p99 | p50 overhead by round | samples | not a 200 (miss) |
|---|---:|---:|---:|---:|---:|---:|---:|
${missRows(result.misses)}

| streamed (\`stream: true\`, read to the end) | p50 | p99 | overhead p50 | overhead p99 | p50 overhead by round | samples | not a 200 |
|---|---:|---:|---:|---:|---:|---:|---:|
${missRows(result.streamedMisses)}

${portkeyLine}`);
  },
};
