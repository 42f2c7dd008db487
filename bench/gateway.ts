/**
 * Gateway cache hits under load: autocannon with 50 connections against the gateway (a primed
 * chat completion, so every request is a hit) and against a bare Fastify route returning the same
 * bytes (the limit of the HTTP stack). Reports req/s and latency percentiles.
 */
import { spawn } from "node:child_process";
import { fileURLToPath } from "node:url";
import Fastify from "fastify";
import { LlamaEngine } from "../src/llama.js";
import { createGateway } from "../src/server.js";
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
  const gateway = createGateway({ engine });
  const served = { url: await gateway.listen(), close: () => gateway.close() };
  const body = JSON.stringify({
    model: "tiny",
    messages: [{ role: "user", content: "benchmark" }],
    temperature: 0,
    max_tokens: 8,
  });
  const primed = await fetch(`${served.url}/v1/chat/completions`, {
    method: "POST",
    headers: { "content-type": "application/json", authorization: "Bearer bench" },
    body,
  });
  const answer = await primed.text();
  const bare = Fastify();
  bare.post("/v1/chat/completions", async (_request, reply) =>
    reply.header("content-type", "application/json").send(answer),
  );
  await bare.listen({ port: 0, host: "127.0.0.1" });
  const address = bare.server.address();
  const bareUrl = `http://127.0.0.1:${typeof address === "object" && address !== null ? address.port : 0}/v1/chat/completions`;
  try {
    await load(bareUrl, body, 1); // warm both
    await load(`${served.url}/v1/chat/completions`, body, 1);
    const ours = await load(`${served.url}/v1/chat/completions`, body, seconds);
    const limit = await load(bareUrl, body, seconds);
    return [
      {
        label: "gateway, cache hit (chat completion)",
        requestsPerSec: ours.rps,
        p50Ms: ours.p50,
        p99Ms: ours.p99,
        errors: ours.errors,
      },
      {
        label: "bare Fastify route, same bytes",
        requestsPerSec: limit.rps,
        p50Ms: limit.p50,
        p99Ms: limit.p99,
        errors: limit.errors,
      },
    ];
  } finally {
    await bare.close();
    await served.close();
    await engine.close();
  }
}
