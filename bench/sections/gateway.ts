import { execFileSync } from "node:child_process";
import type { GatewayRow } from "../gateway.js";
import type { Report, Section } from "../report.js";

export const gateway: Section = {
  name: "gateway",
  title: "gateway under load (autocannon, own processes)",
  async run(report: Report) {
    const rows = JSON.parse(
      execFileSync(process.execPath, ["--import", "tsx", "bench/gateway-main.ts"], {
        encoding: "utf8",
      }),
    ) as GatewayRow[];
    const memoryHit = rows[0] as GatewayRow;
    const sqliteHit = rows[1] as GatewayRow;
    const bare = rows[rows.length - 1] as GatewayRow;
    report.check(
      "Gateway cache hits >= 10k req/s at 50 connections",
      memoryHit.requestsPerSec >= 10_000,
      `${Math.round(memoryHit.requestsPerSec).toLocaleString("en-US")} req/s (${((100 * memoryHit.requestsPerSec) / bare.requestsPerSec).toFixed(0)}% of a bare Fastify route)`,
    );
    report.check(
      "Gateway cache hit p99 < 10 ms at 50 connections",
      memoryHit.p99Ms < 10,
      `p99 ${memoryHit.p99Ms} ms`,
    );
    report.check(
      "Gateway cache hits >= 10k req/s with the CLI's SQLite store",
      sqliteHit.requestsPerSec >= 10_000 && sqliteHit.p99Ms < 10,
      `${Math.round(sqliteHit.requestsPerSec).toLocaleString("en-US")} req/s, p99 ${sqliteHit.p99Ms} ms`,
    );
    report.add(`## Gateway cache hits under load

autocannon, 50 connections, 5 s after a 1 s warm-up, POST of one primed chat completion (every
request a hit) on loopback: the gateway's Fastify app (which answers plain hits from the raw body)
with the default MemoryStore and with the SqliteStore \`infercache serve\` uses by default; the
same gateway through its fetch-style handler on node:http (Web \`Request\`/\`Response\` per
request, no fast path); and a bare Fastify route returning the same bytes (the HTTP stack's
limit). The server runs in one process, autocannon in another: they share the 2 cores.

| | req/s | p50 | p99 | errors |
|---|---:|---:|---:|---:|
${rows.map((r) => `| ${r.label} | ${Math.round(r.requestsPerSec).toLocaleString("en-US")} | ${r.p50Ms} ms | ${r.p99Ms} ms | ${r.errors} |`).join("\n")}`);
  },
};
