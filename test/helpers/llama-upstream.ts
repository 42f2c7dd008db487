/**
 * The local llama engine (node-llama-cpp with the bundled models/llama-2-tiny-random.gguf, one
 * thread) served on a loopback port, with a switch that makes it fail like a broken upstream.
 */
import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { LlamaEngine } from "../../src/llama.js";
import { type ServedHandler, serveFetchHandler } from "../../src/server.js";

export const MODEL_PATH =
  process.env.INFERCACHE_MODEL ??
  fileURLToPath(new URL("../../models/llama-2-tiny-random.gguf", import.meta.url));

export interface Upstream {
  engine: LlamaEngine;
  served: ServedHandler;
  baseURL: string;
  /** Answer every request with this status instead (e.g. 500, 429). */
  failWith: number | undefined;
  /** Cut streamed answers after this many bytes. */
  cutStreamsAfter: number | undefined;
  /** While set, requests wait for it before the engine sees them (a slow upstream). */
  gate: Promise<void> | undefined;
  /** Requests that reached the upstream (before the gate). */
  arrived: number;
  close(): Promise<void>;
}

export async function startUpstream(): Promise<Upstream> {
  if (!existsSync(MODEL_PATH)) {
    throw new Error(
      `the test model is missing at ${MODEL_PATH} (set INFERCACHE_MODEL to a GGUF file)`,
    );
  }
  const engine = await LlamaEngine.load({ modelPath: MODEL_PATH, modelName: "tiny" });
  const upstream: Upstream = {
    engine,
    served: undefined as unknown as ServedHandler,
    baseURL: "",
    failWith: undefined,
    cutStreamsAfter: undefined,
    gate: undefined,
    arrived: 0,
    close: async () => {
      await upstream.served.close();
      await engine.close();
    },
  };
  upstream.served = await serveFetchHandler(async (request) => {
    upstream.arrived++;
    if (upstream.gate !== undefined) await upstream.gate;
    if (upstream.failWith !== undefined) {
      engine.received.push({
        path: new URL(request.url).pathname,
        body: (await request.json()) as Record<string, unknown>,
      });
      return new Response(
        JSON.stringify({ error: { message: "upstream trouble", type: "server_error" } }),
        {
          status: upstream.failWith,
          headers: { "content-type": "application/json" },
        },
      );
    }
    const response = await engine.handle(request);
    const cut = upstream.cutStreamsAfter;
    if (
      cut === undefined ||
      response.body === null ||
      !(response.headers.get("content-type") ?? "").includes("event-stream")
    ) {
      return response;
    }
    const reader = response.body.getReader();
    let sent = 0;
    const body = new ReadableStream<Uint8Array>({
      pull: async (controller) => {
        const { done, value } = await reader.read();
        if (done || sent >= cut) {
          // A connection that drops mid-stream.
          controller.error(new Error("connection reset"));
          await reader.cancel().catch(() => {});
          return;
        }
        sent += value.length;
        controller.enqueue(value);
      },
    });
    return new Response(body, { status: response.status, headers: response.headers });
  });
  upstream.baseURL = `${upstream.served.url}/v1`;
  return upstream;
}
