/**
 * Converting between a streamed and a plain answer is exact or does not happen: what a
 * conversion cannot carry (audio, a field it does not know, a stream without usage) makes the
 * request a miss instead of a hit that lost something. And no upstream stream, however
 * malformed, takes the process down. A loopback upstream sends each shape.
 */
import type { ServerResponse } from "node:http";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { createGateway, type Gateway } from "../src/server.js";
import { MemoryStore } from "../src/store/memory.js";
import {
  type FakeUpstream,
  type Received,
  sendJson,
  startFakeUpstream,
} from "./helpers/fake-upstream.js";

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

let unique = 0;
const body = (stream: boolean, extra: Record<string, unknown> = {}) => ({
  model: "fake",
  messages: [{ role: "user", content: `convert ${unique}` }],
  temperature: 0,
  stream,
  ...extra,
});
async function post(
  payload: unknown,
): Promise<{ outcome: string | null; text: string; status: number }> {
  const response = await fetch(`${url}/v1/chat/completions`, {
    method: "POST",
    headers: { "content-type": "application/json", authorization: "Bearer sk" },
    body: JSON.stringify(payload),
  });
  const text = await response.text();
  return { outcome: response.headers.get("x-infercache"), text, status: response.status };
}
const chunk = (choices: unknown[], extra: Record<string, unknown> = {}) =>
  `data: ${JSON.stringify({ id: "c1", object: "chat.completion.chunk", created: 1, model: "fake", choices, ...extra })}\n\n`;
const stream =
  (events: string[]) =>
  (_request: Received, response: ServerResponse): void => {
    response.writeHead(200, { "content-type": "text/event-stream" });
    for (const event of events) response.write(event);
    response.end();
  };
const usage = { prompt_tokens: 3, completion_tokens: 2, total_tokens: 5 };

describe("stream to plain", () => {
  it("an upstream that streams its usage: the plain request is a hit with the same content", async () => {
    unique++;
    upstream.respond = stream([
      chunk([{ index: 0, delta: { role: "assistant", content: "Hel" }, finish_reason: null }]),
      chunk([{ index: 0, delta: { content: "lo" }, finish_reason: "stop" }]),
      chunk([], { usage }),
      "data: [DONE]\n\n",
    ]);
    await post(body(true));
    const plain = await post(body(false));
    expect(plain.outcome).toBe("hit");
    const answer = JSON.parse(plain.text);
    expect(answer.choices[0].message.content).toBe("Hello");
    expect(answer.usage).toEqual(usage);
  });

  it("logprobs of every chunk are kept, not only the last chunk's", async () => {
    unique++;
    const lp = (token: string) => ({
      content: [{ token, logprob: -0.1, bytes: null, top_logprobs: [] }],
      refusal: null,
    });
    upstream.respond = stream([
      chunk([
        {
          index: 0,
          delta: { role: "assistant", content: "Hel" },
          logprobs: lp("Hel"),
          finish_reason: null,
        },
      ]),
      chunk([{ index: 0, delta: { content: "lo" }, logprobs: lp("lo"), finish_reason: "stop" }]),
      chunk([], { usage }),
      "data: [DONE]\n\n",
    ]);
    await post(body(true, { logprobs: true }));
    const plain = await post(body(false, { logprobs: true }));
    expect(plain.outcome).toBe("hit");
    const tokens = JSON.parse(plain.text).choices[0].logprobs.content.map(
      (t: { token: string }) => t.token,
    );
    expect(tokens).toEqual(["Hel", "lo"]);
  });

  it("the legacy function_call and annotations are carried over", async () => {
    unique++;
    upstream.respond = stream([
      chunk([
        {
          index: 0,
          delta: { role: "assistant", function_call: { name: "get_", arguments: "" } },
          finish_reason: null,
        },
      ]),
      chunk([
        {
          index: 0,
          delta: { function_call: { name: "weather", arguments: '{"city":"Oslo"}' } },
          finish_reason: null,
        },
      ]),
      chunk([
        {
          index: 0,
          delta: { annotations: [{ type: "url_citation", url_citation: { url: "https://x" } }] },
          finish_reason: "function_call",
        },
      ]),
      chunk([], { usage }),
      "data: [DONE]\n\n",
    ]);
    await post(body(true));
    const plain = await post(body(false));
    expect(plain.outcome).toBe("hit");
    const message = JSON.parse(plain.text).choices[0].message;
    expect(message.function_call).toEqual({ name: "get_weather", arguments: '{"city":"Oslo"}' });
    expect(message.annotations).toHaveLength(1);
  });

  it("a stream with a field the conversion does not know (audio) is no plain answer: a miss", async () => {
    unique++;
    upstream.respond = stream([
      chunk([
        {
          index: 0,
          delta: { role: "assistant", audio: { id: "a1", data: "AAAA", transcript: "hi" } },
          finish_reason: "stop",
        },
      ]),
      chunk([], { usage }),
      "data: [DONE]\n\n",
    ]);
    await post(body(true));
    upstream.respond = undefined;
    expect((await post(body(false))).outcome).toBe("miss");
  });
});

describe("plain to stream", () => {
  it("message.function_call and annotations reach the synthesised chunks", async () => {
    unique++;
    upstream.respond = (_request, response) =>
      sendJson(response, 200, {
        id: "c2",
        object: "chat.completion",
        created: 1,
        model: "fake",
        choices: [
          {
            index: 0,
            message: {
              role: "assistant",
              content: null,
              function_call: { name: "lookup", arguments: "{}" },
              annotations: [],
            },
            logprobs: null,
            finish_reason: "function_call",
          },
        ],
        usage,
      });
    await post(body(false));
    const streamed = await post(body(true));
    expect(streamed.outcome).toBe("hit");
    expect(streamed.text).toContain('"function_call":{"name":"lookup","arguments":"{}"}');
    expect(streamed.text.trim().endsWith("data: [DONE]")).toBe(true);
  });

  it("a plain answer with audio cannot be streamed exactly: a miss", async () => {
    unique++;
    upstream.respond = (_request, response) =>
      sendJson(response, 200, {
        id: "c3",
        object: "chat.completion",
        created: 1,
        model: "fake",
        choices: [
          {
            index: 0,
            message: {
              role: "assistant",
              content: null,
              audio: { id: "a", data: "AAAA", transcript: "hi", expires_at: 1 },
            },
            logprobs: null,
            finish_reason: "stop",
          },
        ],
        usage,
      });
    await post(body(false));
    upstream.respond = undefined;
    expect((await post(body(true))).outcome).toBe("miss");
  });
});

describe("hostile upstream streams", () => {
  for (const [label, payload] of [
    ["choices that is a number", { id: "c", choices: 5 }],
    ["a null choice", { id: "c", choices: [null] }],
    [
      "tool_calls that is an object",
      { id: "c", choices: [{ index: 0, delta: { tool_calls: {} } }] },
    ],
    ["a null tool call", { id: "c", choices: [{ index: 0, delta: { tool_calls: [null] } }] }],
  ] as const) {
    it(`${label}: the gateway lives, and nothing is stored`, async () => {
      unique++;
      upstream.respond = stream([`data: ${JSON.stringify(payload)}\n\n`, "data: [DONE]\n\n"]);
      await post(body(true));
      expect((await fetch(`${url}/healthz`)).status).toBe(200);
      expect((await post(body(true))).outcome).toBe("miss");
    });
  }

  it("an empty stream (only [DONE]) and a plain answer with no choices are not answers", async () => {
    unique++;
    upstream.respond = stream(["data: [DONE]\n\n"]);
    await post(body(true));
    expect((await post(body(true))).outcome).toBe("miss");
    unique++;
    upstream.respond = (_request, response) => sendJson(response, 200, { id: "x", choices: [] });
    await post(body(false));
    expect((await post(body(false))).outcome).toBe("miss");
    unique++;
    upstream.respond = (_request, response) =>
      sendJson(response, 200, { id: "x", choices: [null] });
    await post(body(false));
    expect((await post(body(false))).outcome).toBe("miss");
  });

  it("finish_reason error, and an error event with CR line endings, are not answers", async () => {
    unique++;
    upstream.respond = stream([
      chunk([{ index: 0, delta: { content: "partial" }, finish_reason: "error" }]),
      "data: [DONE]\n\n",
    ]);
    await post(body(true));
    expect((await post(body(true))).outcome).toBe("miss");
    unique++;
    upstream.respond = stream([
      chunk([{ index: 0, delta: { content: "ok" }, finish_reason: "stop" }]),
      'event: error\rdata: {"message":"late failure"}\r\r',
      "data: [DONE]\n\n",
    ]);
    await post(body(true));
    expect((await post(body(true))).outcome).toBe("miss");
  });
});
