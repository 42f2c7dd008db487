/**
 * Gateway cache hits under load: autocannon with 50 connections against the gateway (a primed
 * chat completion, so every request is a hit) and against a bare Fastify route returning the same
 * bytes (the limit of the HTTP stack). Reports req/s and latency percentiles.
 */
import autocannon from "autocannon";
import Fastify from "fastify";
import { LlamaEngine } from "../src/llama.js";
import { serveFetchHandler } from "../src/llm.js";
import { createGateway } from "../src/server.js";
import { MODEL_PATH } from "../test/helpers/llama-upstream.js";

export interface GatewayRow {
  label: string;
  requestsPerSec: number;
  p50Ms: number;
  p99Ms: number;
  errors: number;
}

async function load(
  url: string,
  body: string,
  seconds: number,
): Promise<{ rps: number; p50: number; p99: number; errors: number }> {
  const result = await autocannon({
    url,
    method: "POST",
    headers: { "content-type": "application/json", authorization: "Bearer bench" },
    body,
    connections: 50,
    duration: seconds,
  });
  return {
    rps: result.requests.average,
    p50: result.latency.p50,
    p99: result.latency.p99,
    errors: result.errors + result.non2xx,
  };
}

export async function gatewayBench(seconds = 5): Promise<GatewayRow[]> {
  const engine = await LlamaEngine.load({ modelPath: MODEL_PATH, modelName: "tiny" });
  const served = await serveFetchHandler(createGateway({ engine }).handle);
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
