/**
 * Anthropic Messages (`POST /v1/messages`, `POST /v1/messages/count_tokens`) through the
 * gateway, with the real Anthropic SDK as the client (`messages.create`, `messages.stream`,
 * `messages.countTokens`) and a loopback upstream that speaks the documented wire format
 * (test/helpers/fake-messages.ts): hits plain and streamed, streamed hits byte for byte,
 * thinking signatures and redacted thinking replayed exactly through both conversions (read
 * back by the SDK's `MessageStream`), usage on a hit, single-flight, what is never stored,
 * tenants from `x-api-key` (and from the bearer token @anthropic-ai/sdk 1.x sends its API key
 * as), the key field by field, and batches passing through.
 */
import type { ServerResponse } from "node:http";
import Anthropic from "@anthropic-ai/sdk";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { createGateway, type Gateway } from "../src/server.js";
import { MemoryStore } from "../src/store/memory.js";
import { answerMessages, messageStreamEvents } from "./helpers/fake-messages.js";
import { type FakeUpstream, type Received, startFakeUpstream } from "./helpers/fake-upstream.js";
import { until } from "./helpers/until.js";

let upstream: FakeUpstream;
let gateway: Gateway;
let url: string;

const answers = (request: Received, response: ServerResponse) => {
  if (!answerMessages(request, response)) {
    response.writeHead(200, { "content-type": "application/json" });
    response.end(JSON.stringify({ object: "passed", method: request.method, path: request.path }));
  }
};

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
  upstream.respond = answers;
});

const anthropic = (apiKey = "sk-ant-test", headers: Record<string, string> = {}) =>
  new Anthropic({ apiKey, baseURL: url, maxRetries: 0, defaultHeaders: headers });
let unique = 0;
const ask = (extra: Record<string, unknown> = {}) => ({
  model: "claude-fake",
  max_tokens: 64,
  messages: [{ role: "user" as const, content: `question ${++unique}` }],
  temperature: 0,
  ...extra,
});
/** Thinking (signed), redacted thinking, text and a tool use. */
const withBlocks = () =>
  ask({
    temperature: 1,
    thinking: { type: "enabled", budget_tokens: 1024 },
    tools: [
      {
        name: "get_weather",
        description: "The weather",
        input_schema: { type: "object", properties: { location: { type: "string" } } },
      },
    ],
  });
const calls = () => upstream.count("/messages");
type Params = Parameters<Anthropic["messages"]["create"]>[0] & { stream?: false };

/** The SDK's stream helper adds `parsed_output`; the wire has none. */
const wire = (value: unknown): unknown =>
  JSON.parse(JSON.stringify(value), (key, v) => (key === "parsed_output" ? undefined : v));

async function post(
  body: Record<string, unknown>,
  headers: Record<string, string> = {},
  path = "/v1/messages",
) {
  const response = await fetch(`${url}${path}`, {
    method: "POST",
    headers: {
      "content-type": "application/json",
      "x-api-key": "sk-ant-test",
      "anthropic-version": "2023-06-01",
      ...headers,
    },
    body: JSON.stringify(body),
  });
  return { response, text: await response.text(), outcome: response.headers.get("x-infercache") };
}

describe("Messages: hits, plain and streamed", () => {
  it("a repeated request is a hit with the recorded body; usage as recorded, the header says it was free", async () => {
    const request = ask() as Params;
    const before = calls();
    const miss = await anthropic().messages.create(request).withResponse();
    const hit = await anthropic().messages.create(request).withResponse();
    expect(miss.response.headers.get("x-infercache")).toBe("miss");
    expect(hit.response.headers.get("x-infercache")).toBe("hit");
    expect(hit.data).toEqual(miss.data);
    expect(hit.data.usage).toMatchObject({
      input_tokens: 20,
      cache_creation_input_tokens: 1000,
      cache_read_input_tokens: 3000,
      output_tokens: 7,
    });
    // 20 + 1000 + 3000 input (Anthropic counts cache reads and writes apart) + 7 output.
    expect(hit.response.headers.get("x-infercache-saved-tokens")).toBe("4027");
    expect(calls() - before).toBe(1);
  });

  it("a streamed hit is byte-identical to the streamed miss, and the SDK reads it", async () => {
    const request = { ...ask(), stream: true };
    const miss = await post(request);
    const hit = await post(request);
    expect([miss.outcome, hit.outcome]).toEqual(["miss", "hit"]);
    expect(hit.text).toBe(miss.text);
    expect(hit.text).toContain("event: ping");
    const { stream: _, ...plain } = request;
    const final = await anthropic()
      .messages.stream(plain as Params)
      .finalMessage();
    expect(final.content).toEqual([{ type: "text", text: `echo: question ${unique}` }]);
  });

  it("a streamed request is served from a plain record, signatures and redacted thinking exact", async () => {
    const request = withBlocks() as Params;
    const plain = await anthropic().messages.create(request);
    expect(plain.content.map((block) => block.type)).toEqual([
      "thinking",
      "redacted_thinking",
      "text",
      "tool_use",
    ]);
    let thinking = "";
    let signature = "";
    let json = "";
    const final = await anthropic()
      .messages.stream(request)
      .on("thinking", (delta) => {
        thinking += delta;
      })
      .on("signature", (value) => {
        signature = value;
      })
      .on("inputJson", (delta) => {
        json += delta;
      })
      .finalMessage();
    expect(wire(final)).toEqual(wire(plain));
    const block = plain.content[0] as { thinking: string; signature: string };
    expect(thinking).toBe(block.thinking);
    expect(signature).toBe(block.signature);
    expect(JSON.parse(json)).toEqual((plain.content[3] as { input: unknown }).input);
  });

  it("a plain request is served from a streamed record, signatures and tool input exact", async () => {
    const request = withBlocks() as Params;
    const streamed = await anthropic().messages.stream(request).finalMessage();
    const plain = await anthropic().messages.create(request).withResponse();
    expect(plain.response.headers.get("x-infercache")).toBe("hit");
    expect(wire(plain.data)).toEqual(wire(streamed));
    const raw = await anthropic().messages.create(request).asResponse();
    expect(raw.headers.get("x-infercache")).toBe("hit");
    const content = JSON.parse(await raw.text()).content;
    expect(content[0].signature).toMatch(/^EqQBCgIYAhIM/);
    expect(content[1]).toEqual({
      type: "redacted_thinking",
      data: expect.stringMatching(/\+\/=$/),
    });
    // A field named cache_control inside a tool's input is data: kept as sent.
    expect(content[3].input.nested).toEqual({ cache_control: "data, not a hint" });
  });

  it("an answer cut by max_tokens is an answer", async () => {
    const request = { ...ask({ max_tokens: 1 }), stream: true };
    const miss = await post(request);
    const hit = await post(request);
    expect(hit.outcome).toBe("hit");
    expect(hit.text).toBe(miss.text);
    expect(hit.text).toContain('"stop_reason":"max_tokens"');
  });

  it("count_tokens is cached, with cache_control out of its key", async () => {
    const request = {
      model: "claude-fake",
      messages: [{ role: "user", content: `count ${++unique}` }],
    };
    const before = upstream.count("/messages/count_tokens");
    const first = await anthropic()
      .messages.countTokens(request as never)
      .withResponse();
    const second = await anthropic()
      .messages.countTokens({
        ...request,
        messages: [
          {
            role: "user",
            content: [
              {
                type: "text",
                text: request.messages[0]?.content as string,
                cache_control: { type: "ephemeral" },
              },
            ],
          },
        ],
      } as never)
      .withResponse();
    const third = await anthropic()
      .messages.countTokens(request as never)
      .withResponse();
    expect(first.response.headers.get("x-infercache")).toBe("miss");
    expect(third.response.headers.get("x-infercache")).toBe("hit");
    expect(third.data).toEqual(first.data);
    // A content block array is not the same request as a string content: a miss, and a key of its own.
    expect(second.response.headers.get("x-infercache")).toBe("miss");
    expect(upstream.count("/messages/count_tokens") - before).toBe(2);
    const again = await anthropic()
      .messages.countTokens({
        model: "claude-fake",
        messages: [
          {
            role: "user",
            content: [{ type: "text", text: request.messages[0]?.content as string }],
          },
        ],
      })
      .withResponse();
    expect(again.response.headers.get("x-infercache")).toBe("hit");
  });
});

describe("Messages: single-flight", () => {
  function hold() {
    let open!: () => void;
    const gate = new Promise<void>((resolve) => {
      open = resolve;
    });
    upstream.respond = async (request, response) => {
      await gate;
      answers(request, response);
    };
    return open;
  }

  for (const stream of [false, true]) {
    it(`5 identical ${stream ? "streamed" : "plain"} requests at once make one upstream call`, async () => {
      const request = { ...ask(), stream };
      const open = hold();
      const before = calls();
      const joinedBefore = gateway.pipeline.stats().coalesced;
      const pending = Array.from({ length: 5 }, () => post(request));
      await until(() => calls() - before === 1, "the first request reaching the upstream");
      await until(
        () => gateway.pipeline.stats().coalesced - joinedBefore === 4,
        "four requests joining it",
      );
      open();
      const all = await Promise.all(pending);
      expect(calls() - before).toBe(1);
      expect(all.map((a) => a.outcome).sort()).toEqual([
        "coalesced",
        "coalesced",
        "coalesced",
        "coalesced",
        "miss",
      ]);
      for (const answer of all) expect(answer.text).toBe(all[0]?.text);
    });
  }
});

describe("Messages: what is not an answer is never stored", () => {
  async function twice(body: Record<string, unknown>): Promise<number> {
    const before = calls();
    await post(body).catch(() => undefined);
    await post(body).catch(() => undefined);
    return calls() - before;
  }
  const streamOf =
    (edit: (events: string[]) => string[]) => (request: Received, response: ServerResponse) => {
      response.writeHead(200, { "content-type": "text/event-stream" });
      for (const event of edit(messageStreamEvents(request))) response.write(event);
      response.end();
    };

  it("a 529 overloaded and a 429", async () => {
    for (const [status, type] of [
      [529, "overloaded_error"],
      [429, "rate_limit_error"],
    ] as const) {
      upstream.respond = (_request, response) => {
        response.writeHead(status, { "content-type": "application/json" });
        response.end(JSON.stringify({ type: "error", error: { type, message: "no" } }));
      };
      expect(await twice(ask())).toBe(2);
    }
  });

  it("a 200 whose body is an error", async () => {
    upstream.respond = (_request, response) => {
      response.writeHead(200, { "content-type": "application/json" });
      response.end(
        JSON.stringify({ type: "error", error: { type: "api_error", message: "internal" } }),
      );
    };
    expect(await twice(ask())).toBe(2);
  });

  it("a stream with an `error` event (overloaded mid-stream)", async () => {
    upstream.respond = streamOf((events) => [
      ...events.slice(0, 4),
      'event: error\ndata: {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}\n\n',
    ]);
    expect(await twice({ ...ask(), stream: true })).toBe(2);
  });

  it("a stream that has an error event and still ends with message_stop", async () => {
    upstream.respond = streamOf((events) => [
      ...events.slice(0, -1),
      'event: error\ndata: {"type":"error","error":{"type":"api_error","message":"x"}}\n\n',
      ...events.slice(-1),
    ]);
    expect(await twice({ ...ask(), stream: true })).toBe(2);
  });

  it("a stream that ends without message_stop", async () => {
    upstream.respond = streamOf((events) => events.slice(0, -1));
    expect(await twice({ ...ask(), stream: true })).toBe(2);
  });

  it("a stream whose connection is cut", async () => {
    upstream.respond = (request, response) => {
      response.writeHead(200, { "content-type": "text/event-stream" });
      for (const event of messageStreamEvents(request).slice(0, 4)) response.write(event);
      response.destroy();
    };
    expect(await twice({ ...ask(), stream: true })).toBe(2);
  });

  it("a stream with a delta type the assembler does not know (it could not be added up for a plain request)", async () => {
    upstream.respond = streamOf((events) => [
      ...events.slice(0, 3),
      'event: content_block_delta\ndata: {"type":"content_block_delta","index":0,"delta":{"type":"future_delta","value":"?"}}\n\n',
      ...events.slice(3),
    ]);
    expect(await twice({ ...ask(), stream: true })).toBe(2);
  });

  it("while a good answer is stored (the control case)", async () => {
    expect(await twice(ask())).toBe(1);
    expect(await twice({ ...ask(), stream: true })).toBe(1);
  });
});

describe("Messages: tenants and errors in Anthropic's shape", () => {
  it("two x-api-key headers never share an answer", async () => {
    const request = ask();
    expect((await post(request, { "x-api-key": "sk-ant-a" })).outcome).toBe("miss");
    expect((await post(request, { "x-api-key": "sk-ant-b" })).outcome).toBe("miss");
    expect((await post(request, { "x-api-key": "sk-ant-a" })).outcome).toBe("hit");
  });

  it("two SDK API keys (this SDK sends them as a bearer token) never share an answer", async () => {
    const request = ask() as Params;
    await anthropic("sk-ant-a").messages.create(request);
    const other = await anthropic("sk-ant-b").messages.create(request).withResponse();
    const same = await anthropic("sk-ant-a").messages.create(request).withResponse();
    expect(other.response.headers.get("x-infercache")).toBe("miss");
    expect(same.response.headers.get("x-infercache")).toBe("hit");
  });

  it("a body the gateway refuses gets Anthropic's error shape, which the SDK reads", async () => {
    const response = await fetch(`${url}/v1/messages`, {
      method: "POST",
      headers: { "content-type": "application/json", "x-api-key": "k" },
      body: "{ not json",
    });
    expect(response.status).toBe(400);
    expect(await response.json()).toEqual({
      type: "error",
      error: { type: "invalid_request_error", message: "the request body is not valid JSON" },
    });
    const only = await post(ask(), { "cache-control": "only-if-cached" });
    expect(only.response.status).toBe(504);
    expect(JSON.parse(only.text).error.type).toBe("timeout_error");
  });
});

describe("Messages: the key, field by field", () => {
  async function shares(
    a: Record<string, unknown>,
    b: Record<string, unknown>,
    headersA: Record<string, string> = {},
    headersB: Record<string, string> = headersA,
  ): Promise<boolean> {
    expect((await post(a, headersA)).outcome).toBe("miss");
    return (await post(b, headersB)).outcome === "hit";
  }
  const text = () => `a long document ${++unique}`;
  const ephemeral = { type: "ephemeral" };

  it("metadata (user_id) is out of the key", async () => {
    const base = ask();
    expect(await shares(base, { ...base, metadata: { user_id: "end-user-7" } })).toBe(true);
  });

  it("cache_control is out: top-level, system blocks, content blocks, tools, tool results, documents", async () => {
    const doc = text();
    const plain = {
      ...ask(),
      system: [{ type: "text", text: "be brief" }],
      tools: [{ name: "f", input_schema: { type: "object" } }],
      messages: [
        { role: "user", content: [{ type: "text", text: doc }] },
        { role: "assistant", content: [{ type: "tool_use", id: "t1", name: "f", input: {} }] },
        {
          role: "user",
          content: [
            {
              type: "tool_result",
              tool_use_id: "t1",
              content: [{ type: "text", text: "result" }],
            },
            {
              type: "document",
              source: { type: "content", content: [{ type: "text", text: "chunk" }] },
            },
          ],
        },
      ],
    };
    const marked = {
      ...plain,
      cache_control: ephemeral,
      system: [{ type: "text", text: "be brief", cache_control: ephemeral }],
      tools: [{ ...plain.tools[0], cache_control: { type: "ephemeral", ttl: "1h" } }],
      messages: [
        { role: "user", content: [{ type: "text", text: doc, cache_control: ephemeral }] },
        plain.messages[1],
        {
          role: "user",
          content: [
            {
              type: "tool_result",
              tool_use_id: "t1",
              cache_control: ephemeral,
              content: [{ type: "text", text: "result", cache_control: ephemeral }],
            },
            {
              type: "document",
              cache_control: ephemeral,
              source: {
                type: "content",
                content: [{ type: "text", text: "chunk", cache_control: ephemeral }],
              },
            },
          ],
        },
      ],
    };
    expect(await shares(plain, marked)).toBe(true);
  });

  it("but a field named cache_control in a tool's input_schema or a tool use's input is data", async () => {
    const tool = (properties: Record<string, unknown>) => ({
      ...ask(),
      tools: [{ name: "f", input_schema: { type: "object", properties } }],
    });
    const a = tool({ cache_control: { type: "string" } });
    expect(await shares(a, { ...a, tools: tool({}).tools })).toBe(false);
    const use = (input: Record<string, unknown>) => ({
      ...ask(),
      messages: [
        { role: "user", content: "go" },
        { role: "assistant", content: [{ type: "tool_use", id: "t", name: "f", input }] },
        { role: "user", content: [{ type: "tool_result", tool_use_id: "t", content: "ok" }] },
      ],
    });
    const b = use({ cache_control: 1 });
    expect(await shares(b, { ...b, messages: use({}).messages })).toBe(false);
  });

  for (const [field, a, b] of [
    ["system", "be brief", "be thorough"],
    [
      "thinking",
      { type: "enabled", budget_tokens: 1024 },
      { type: "enabled", budget_tokens: 2048 },
    ],
    ["stop_sequences", ["END"], ["STOP"]],
    ["max_tokens", 64, 65],
    ["tool_choice", { type: "auto" }, { type: "any" }],
    ["top_k", 5, 6],
    ["some_new_parameter", 1, 2],
  ] as const) {
    it(`${field} is in the key`, async () => {
      const base = ask();
      expect(await shares({ ...base, [field]: a }, { ...base, [field]: b })).toBe(false);
    });
  }

  it("a thinking block's signature in a later turn is in the key", async () => {
    const turn = (signature: string) => ({
      ...ask(),
      messages: [
        { role: "user", content: "q" },
        {
          role: "assistant",
          content: [
            { type: "thinking", thinking: "hmm", signature },
            { type: "text", text: "a" },
          ],
        },
        { role: "user", content: `and then ${++unique}` },
      ],
    });
    const a = turn("sig-one");
    expect(await shares(a, { ...a, messages: turn("sig-two").messages })).toBe(false);
  });

  for (const name of ["anthropic-version", "anthropic-beta", "anthropic-workspace-id"]) {
    it(`the ${name} header is in the key`, async () => {
      const body = ask();
      expect(await shares(body, body, { [name]: "one" }, { [name]: "two" })).toBe(false);
      const same = ask();
      expect(await shares(same, same, { [name]: "one" }, { [name]: "one" })).toBe(true);
    });
  }

  it("anthropic-user-profile-id (attribution) is not", async () => {
    const body = ask();
    expect(
      await shares(
        body,
        body,
        { "anthropic-user-profile-id": "a" },
        { "anthropic-user-profile-id": "b" },
      ),
    ).toBe(true);
  });
});

describe("Messages: batches pass through", () => {
  for (const [method, path] of [
    ["POST", "/v1/messages/batches"],
    ["GET", "/v1/messages/batches/msgbatch_1"],
    ["GET", "/v1/messages/batches/msgbatch_1/results"],
  ] as const) {
    it(`${method} ${path}`, async () => {
      const before = upstream.received.length;
      for (let i = 0; i < 2; i++) {
        const response = await fetch(`${url}${path}`, {
          method,
          headers: { "x-api-key": "k", "content-type": "application/json" },
          ...(method === "POST" && { body: JSON.stringify({ requests: [] }) }),
        });
        expect(response.headers.get("x-infercache")).toBeNull();
        expect(await response.json()).toEqual({ object: "passed", method, path });
      }
      expect(upstream.received.length - before).toBe(2);
    });
  }
});
