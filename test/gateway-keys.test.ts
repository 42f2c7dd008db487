/**
 * What is in a gateway key and what stays out, field by field and header by header, with the
 * real OpenAI SDK as the client and a loopback upstream that counts what reaches it.
 */
import OpenAI from "openai";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { createGateway, type Gateway } from "../src/server.js";
import { MemoryStore } from "../src/store/memory.js";
import { type FakeUpstream, startFakeUpstream } from "./helpers/fake-upstream.js";

let upstream: FakeUpstream;
let gateway: Gateway;
let url: string;

beforeAll(async () => {
  upstream = await startFakeUpstream();
  gateway = createGateway({ upstream: upstream.baseURL, store: new MemoryStore({ maxSize: 0 }) });
  url = await gateway.listen();
});
afterAll(async () => {
  await gateway?.close();
  await upstream?.close();
});
beforeEach(() => {
  upstream.respond = undefined;
});

const openai = (headers: Record<string, string> = {}, apiKey = "sk-test") =>
  new OpenAI({ apiKey, baseURL: `${url}/v1`, maxRetries: 0, defaultHeaders: headers });
let unique = 0;
const chat = (extra: Record<string, unknown> = {}) => ({
  model: "fake",
  messages: [{ role: "user" as const, content: `question ${++unique}` }],
  temperature: 0,
  ...extra,
});

/** Sends `a` then `b` (raw bodies, same headers) and says whether `b` was served from the cache. */
async function shares(
  a: Record<string, unknown>,
  b: Record<string, unknown>,
  headersA: Record<string, string> = {},
  headersB: Record<string, string> = headersA,
  path = "/v1/chat/completions",
): Promise<boolean> {
  const send = async (body: Record<string, unknown>, headers: Record<string, string>) => {
    const response = await fetch(`${url}${path}`, {
      method: "POST",
      headers: { "content-type": "application/json", authorization: "Bearer sk-test", ...headers },
      body: JSON.stringify(body),
    });
    await response.arrayBuffer();
    return response.headers.get("x-infercache");
  };
  expect(await send(a, headersA)).toBe("miss");
  return (await send(b, headersB)) === "hit";
}

describe("out of the key: billing, routing and retention hints", () => {
  for (const [field, value] of [
    ["user", "end-user-42"],
    ["safety_identifier", "hashed-user"],
    ["metadata", { run: "7" }],
    ["store", true],
    ["prompt_cache_key", "conversation-1"],
    ["prompt_cache_retention", "24h"],
  ] as const) {
    it(`${field} does not split the cache (the answer does not depend on it)`, async () => {
      const base = chat();
      expect(await shares(base, { ...base, [field]: value })).toBe(true);
    });
  }

  it("cache_control on messages, content parts, system blocks and tools is ignored", async () => {
    const plain = {
      model: "fake",
      temperature: 0,
      system: [{ type: "text", text: "be brief" }],
      messages: [{ role: "user", content: [{ type: "text", text: `long document ${++unique}` }] }],
      tools: [{ type: "function", function: { name: "f", parameters: { type: "object" } } }],
    };
    const marked = {
      ...plain,
      system: [{ type: "text", text: "be brief", cache_control: { type: "ephemeral" } }],
      messages: [
        {
          role: "user",
          cache_control: { type: "ephemeral" },
          content: [
            {
              type: "text",
              text: plain.messages[0]?.content[0]?.text,
              cache_control: { type: "ephemeral", ttl: "1h" },
            },
          ],
        },
      ],
      tools: [{ ...plain.tools[0], cache_control: { type: "ephemeral" } }],
    };
    expect(await shares(plain, marked)).toBe(true);
  });

  it("but a tool parameter named cache_control is part of the schema, and of the key", async () => {
    const tool = (properties: Record<string, unknown>) => ({
      ...chat(),
      tools: [
        { type: "function", function: { name: "f", parameters: { type: "object", properties } } },
      ],
    });
    const a = tool({ cache_control: { type: "string" } });
    const b = { ...a, tools: tool({}).tools };
    expect(await shares(a, b)).toBe(false);
  });
});

describe("in the key: what changes the answer", () => {
  it("stream_options.include_usage: a replay carries the usage chunk exactly when asked", async () => {
    const request = { ...chat(), stream: true as const };
    const events = async (includeUsage: boolean) => {
      const stream = await openai().chat.completions.create({
        ...request,
        ...(includeUsage && { stream_options: { include_usage: true } }),
      });
      const chunks = [];
      for await (const chunk of stream) chunks.push(chunk);
      return chunks;
    };
    const withUsage = await events(true);
    const without = await events(false);
    const againWithout = await events(false);
    const againWith = await events(true);
    expect(withUsage.at(-1)?.usage?.total_tokens).toBe(15);
    expect(without.some((chunk) => chunk.usage)).toBe(false);
    expect(againWithout).toEqual(without);
    expect(againWith).toEqual(withUsage);
    expect(upstream.count("/chat/completions")).toBeGreaterThanOrEqual(2);
  });

  for (const name of [
    "OpenAI-Organization",
    "OpenAI-Project",
    "OpenAI-Beta",
    "anthropic-version",
    "anthropic-beta",
  ]) {
    it(`the ${name} header`, async () => {
      const body = chat();
      expect(await shares(body, body, { [name]: "one" }, { [name]: "two" })).toBe(false);
      expect(await shares(chat(), chat(), { [name]: "one" })).toBe(false);
      const same = chat();
      expect(await shares(same, same, { [name]: "one" }, { [name]: "one" })).toBe(true);
    });
  }

  it("the query string (Azure's ?api-version=)", async () => {
    const body = chat();
    const send = async (search: string) => {
      const response = await fetch(`${url}/v1/chat/completions${search}`, {
        method: "POST",
        headers: { "content-type": "application/json", authorization: "Bearer sk-test" },
        body: JSON.stringify(body),
      });
      await response.arrayBuffer();
      return response.headers.get("x-infercache");
    };
    expect(await send("?api-version=2024-10-21")).toBe("miss");
    expect(await send("?api-version=2024-10-21")).toBe("hit");
    expect(await send("?api-version=2025-01-01")).toBe("miss");
    expect(await send("")).toBe("miss");
    expect(upstream.received.at(-1)?.search).toBe("");
    expect(upstream.received.at(-2)?.search).toBe("?api-version=2025-01-01");
  });

  it("an unknown field is kept (it may change the answer)", async () => {
    const base = chat();
    expect(await shares(base, { ...base, some_new_parameter: 1 })).toBe(false);
  });
});

describe("embeddings keys and bodies the gateway refuses", () => {
  const embed = (body: unknown) =>
    fetch(`${url}/v1/embeddings`, {
      method: "POST",
      headers: { "content-type": "application/json", authorization: "Bearer sk-test" },
      body: typeof body === "string" ? body : JSON.stringify(body),
    });

  it("a non-string model never shares a key with a missing or empty one", async () => {
    const input = `embed me ${++unique}`;
    await (await embed({ input })).arrayBuffer();
    const numeric = await embed({ model: 1, input });
    expect(numeric.headers.get("x-infercache")).toBe("miss");
    const empty = await embed({ model: "", input });
    expect(empty.headers.get("x-infercache")).toBe("miss");
    const again = await embed({ model: 1, input });
    expect(again.headers.get("x-infercache")).toBe("hit");
  });

  it("a body that is not valid UTF-8 gets 400 and never reaches the upstream", async () => {
    const before = upstream.received.length;
    const response = await fetch(`${url}/v1/chat/completions`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: Buffer.concat([
        Buffer.from('{"model":"fake","messages":[{"role":"user","content":"'),
        Buffer.from([0xff, 0xfe]),
        Buffer.from('"}]}'),
      ]),
    });
    expect(response.status).toBe(400);
    expect(((await response.json()) as { error: { message: string } }).error.message).toMatch(
      /not valid UTF-8/,
    );
    expect(upstream.received.length).toBe(before);
  });

  it("JSON nested past the limit gets a 400 that says so, not a 500", async () => {
    const deep = `${'{"a":'.repeat(5000)}1${"}".repeat(5000)}`;
    const response = await embed(`{"model":"fake","input":"x","extra":${deep}}`);
    expect(response.status).toBe(400);
    expect(((await response.json()) as { error: { message: string } }).error.message).toMatch(
      /nested deeper than 128 levels/,
    );
  });

  it("a body holding __proto__ gets a 400 that says so", async () => {
    const before = upstream.received.length;
    const response = await fetch(`${url}/v1/chat/completions`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: '{"model":"fake","messages":[],"__proto__":{"temperature":0}}',
    });
    expect(response.status).toBe(400);
    expect(((await response.json()) as { error: { message: string } }).error.message).toMatch(
      /__proto__/,
    );
    expect(upstream.received.length).toBe(before);
  });
});
