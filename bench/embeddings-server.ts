/**
 * A loopback OpenAI-compatible embeddings upstream for the batching benchmark: real embeddings
 * from node-llama-cpp with the bundled models/llama-2-tiny-random.gguf, plus a fixed 20 ms per
 * HTTP request standing for a remote API's round trip. Prints its port on stdout, runs until killed.
 */
import { createServer } from "node:http";
import { fileURLToPath } from "node:url";
import { getLlama } from "node-llama-cpp";

const modelPath =
  process.env.INFERCACHE_MODEL ??
  fileURLToPath(new URL("../models/llama-2-tiny-random.gguf", import.meta.url));
const roundTripMs = Number(process.env.ROUND_TRIP_MS ?? 20);
const llama = await getLlama({ gpu: false, maxThreads: 1, build: "never" });
const model = await llama.loadModel({ modelPath });
const context = await model.createEmbeddingContext({ threads: 1 });

let requests = 0;
const server = createServer((request, response) => {
  if (request.method !== "POST" || request.url !== "/v1/embeddings") {
    response.writeHead(404).end();
    return;
  }
  let body = "";
  request.on("data", (chunk: Buffer) => {
    body += chunk.toString();
  });
  request.on("end", async () => {
    requests++;
    const { input, model: name } = JSON.parse(body) as { input: string | string[]; model: string };
    const inputs = Array.isArray(input) ? input : [input];
    await new Promise((resolve) => setTimeout(resolve, roundTripMs));
    const data = [];
    for (const [index, text] of inputs.entries()) {
      const embedding = await context.getEmbeddingFor(text);
      data.push({ object: "embedding", index, embedding: Array.from(embedding.vector) });
    }
    response.writeHead(200, { "content-type": "application/json" });
    response.end(
      JSON.stringify({
        object: "list",
        data,
        model: name,
        usage: { prompt_tokens: 0, total_tokens: 0 },
        requests,
      }),
    );
  });
});
server.listen(0, "127.0.0.1", () => {
  const address = server.address();
  process.stdout.write(`${typeof address === "object" && address !== null ? address.port : 0}\n`);
});
