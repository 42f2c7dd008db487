/**
 * The gateway's speed, side by side in one run, every server in its own process and the load
 * generator (autocannon) in another:
 *
 * 1. Hit throughput at 50 connections: a bare node:http server returning the gateway's exact
 *    hit (same status, headers and body) against the gateway with a MemoryStore and with a
 *    SqliteStore file, for a plain hit and for a streamed hit (`stream: true`, an SSE record).
 *    Rounds are interleaved (every target once per round) and figures are medians of rounds.
 * 2. CPU per hit at a fixed rate: each server process's own user+system CPU time
 *    (`process.cpuUsage()` inside it, before and after) over the requests it served.
 * 3. Miss overhead: one request at a time, every body distinct (all misses), interleaved between
 *    calling the loopback upstream directly and calling it through the gateway, a bare node:http
 *    pipe proxy and Portkey's gateway; overhead = a percentile through it minus the direct one.
 */

import { spawn } from "node:child_process";
import os from "node:os";
import { fileURLToPath } from "node:url";
import type { PartRow } from "./gateway-parts.js";
import {
  runLoad,
  type ServerProcess,
  startPortkey,
  startServer,
  stopLoad,
} from "./gateway-procs.js";
import type { ServerConfig } from "./gateway-server.js";
import type { LatencyTarget, ThroughputResult } from "./load.js";

export interface BenchOptions {
  rounds: number;
  /** Seconds of each hit throughput run (after a warm-up run of `warmupSeconds`). */
  seconds: number;
  warmupSeconds: number;
  /** Requests/s of the CPU-per-hit runs, and their seconds. */
  cpuRate: number;
  cpuSeconds: number;
  /** Miss latency: requests per target and round (after `missWarmup`). */
  missSamples: number;
  missWarmup: number;
}

export const defaults: BenchOptions = {
  rounds: 3,
  seconds: 5,
  warmupSeconds: 1,
  cpuRate: 2000,
  cpuSeconds: 5,
  missSamples: 200,
  missWarmup: 30,
};

export interface HitRow {
  name: string;
  /** The bare server's row this one is compared with. */
  baseline: string;
  rps: number[];
  p50: number[];
  p99: number[];
  /** Per round, this row's req/s over its baseline's. */
  ratio: number[];
  errors: number;
  /** Requests that were not answered from the cache (must be 0). */
  notHits: number;
  bytesPerResponse: number;
}

export interface CpuRow {
  name: string;
  baseline: string;
  /** CPU µs per request, per round (user + system), and the two parts. */
  usPerRequest: number[];
  userUs: number[];
  systemUs: number[];
  ratio: number[];
  achievedRps: number[];
  errors: number;
  notHits: number;
}

export interface MissRow {
  name: string;
  samples: number;
  p50: number;
  p99: number;
  /** p50 and p99 minus the direct call's (ms). */
  overheadP50: number;
  overheadP99: number;
  /** Per round: the p50 overhead (its spread). */
  overheadP50ByRound: number[];
  unexpected: number;
}

export interface GatewayBenchResult {
  options: BenchOptions;
  node: string;
  cpus: number;
  loadStart: number[];
  loadEnd: number[];
  hits: HitRow[];
  cpu: CpuRow[];
  misses: MissRow[];
  streamedMisses: MissRow[];
  portkey: { version: string; streams: boolean; streamFailure?: string } | { error: string };
  /** What a hit's steps cost on their own, in one process (`bench/gateway-parts.ts`). */
  parts: PartRow[];
  bodyBytes: { plain: number; stream: number };
}

const HEADERS = { "content-type": "application/json", authorization: "Bearer bench" };

/** The primed requests: one plain, one streamed, both with realistic small bodies. */
const PLAIN = JSON.stringify({
  model: "bench",
  messages: [
    { role: "system", content: "You are a benchmark." },
    { role: "user", content: "Which answer is cached?" },
  ],
  temperature: 0,
  max_tokens: 200,
});
/**
 * A streamed request with its own prompt: the key does not depend on `stream`, so the same
 * prompt would be served from the plain record, converted to SSE, instead of from an SSE record.
 */
const STREAM = JSON.stringify({
  model: "bench",
  messages: [
    { role: "system", content: "You are a benchmark." },
    { role: "user", content: "Which streamed answer is cached?" },
  ],
  temperature: 0,
  max_tokens: 200,
  stream: true,
});

/**
 * Headers node:http writes itself; everything else (a `content-length` too, so the framing is
 * the same) is copied to the bare server.
 */
const CONNECTION_HEADERS = new Set(["date", "connection", "keep-alive", "transfer-encoding"]);

interface Captured {
  status: number;
  headers: Record<string, string>;
  body: string;
}

async function post(url: string, body: string): Promise<Captured> {
  const response = await fetch(`${url}/v1/chat/completions`, {
    method: "POST",
    headers: HEADERS,
    body,
  });
  const headers: Record<string, string> = {};
  response.headers.forEach((value, name) => {
    if (!CONNECTION_HEADERS.has(name)) headers[name] = value;
  });
  return { status: response.status, headers, body: await response.text() };
}

/**
 * Primes a gateway with `body` and returns its hit (which must be one, served as it was
 * recorded: the miss and the hit carry the same body).
 */
async function prime(gateway: ServerProcess, body: string): Promise<Captured> {
  const miss = await post(gateway.url, body);
  const hit = await post(gateway.url, body);
  if (hit.status !== 200 || hit.headers["x-infercache"] !== "hit") {
    throw new Error(
      `${gateway.name}: the primed request answered ${hit.status} x-infercache=${hit.headers["x-infercache"]}, not a hit`,
    );
  }
  if (miss.headers["x-infercache"] !== "miss" || miss.body.length !== hit.body.length) {
    throw new Error(`${gateway.name}: the primed request was not recorded as it was answered`);
  }
  return hit;
}

const median = (values: number[]): number => {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1
    ? (sorted[mid] as number)
    : ((sorted[mid - 1] as number) + (sorted[mid] as number)) / 2;
};

export const percentile = (values: number[], q: number): number => {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1)] as number;
};

export { median };

export async function gatewayBench(options: BenchOptions = defaults): Promise<GatewayBenchResult> {
  const loadStart = os.loadavg();
  const started: { stop(): Promise<void> }[] = [];
  const start = async (name: string, config: ServerConfig) => {
    const server = await startServer(name, config);
    started.push(server);
    return server;
  };
  try {
    const upstream = await start("upstream", { kind: "upstream" });
    const base = `${upstream.url}/v1`;
    const memory = await start("gateway, MemoryStore", {
      kind: "gateway",
      store: "memory",
      upstream: base,
    });
    const sqlite = await start("gateway, SqliteStore", {
      kind: "gateway",
      store: "sqlite",
      upstream: base,
    });
    const plainHit = await prime(memory, PLAIN);
    const streamHit = await prime(memory, STREAM);
    await prime(sqlite, PLAIN);
    await prime(sqlite, STREAM);
    const barePlain = await start("bare node:http", { kind: "bare", ...plainHit });
    const bareStream = await start("bare node:http", { kind: "bare", ...streamHit });
    const layer = await start("gateway's HTTP layer", { kind: "node-http", ...plainHit });

    interface Target {
      name: string;
      baseline: string;
      server: ServerProcess;
      body: string;
      gateway: boolean;
    }
    const targets: Target[] = [
      {
        name: "bare node:http, same bytes",
        baseline: "",
        server: barePlain,
        body: PLAIN,
        gateway: false,
      },
      {
        name: "gateway, MemoryStore",
        baseline: "bare node:http, same bytes",
        server: memory,
        body: PLAIN,
        gateway: true,
      },
      {
        name: "gateway, SqliteStore",
        baseline: "bare node:http, same bytes",
        server: sqlite,
        body: PLAIN,
        gateway: true,
      },
      {
        name: "the gateway's HTTP layer alone (nodeServer + Router), same bytes",
        baseline: "bare node:http, same bytes",
        server: layer,
        body: PLAIN,
        gateway: false,
      },
      {
        name: "bare node:http, same SSE bytes",
        baseline: "",
        server: bareStream,
        body: STREAM,
        gateway: false,
      },
      {
        name: "gateway, streamed hit, MemoryStore",
        baseline: "bare node:http, same SSE bytes",
        server: memory,
        body: STREAM,
        gateway: true,
      },
      {
        name: "gateway, streamed hit, SqliteStore",
        baseline: "bare node:http, same SSE bytes",
        server: sqlite,
        body: STREAM,
        gateway: true,
      },
    ];

    /** One load run against a target, with the server's CPU and whether all were hits. */
    const measure = async (target: Target, seconds: number, rate?: number) => {
      const before = await target.server.cpu();
      const statsBefore = await target.server.stats();
      const result: ThroughputResult = await runLoad({
        kind: "throughput",
        url: `${target.server.url}/v1/chat/completions`,
        body: target.body,
        headers: HEADERS,
        connections: 50,
        seconds,
        ...(rate !== undefined && { rate }),
      });
      const after = await target.server.cpu();
      const statsAfter = await target.server.stats();
      const served = after.requests - before.requests;
      const hits = statsAfter.hits - statsBefore.hits;
      return {
        result,
        served,
        usPerRequest: served > 0 ? (after.cpuUs - before.cpuUs) / served : Number.NaN,
        userUs: served > 0 ? (after.userUs - before.userUs) / served : Number.NaN,
        systemUs: served > 0 ? (after.systemUs - before.systemUs) / served : Number.NaN,
        notHits: target.gateway ? served - hits : 0,
      };
    };

    const hits: HitRow[] = targets.map((t) => ({
      name: t.name,
      baseline: t.baseline,
      rps: [],
      p50: [],
      p99: [],
      ratio: [],
      errors: 0,
      notHits: 0,
      bytesPerResponse: 0,
    }));
    const cpu: CpuRow[] = targets.map((t) => ({
      name: t.name,
      baseline: t.baseline,
      usPerRequest: [],
      userUs: [],
      systemUs: [],
      ratio: [],
      achievedRps: [],
      errors: 0,
      notHits: 0,
    }));
    const missTargets = async (): Promise<{ targets: LatencyTarget[] }> => {
      const missMemory = await start("gateway (misses), MemoryStore", {
        kind: "gateway",
        store: "memory",
        upstream: base,
      });
      const missSqlite = await start("gateway (misses), SqliteStore", {
        kind: "gateway",
        store: "sqlite",
        upstream: base,
      });
      const proxy = await start("bare node:http pipe proxy", {
        kind: "proxy",
        upstream: upstream.url,
      });
      const path = "/v1/chat/completions";
      return {
        targets: [
          { name: "direct", url: `${upstream.url}${path}`, headers: HEADERS },
          {
            name: "gateway, MemoryStore",
            url: `${missMemory.url}${path}`,
            headers: HEADERS,
            expect: ["x-infercache", "miss"],
          },
          {
            name: "gateway, SqliteStore",
            url: `${missSqlite.url}${path}`,
            headers: HEADERS,
            expect: ["x-infercache", "miss"],
          },
          { name: "bare node:http pipe proxy", url: `${proxy.url}${path}`, headers: HEADERS },
        ],
      };
    };
    const miss = await missTargets();
    let portkey: GatewayBenchResult["portkey"];
    const portkeyHeaders = {
      ...HEADERS,
      "x-portkey-provider": "openai",
      "x-portkey-custom-host": base,
    };
    try {
      const process_ = await startPortkey();
      started.push(process_);
      miss.targets.push({
        name: "Portkey",
        url: `${process_.url}/v1/chat/completions`,
        headers: portkeyHeaders,
      });
      // Does it forward a streamed request? (1.15.2 with @hono/node-server 1.19 answers 500.)
      const probe = await fetch(`${process_.url}/v1/chat/completions`, {
        method: "POST",
        headers: portkeyHeaders,
        body: STREAM,
      });
      const text = await probe.text();
      const streams =
        probe.status === 200 && (probe.headers.get("content-type") ?? "").includes("event-stream");
      const cause = process_.log().match(/TypeError: [^\n]*|Error: [^\n]*/)?.[0];
      portkey = {
        version: process_.version,
        streams,
        ...(!streams && {
          streamFailure: `answers ${probe.status} ${text.slice(0, 80)}${cause === undefined ? "" : ` (its log: ${cause})`}`,
        }),
      };
    } catch (error) {
      portkey = { error: (error as Error).message };
    }
    const missSamples: Record<string, number[][]> = {};
    const streamSamples: Record<string, number[][]> = {};
    const unexpected: Record<string, number> = {};
    const streamUnexpected: Record<string, number> = {};
    const streamTargets = miss.targets.filter(
      (t) =>
        t.name !== "gateway, SqliteStore" &&
        (t.name !== "Portkey" || ("streams" in portkey && portkey.streams)),
    );

    for (let round = 0; round < options.rounds; round++) {
      for (const [i, target] of targets.entries()) {
        await measure(target, options.warmupSeconds);
        const { result, notHits } = await measure(target, options.seconds);
        const row = hits[i] as HitRow;
        row.rps.push(result.rps);
        row.p50.push(result.p50);
        row.p99.push(result.p99);
        row.errors += result.errors;
        row.notHits += notHits;
        row.bytesPerResponse = result.bytesPerResponse;
      }
      for (const [i, target] of targets.entries()) {
        const { result, usPerRequest, userUs, systemUs, notHits } = await measure(
          target,
          options.cpuSeconds,
          options.cpuRate,
        );
        const row = cpu[i] as CpuRow;
        row.usPerRequest.push(usPerRequest);
        row.userUs.push(userUs);
        row.systemUs.push(systemUs);
        row.achievedRps.push(result.rps);
        row.errors += result.errors;
        row.notHits += notHits;
      }
      for (const [job, samples, bad, stream] of [
        [miss.targets, missSamples, unexpected, false],
        [streamTargets, streamSamples, streamUnexpected, true],
      ] as const) {
        const latency = await runLoad({
          kind: "latency",
          targets: job,
          warmup: options.missWarmup,
          samples: options.missSamples,
          stream,
        });
        for (const [name, values] of Object.entries(latency.samples)) {
          samples[name] = [...(samples[name] ?? []), values];
          bad[name] = (bad[name] ?? 0) + (latency.unexpected[name] ?? 0);
        }
      }
    }
    for (const rows of [hits, cpu] as const) {
      for (const row of rows) {
        const values = "rps" in row ? row.rps : row.usPerRequest;
        const base = rows.find((r) => r.name === row.baseline);
        if (base === undefined) continue;
        const baseValues = "rps" in base ? base.rps : base.usPerRequest;
        row.ratio = values.map((v, i) => v / (baseValues[i] as number));
      }
    }
    const missRows = (samples: Record<string, number[][]>, bad: Record<string, number>) => {
      const direct = samples.direct ?? [];
      const all = (rounds: number[][]) => rounds.flat();
      const d50 = percentile(all(direct), 0.5);
      const d99 = percentile(all(direct), 0.99);
      return Object.entries(samples).map(([name, rounds]): MissRow => {
        const values = all(rounds);
        return {
          name,
          samples: values.length,
          p50: percentile(values, 0.5),
          p99: percentile(values, 0.99),
          overheadP50: percentile(values, 0.5) - d50,
          overheadP99: percentile(values, 0.99) - d99,
          overheadP50ByRound: rounds.map(
            (r, i) => percentile(r, 0.5) - percentile(direct[i] ?? [], 0.5),
          ),
          unexpected: bad[name] ?? 0,
        };
      });
    };
    const parts = await runParts();
    return {
      parts,
      options,
      node: process.version,
      cpus: os.cpus().length,
      loadStart,
      loadEnd: os.loadavg(),
      hits,
      cpu,
      misses: missRows(missSamples, unexpected),
      streamedMisses: missRows(streamSamples, streamUnexpected),
      portkey,
      bodyBytes: {
        plain: Buffer.byteLength(plainHit.body),
        stream: Buffer.byteLength(streamHit.body),
      },
    };
  } finally {
    await stopLoad();
    await Promise.all(started.map((s) => s.stop()));
  }
}

/** `bench/gateway-parts.ts` in its own process (a fresh heap). */
async function runParts(): Promise<PartRow[]> {
  const file = fileURLToPath(new URL("./gateway-parts.ts", import.meta.url));
  const child = spawn(
    process.execPath,
    ["--expose-gc", "--max-semi-space-size=64", "--import", "tsx", file],
    {
      stdio: ["ignore", "pipe", "inherit"],
    },
  );
  let out = "";
  child.stdout?.on("data", (chunk: Buffer) => {
    out += chunk.toString();
  });
  const code = await new Promise((resolve) => child.once("exit", resolve));
  if (code !== 0) throw new Error(`bench/gateway-parts.ts exited with ${String(code)}`);
  return JSON.parse(out) as PartRow[];
}
