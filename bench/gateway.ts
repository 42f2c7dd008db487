/**
 * Gateway cache hits under load: autocannon with 50 connections against the gateway (a primed
 * chat completion, so every request is a hit) and against a bare Fastify route returning the same
 * bytes (the limit of the HTTP stack). Reports req/s and latency percentiles.
 */
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import Fastify from "fastify";
import { LlamaEngine } from "../src/llama.js";
import { createGateway, serveFetchHandler } from "../src/server.js";
import { SqliteStore } from "../src/sqlite.js";
import { MODEL_PATH } from "../test/helpers/llama-upstream.js";

export interface GatewayRow {
  label: string;
  requestsPerSec: number;
  p50Ms: number;
  p99Ms: number;
  errors: number;
}

/** Runs autocannon in its own process, so the load generator does not share the server's loop. */
async function load(
  url: string,
  body: string,
  seconds: number,
): Promise<{ rps: number; p50: number; p99: number; errors: number }> {
  const child = spawn(
    process.execPath,
    ["--import", "tsx", fileURLToPath(new URL("./load.ts", import.meta.url)), url, String(seconds)],
    { stdio: ["pipe", "pipe", "inherit"] },
  );
  child.stdin.end(body);
  let out = "";
  child.stdout.on("data", (chunk: Buffer) => {
    out += chunk.toString();
  });
  const code = await new Promise((resolve) => child.once("exit", resolve));
  if (code !== 0) throw new Error(`the load generator exited with ${String(code)}`);
  return JSON.parse(out) as { rps: number; p50: number; p99: number; errors: number };
}

export async function gatewayBench(seconds = 5): Promise<GatewayRow[]> {
  const engine = await LlamaEngine.load({ modelPath: MODEL_PATH, modelName: "tiny" });
  const dir = mkdtempSync(join(tmpdir(), "infercache-gateway-bench-"));
  const sqlite = new SqliteStore({ path: join(dir, "cache.db") });
  const memoryGateway = createGateway({ upstream: (request) => engine.handle(request) });
  const sqliteGateway = createGateway({
    upstream: (request) => engine.handle(request),
    store: sqlite,
  });
  const body = JSON.stringify({
    model: "tiny",
    messages: [{ role: "user", content: "benchmark" }],
    temperature: 0,
    max_tokens: 8,
  });
  const targets: { label: string; url: string }[] = [
    { label: "gateway, cache hit (MemoryStore)", url: await memoryGateway.listen() },
    {
      label: "gateway, cache hit (SqliteStore, the CLI default)",
      url: await sqliteGateway.listen(),
    },
  ];
  const viaHandler = await serveFetchHandler(memoryGateway.handle);
  targets.push({
    label: "same gateway via its fetch-style handler (no fast path)",
    url: viaHandler.url,
  });
  let answer = "";
  for (const target of targets) {
    const primed = await fetch(`${target.url}/v1/chat/completions`, {
      method: "POST",
      headers: { "content-type": "application/json", authorization: "Bearer bench" },
      body,
    });
    answer = await primed.text();
  }
  const bare = Fastify();
  bare.post("/v1/chat/completions", async (_request, reply) =>
    reply.header("content-type", "application/json").send(answer),
  );
  await bare.listen({ port: 0, host: "127.0.0.1" });
  const address = bare.server.address();
  targets.push({
    label: "bare Fastify route, same bytes (the limit)",
    url: `http://127.0.0.1:${typeof address === "object" && address !== null ? address.port : 0}`,
  });
  try {
    const rows: GatewayRow[] = [];
    for (const target of targets) {
      const url = `${target.url}/v1/chat/completions`;
      await load(url, body, 1); // warm-up
      const result = await load(url, body, seconds);
      rows.push({
        label: target.label,
        requestsPerSec: result.rps,
        p50Ms: result.p50,
        p99Ms: result.p99,
        errors: result.errors,
      });
    }
    return rows;
  } finally {
    await bare.close();
    await viaHandler.close();
    await memoryGateway.close();
    await sqliteGateway.close();
    await sqlite.close();
    await engine.close();
    rmSync(dir, { recursive: true, force: true });
  }
}
