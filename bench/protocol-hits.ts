/**
 * Streamed cache hits per API family under load: autocannon with 50 connections (in its own
 * process, `load.ts`) against one gateway on node:http with the default MemoryStore, POSTing one
 * primed streamed request — Chat Completions, OpenAI Responses, Anthropic Messages — so every
 * request replays a recorded event stream byte for byte. The upstream is the local engine; the
 * answers are the same 8 tokens, so the rows differ by the family's framing only. Rounds are
 * interleaved (chat, responses, messages, chat, …) and each row reports its median round.
 */
import { spawn } from "node:child_process";
import { fileURLToPath } from "node:url";
import { LlamaEngine } from "../src/llama.js";
import { createGateway } from "../src/server.js";
import { MODEL_PATH } from "../test/helpers/llama-upstream.js";
import type { ThroughputJob, ThroughputResult } from "./load.js";
import { middle } from "./report.js";

const LOAD_HEADERS = { "content-type": "application/json", authorization: "Bearer bench" };

export interface ProtocolHitRow {
  label: string;
  path: string;
  /** Bytes of the replayed stream. */
  bytes: number;
  requestsPerSec: number;
  p50Ms: number;
  p99Ms: number;
  errors: number;
  /** Requests per second of each round. */
  rounds: number[];
}

/** One throughput job for the load generator (bench/load.ts), in its own process. */
async function load(url: string, body: string, headers: Record<string, string>, seconds: number) {
  const job: ThroughputJob = { kind: "throughput", url, body, headers, connections: 50, seconds };
  const child = spawn(
    process.execPath,
    ["--import", "tsx", fileURLToPath(new URL("./load.ts", import.meta.url))],
    { stdio: ["pipe", "pipe", "inherit"] },
  );
  child.stdin.end(JSON.stringify(job));
  let out = "";
  child.stdout.on("data", (chunk: Buffer) => {
    out += chunk.toString();
  });
  const code = await new Promise((resolve) => child.once("exit", resolve));
  if (code !== 0) throw new Error(`the load generator exited with ${String(code)}`);
  return JSON.parse(out) as ThroughputResult;
}

export async function protocolHitsBench(seconds = 5, rounds = 3): Promise<ProtocolHitRow[]> {
  const engine = await LlamaEngine.load({ modelPath: MODEL_PATH, modelName: "tiny" });
  const gateway = createGateway({ upstream: (request) => engine.handle(request) });
  const url = await gateway.listen();
  const prompt = "benchmark a stream";
  const targets = [
    {
      label: "Chat Completions, streamed hit",
      path: "/v1/chat/completions",
      body: {
        model: "tiny",
        messages: [{ role: "user", content: prompt }],
        temperature: 0,
        max_tokens: 8,
        stream: true,
      },
    },
    {
      label: "OpenAI Responses, streamed hit",
      path: "/v1/responses",
      body: { model: "tiny", input: prompt, temperature: 0, max_output_tokens: 8, stream: true },
    },
    {
      label: "Anthropic Messages, streamed hit",
      path: "/v1/messages",
      body: {
        model: "tiny",
        messages: [{ role: "user", content: prompt }],
        temperature: 0,
        max_tokens: 8,
        stream: true,
      },
    },
  ];
  try {
    const rows: ProtocolHitRow[] = [];
    for (const target of targets) {
      const body = JSON.stringify(target.body);
      // The same headers for priming and load, so the primed entry is the one the load hits.
      const headers = LOAD_HEADERS;
      await (await fetch(`${url}${target.path}`, { method: "POST", headers, body })).text();
      const hit = await fetch(`${url}${target.path}`, { method: "POST", headers, body });
      const text = await hit.text();
      if (hit.headers.get("x-infercache") !== "hit") {
        throw new Error(`${target.path} was not a hit after priming`);
      }
      await load(`${url}${target.path}`, body, LOAD_HEADERS, 1); // warm-up
      rows.push({
        label: target.label,
        path: target.path,
        bytes: Buffer.byteLength(text),
        requestsPerSec: 0,
        p50Ms: 0,
        p99Ms: 0,
        errors: 0,
        rounds: [],
      });
    }
    const results: { rps: number; p50: number; p99: number; errors: number }[][] = targets.map(
      () => [],
    );
    for (let round = 0; round < rounds; round++) {
      for (const [i, target] of targets.entries()) {
        const result = await load(
          `${url}${target.path}`,
          JSON.stringify(target.body),
          LOAD_HEADERS,
          seconds,
        );
        results[i]?.push(result);
      }
    }
    for (const [i, row] of rows.entries()) {
      const runs = results[i] ?? [];
      const median = runs.find((r) => r.rps === middle(runs.map((x) => x.rps))) ?? runs[0];
      row.rounds = runs.map((r) => r.rps);
      row.requestsPerSec = median?.rps ?? 0;
      row.p50Ms = median?.p50 ?? 0;
      row.p99Ms = median?.p99 ?? 0;
      row.errors = runs.reduce((sum, r) => sum + r.errors, 0);
    }
    return rows;
  } finally {
    await gateway.close();
    await engine.close();
  }
}
