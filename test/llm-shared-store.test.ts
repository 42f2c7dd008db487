/**
 * cachingFetch on a store shared by processes (a real redis-server): identical requests arriving
 * at different gateways (each with its own connection, as separate processes have) call the
 * upstream once; the others wait for the stored answer. The upstream is the real local engine,
 * held at a gate so every request is in flight at once.
 */
import OpenAI from "openai";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { cachingFetch } from "../src/llm.js";
import { RedisStore } from "../src/redis.js";
import { startUpstream, type Upstream } from "./helpers/llama-upstream.js";
import { RedisServer } from "./helpers/redis-server.js";

let server: RedisServer;
let upstream: Upstream;
const stores: RedisStore[] = [];

beforeAll(async () => {
  server = await RedisServer.start();
  upstream = await startUpstream();
}, 60_000);
afterAll(async () => {
  for (const store of stores) await store.close();
  await upstream?.close();
  await server?.kill();
});

function gatewayClient(prefix: string): OpenAI {
  const store = new RedisStore({ url: server.url, prefix });
  stores.push(store);
  return new OpenAI({
    apiKey: "k",
    baseURL: upstream.baseURL,
    maxRetries: 0,
    fetch: cachingFetch({ store, namespace: "shared" }),
  });
}

async function heldAtGate<T>(run: () => Promise<T>): Promise<T> {
  let open!: () => void;
  upstream.gate = new Promise<void>((resolve) => {
    open = resolve;
  });
  const arrived = upstream.arrived;
  const result = run();
  while (upstream.arrived === arrived) await new Promise((resolve) => setTimeout(resolve, 5));
  await new Promise((resolve) => setTimeout(resolve, 100)); // every caller is waiting now
  upstream.gate = undefined;
  open();
  return result;
}

describe("cachingFetch with a shared Redis store", () => {
  it("calls the upstream once for identical requests arriving at different instances", async () => {
    const clients = [gatewayClient("one:"), gatewayClient("one:"), gatewayClient("one:")];
    const request = {
      model: "tiny",
      messages: [{ role: "user" as const, content: "shared across processes" }],
      temperature: 0,
      max_tokens: 6,
    };
    const before = upstream.arrived;
    const answers = await heldAtGate(() =>
      Promise.all(
        clients.flatMap((client) =>
          [1, 2].map(() => client.chat.completions.create(request).withResponse()),
        ),
      ),
    );
    expect(upstream.arrived - before).toBe(1);
    const outcomes = answers.map((a) => a.response.headers.get("x-infercache")).sort();
    expect(outcomes).toEqual([
      "coalesced",
      "coalesced",
      "coalesced",
      "coalesced",
      "coalesced",
      "miss",
    ]);
    for (const answer of answers) expect(answer.data).toEqual(answers[0]?.data);
  });

  it("does the same for a stream: the waiting instances replay the stored stream", async () => {
    const [first, second] = [gatewayClient("two:"), gatewayClient("two:")];
    const request = {
      model: "tiny",
      messages: [{ role: "user" as const, content: "a shared stream" }],
      temperature: 0,
      max_tokens: 6,
      stream: true as const,
    };
    const read = async (client: OpenAI) => {
      const { data, response } = await client.chat.completions.create(request).withResponse();
      let text = "";
      for await (const chunk of data) text += chunk.choices[0]?.delta.content ?? "";
      return { text, outcome: response.headers.get("x-infercache") };
    };
    const before = upstream.arrived;
    const [a, b] = await heldAtGate(() =>
      Promise.all([read(first as OpenAI), read(second as OpenAI)]),
    );
    expect(upstream.arrived - before).toBe(1);
    expect(a?.text).toBe(b?.text);
    expect([a?.outcome, b?.outcome].sort()).toEqual(["coalesced", "miss"]);
  });
});
