import { execFileSync } from "node:child_process";
import type { ProtocolHitRow } from "../protocol-hits.js";
import type { Report, Section } from "../report.js";

export const protocolHits: Section = {
  name: "protocol-hits",
  title: "streamed hits per API family under load (autocannon, own processes)",
  async run(report: Report) {
    const rows = JSON.parse(
      execFileSync(process.execPath, ["--import", "tsx", "bench/protocol-hits-main.ts"], {
        encoding: "utf8",
      }),
    ) as ProtocolHitRow[];
    const chat = rows[0] as ProtocolHitRow;
    for (const row of rows.slice(1)) {
      const ratio = row.requestsPerSec / chat.requestsPerSec;
      report.check(
        `${row.label} >= 0.8x the streamed chat hit`,
        ratio >= 0.8,
        `${Math.round(row.requestsPerSec).toLocaleString("en-US")} req/s, ${ratio.toFixed(2)}x of ${Math.round(chat.requestsPerSec).toLocaleString("en-US")}`,
      );
    }
    report.add(`## Streamed hits per API family

autocannon, 50 connections, 5 s per round after a 1 s warm-up, 3 rounds interleaved across the
rows (median round shown), against one gateway on node:http with the default MemoryStore: a
POST of one primed streamed request per family (8 tokens of the local engine), so every
request replays its recorded event stream byte for byte. The server and autocannon run in two
processes sharing the cores.

| | stream bytes | req/s | p50 | p99 | errors | rounds (req/s) | vs chat |
|---|---:|---:|---:|---:|---:|---|---:|
${rows.map((r) => `| ${r.label} | ${r.bytes.toLocaleString("en-US")} | ${Math.round(r.requestsPerSec).toLocaleString("en-US")} | ${r.p50Ms} ms | ${r.p99Ms} ms | ${r.errors} | ${r.rounds.map((x) => Math.round(x).toLocaleString("en-US")).join(", ")} | ${(r.requestsPerSec / chat.requestsPerSec).toFixed(2)}x |`).join("\n")}`);
  },
};
