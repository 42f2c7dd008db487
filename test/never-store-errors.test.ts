/**
 * Never store what is not an answer: streams carrying an error (as an `event: error`, as a
 * `{ "error"` payload with any spacing, or as an `error` field in a chunk), a 200 whose JSON is
 * an error object, and a stream that ends without its terminator — each sent by a loopback
 * upstream, each asked twice: the second request must reach the upstream again. And the
 * Cache-Control directives, each as the README defines it.
 */
import OpenAI from "openai";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { createGateway, type Gateway } from "../src/server.js";
import { MemoryStore } from "../src/store/memory.js";
import { FakeClock } from "./helpers/fake-clock.js";
import {
  chatCompletion,
  chatStreamEvents,
  type FakeUpstream,
  sendJson,
  startFakeUpstream,
} from "./helpers/fake-upstream.js";

let upstream: FakeUpstream;
let gateway: Gateway;
let url: string;
const clock = new FakeClock();

beforeAll(async () => {
  upstream = await startFakeUpstream();
  gateway = createGateway({
    upstream: upstream.baseURL,
    store: new MemoryStore({ maxSize: 0, clock }),
    clock,
  });
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
const body = (stream: boolean) => ({
  model: "fake",
  messages: [{ role: "user", content: `q ${++unique}` }],
  temperature: 0,
  stream,
});
async function post(
  payload: Record<string, unknown>,
  headers: Record<string, string> = {},
): Promise<{ status: number; outcome: string | null; text: string; age: string | null }> {
  const response = await fetch(`${url}/v1/chat/completions`, {
    method: "POST",
    headers: { "content-type": "application/json", authorization: "Bearer sk", ...headers },
    body: JSON.stringify(payload),
  });
  const text = await response.text().catch(() => "(cut)");
  return {
    status: response.status,
    outcome: response.headers.get("x-infercache"),
    text,
    age: response.headers.get("age"),
  };
}

/** Sends a request twice and returns how many times the upstream was asked. */
async function twice(payload: Record<string, unknown>): Promise<number> {
  const before = upstream.count("/chat/completions");
  await post(payload);
  await post(payload);
  return upstream.count("/chat/completions") - before;
}

const streamOf =
  (events: string[], status = 200) =>
  (_request: unknown, response: import("node:http").ServerResponse) => {
    response.writeHead(status, { "content-type": "text/event-stream" });
    for (const event of events) response.write(event);
    response.end();
  };

describe("answers that are not answers are never stored", () => {
  it("a stream with an `event: error`", async () => {
    upstream.respond = (request, response) =>
      streamOf([
        ...chatStreamEvents(request).slice(0, 2),
        'event: error\ndata: {"message":"overloaded"}\n\n',
        "data: [DONE]\n\n",
      ])(request, response);
    expect(await twice(body(true))).toBe(2);
  });

  for (const spacing of ['{"error"', '{ "error"', '{\n  "error"', '{"error" ']) {
    it(`a stream whose payload is an error object, written ${JSON.stringify(spacing)}`, async () => {
      upstream.respond = (request, response) =>
        streamOf([
          ...chatStreamEvents(request).slice(0, 2),
          `data: ${spacing}: {"message": "server error", "type": "server_error"}}\n\n`,
          "data: [DONE]\n\n",
        ])(request, response);
      expect(await twice(body(true))).toBe(2);
    });
  }

  it("a stream with a chunk that carries an `error` field", async () => {
    upstream.respond = (request, response) => {
      const events = chatStreamEvents(request);
      const bad = JSON.stringify({
        id: "x",
        object: "chat.completion.chunk",
        choices: [],
        error: { message: "cut by a content filter" },
      });
      streamOf([...events.slice(0, -1), `data: ${bad}\n\n`, "data: [DONE]\n\n"])(request, response);
    };
    expect(await twice(body(true))).toBe(2);
  });

  it("a stream that ends without `data: [DONE]`", async () => {
    upstream.respond = (request, response) =>
      streamOf(chatStreamEvents(request).slice(0, -1))(request, response);
    expect(await twice(body(true))).toBe(2);
  });

  it("a 200 whose JSON body is an error object", async () => {
    upstream.respond = (_request, response) =>
      sendJson(response, 200, { error: { message: "rate limited", type: "rate_limit_error" } });
    expect(await twice(body(false))).toBe(2);
  });

  it("a 200 whose body is not JSON", async () => {
    upstream.respond = (_request, response) => {
      response.writeHead(200, { "content-type": "application/json" });
      response.end("<html>gateway error</html>");
    };
    expect(await twice(body(false))).toBe(2);
  });

  it("a 500 and a 429", async () => {
    for (const status of [500, 429]) {
      upstream.respond = (_request, response) =>
        sendJson(response, status, { error: { message: "no", type: "server_error" } });
      expect(await twice(body(false))).toBe(2);
    }
  });

  it("while a good answer is stored and served from then on (the control case)", async () => {
    expect(await twice(body(false))).toBe(1);
    expect(await twice(body(true))).toBe(1);
  });
});

describe("Cache-Control, as the README defines it", () => {
  it("max-age=0 never serves a stored answer and stores nothing (0 never means forever)", async () => {
    const payload = body(false);
    await post(payload, { "cache-control": "max-age=0" });
    expect((await post(payload)).outcome).toBe("miss");
    expect((await post(payload)).outcome).toBe("hit");
    expect((await post(payload, { "cache-control": "max-age=0" })).outcome).toBe("miss");
  });

  it("max-age=N takes an answer at most N seconds old, and keeps a new one N seconds", async () => {
    const payload = body(false);
    await post(payload);
    clock.advance(30_000);
    const fresh = await post(payload, { "cache-control": "max-age=60" });
    expect(fresh).toMatchObject({ outcome: "hit", age: "30" });
    expect((await post(payload, { "cache-control": "max-age=10" })).outcome).toBe("miss");
    // That miss stored its answer for 10 s.
    clock.advance(11_000);
    expect((await post(payload)).outcome).toBe("miss");
  });

  it("s-maxage=N keeps the answer N seconds without limiting what is served", async () => {
    const payload = body(false);
    await post(payload, { "cache-control": "s-maxage=5" });
    clock.advance(4_000);
    expect((await post(payload)).outcome).toBe("hit");
    clock.advance(2_000);
    expect((await post(payload)).outcome).toBe("miss");
    const zero = body(false);
    await post(zero, { "cache-control": "s-maxage=0" });
    expect((await post(zero)).outcome).toBe("miss");
  });

  it("no-cache asks the upstream and stores the new answer; no-store serves but does not store", async () => {
    const payload = body(false);
    await post(payload);
    expect((await post(payload, { "cache-control": "no-cache" })).outcome).toBe("miss");
    expect((await post(payload)).outcome).toBe("hit");
    const other = body(false);
    expect((await post(other, { "cache-control": "no-store" })).outcome).toBe("miss");
    expect((await post(other)).outcome).toBe("miss");
    expect((await post(other, { "cache-control": "no-store" })).outcome).toBe("hit");
  });

  it("only-if-cached answers from the cache or with 504, never from the upstream", async () => {
    const payload = body(false);
    const before = upstream.count("/chat/completions");
    const miss = await post(payload, { "cache-control": "only-if-cached" });
    expect(miss.status).toBe(504);
    expect(JSON.parse(miss.text).error.message).toMatch(/only-if-cached/);
    expect(upstream.count("/chat/completions")).toBe(before);
    await post(payload);
    expect((await post(payload, { "cache-control": "only-if-cached" })).outcome).toBe("hit");
  });

  it("a directive with a bad value is a 400, so a typo never means forever", async () => {
    const bad = await post(body(false), { "cache-control": "max-age=soon" });
    expect(bad.status).toBe(400);
    expect(JSON.parse(bad.text).error.message).toMatch(/max-age must be a whole number of seconds/);
  });

  it("through the OpenAI SDK too: per-request headers reach the gateway", async () => {
    const openai = new OpenAI({ apiKey: "sk", baseURL: `${url}/v1`, maxRetries: 0 });
    const payload = { ...body(false), stream: false as const } as Parameters<
      typeof openai.chat.completions.create
    >[0] & { stream: false };
    upstream.respond = (request, response) => sendJson(response, 200, chatCompletion(request));
    await openai.chat.completions.create(payload, { headers: { "cache-control": "no-store" } });
    const again = await openai.chat.completions.create(payload).withResponse();
    expect(again.response.headers.get("x-infercache")).toBe("miss");
  });
});
