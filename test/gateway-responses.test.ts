/**
 * OpenAI Responses (`POST /v1/responses`) through the gateway, with the real OpenAI SDK as the
 * client (`responses.create`, `responses.stream`) and a loopback upstream that speaks the
 * documented wire format (test/helpers/fake-responses.ts) and counts what reaches it: hits
 * plain and streamed, streamed hits byte for byte, conversions both ways read back by the SDK's
 * own stream helper, single-flight, what is never stored, tenants, the key field by field, and
 * the routes of the family that pass through.
 */
import type { ServerResponse } from "node:http";
import OpenAI from "openai";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { createGateway, type Gateway } from "../src/server.js";
import { MemoryStore } from "../src/store/memory.js";
import { answerResponses, responseObject, responseStreamEvents } from "./helpers/fake-responses.js";
import { type FakeUpstream, type Received, startFakeUpstream } from "./helpers/fake-upstream.js";
import { until } from "./helpers/until.js";

let upstream: FakeUpstream;
let gateway: Gateway;
let url: string;

const answers = (request: Received, response: ServerResponse) => {
  if (!answerResponses(request, response)) {
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

const openai = (apiKey = "sk-test", headers: Record<string, string> = {}) =>
  new OpenAI({ apiKey, baseURL: `${url}/v1`, maxRetries: 0, defaultHeaders: headers });
let unique = 0;
const ask = (extra: Record<string, unknown> = {}) => ({
  model: "fake",
  input: `question ${++unique}`,
  temperature: 0,
  ...extra,
});
/** A request with a reasoning item (summary and encrypted content) and a function call. */
const withItems = () =>
  ask({
    reasoning: { effort: "low", summary: "auto" },
    include: ["reasoning.encrypted_content"],
    tools: [
      {
        type: "function",
        name: "get_weather",
        parameters: { type: "object", properties: { query: { type: "string" } } },
        strict: false,
      },
    ],
  });
const calls = () => upstream.count("/responses");

/** The SDK's stream helper adds parse results (`parsed`, `parsed_arguments`, `output_parsed`). */
function wire(value: unknown): unknown {
  return JSON.parse(JSON.stringify(value), (key, v) =>
    ["parsed", "output_parsed", "parsed_arguments"].includes(key) ? undefined : v,
  );
}

async function post(body: Record<string, unknown>, headers: Record<string, string> = {}) {
  const response = await fetch(`${url}/v1/responses`, {
    method: "POST",
    headers: { "content-type": "application/json", authorization: "Bearer sk-test", ...headers },
    body: JSON.stringify(body),
  });
  return { response, text: await response.text(), outcome: response.headers.get("x-infercache") };
}

describe("Responses: hits, plain and streamed", () => {
  it("a repeated request is a hit with the recorded body, and says what it saved", async () => {
    const request = ask();
    const before = calls();
    const miss = await openai().responses.create(request).withResponse();
    const hit = await openai().responses.create(request).withResponse();
    expect(miss.response.headers.get("x-infercache")).toBe("miss");
    expect(hit.response.headers.get("x-infercache")).toBe("hit");
    expect(hit.data).toEqual(miss.data);
    expect(hit.data.id).toMatch(/^resp_/);
    expect(hit.data.output_text).toBe(`echo: ${request.input}`);
    // The body's usage is the recorded call's; this request cost the upstream nothing.
    expect(hit.data.usage?.total_tokens).toBe(18);
    expect(hit.response.headers.get("x-infercache-saved-tokens")).toBe("18");
    expect(calls() - before).toBe(1);
  });

  it("a streamed hit is byte-identical to the streamed miss, and the SDK reads it", async () => {
    const request = { ...ask(), stream: true };
    const miss = await post(request);
    const hit = await post(request);
    expect([miss.outcome, hit.outcome]).toEqual(["miss", "hit"]);
    expect(hit.text).toBe(miss.text);
    expect(hit.response.headers.get("content-type")).toBe("text/event-stream");
    const { stream: _, ...plain } = request;
    const final = await openai().responses.stream(plain).finalResponse();
    expect(final.output_text).toBe(`echo: ${request.input}`);
    expect(final.status).toBe("completed");
  });

  it("a streamed request is served from a plain record: the SDK adds it up to the same answer", async () => {
    const request = withItems();
    const plain = await openai().responses.create(request);
    expect(plain.output.map((item) => item.type)).toEqual(["reasoning", "function_call"]);
    const events: string[] = [];
    let arguments_ = "";
    let summary = "";
    const stream = openai()
      .responses.stream(request)
      .on("event", (event) => events.push(event.type))
      .on("response.function_call_arguments.delta", (event) => {
        arguments_ += event.delta;
      })
      .on("response.reasoning_summary_text.delta", (event) => {
        summary += event.delta;
      });
    const final = await stream.finalResponse();
    expect(wire(final)).toEqual(wire(plain));
    expect(events[0]).toBe("response.created");
    expect(events.at(-1)).toBe("response.completed");
    const call = plain.output[1] as { arguments: string };
    const reasoning = plain.output[0] as {
      summary: { text: string }[];
      encrypted_content: string;
    };
    expect(arguments_).toBe(call.arguments);
    expect(summary).toBe(reasoning.summary[0]?.text);
    expect((final.output[0] as { encrypted_content: string }).encrypted_content).toBe(
      reasoning.encrypted_content,
    );
  });

  it("a plain request is served from a streamed record", async () => {
    const request = withItems();
    const streamed = await openai().responses.stream(request).finalResponse();
    const plain = await openai().responses.create(request).withResponse();
    expect(plain.response.headers.get("x-infercache")).toBe("hit");
    expect(wire(plain.data)).toEqual(wire(streamed));
    expect(plain.data.output.map((item) => item.type)).toEqual(["reasoning", "function_call"]);
  });

  it("a message answer converts both ways too, text deltas included", async () => {
    const request = ask();
    const plain = await openai().responses.create(request);
    let text = "";
    const final = await openai()
      .responses.stream(request)
      .on("response.output_text.delta", (event) => {
        text += event.delta;
      })
      .finalResponse();
    expect(text).toBe(plain.output_text);
    expect(wire(final)).toEqual(wire(plain));
  });

  it("an answer cut by max_output_tokens (response.incomplete) is an answer: stored and replayed", async () => {
    const request = { ...ask({ max_output_tokens: 1 }), stream: true };
    const miss = await post(request);
    expect(miss.text).toContain("event: response.incomplete");
    const hit = await post(request);
    expect(hit.outcome).toBe("hit");
    expect(hit.text).toBe(miss.text);
    const { stream: _, ...plain } = request;
    const converted = await openai().responses.create(plain);
    expect(converted.status).toBe("incomplete");
    expect(converted.incomplete_details?.reason).toBe("max_output_tokens");
  });
});

describe("Responses: single-flight", () => {
  /** Holds every upstream answer until `open()`. */
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
      const answersOf = Array.from({ length: 5 }, () => post(request));
      await until(() => calls() - before === 1, "the first request reaching the upstream");
      await until(
        () => gateway.pipeline.stats().coalesced - joinedBefore === 4,
        "four requests joining it",
      );
      open();
      const all = await Promise.all(answersOf);
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

describe("Responses: what is not an answer is never stored", () => {
  /** Sends a request twice; how many times the upstream was asked. */
  async function twice(body: Record<string, unknown>): Promise<number> {
    const before = calls();
    await post(body).catch(() => undefined);
    await post(body).catch(() => undefined);
    return calls() - before;
  }
  const streamOf =
    (edit: (events: string[]) => string[]) => (request: Received, response: ServerResponse) => {
      response.writeHead(200, { "content-type": "text/event-stream" });
      for (const event of edit(responseStreamEvents(request))) response.write(event);
      response.end();
    };
  const failedEvent = (events: string[]) => {
    const last = events.at(-1) as string;
    const data = JSON.parse(last.slice(last.indexOf("data: ") + 6)) as Record<string, unknown>;
    const response = {
      ...(data.response as Record<string, unknown>),
      status: "failed",
      error: { code: "server_error", message: "The model failed" },
    };
    return `event: response.failed\ndata: ${JSON.stringify({ type: "response.failed", sequence_number: data.sequence_number, response })}\n\n`;
  };

  it("a 500 and a 429", async () => {
    for (const status of [500, 429]) {
      upstream.respond = (_request, response) => {
        response.writeHead(status, { "content-type": "application/json" });
        response.end(JSON.stringify({ error: { message: "no", type: "server_error" } }));
      };
      expect(await twice(ask())).toBe(2);
    }
  });

  it("a 200 whose body is an error object, or a failed response", async () => {
    upstream.respond = (_request, response) => {
      response.writeHead(200, { "content-type": "application/json" });
      response.end(
        JSON.stringify({ error: { message: "rate limited", type: "rate_limit_error" } }),
      );
    };
    expect(await twice(ask())).toBe(2);
    upstream.respond = (request, response) => {
      response.writeHead(200, { "content-type": "application/json" });
      response.end(
        JSON.stringify({
          ...responseObject(request),
          status: "failed",
          error: { code: "server_error", message: "failed" },
        }),
      );
    };
    expect(await twice(ask())).toBe(2);
  });

  it("a stream with an `error` event", async () => {
    upstream.respond = streamOf((events) => [
      ...events.slice(0, 4),
      'event: error\ndata: {"type":"error","sequence_number":4,"code":"server_error","message":"overloaded","param":null}\n\n',
    ]);
    expect(await twice({ ...ask(), stream: true })).toBe(2);
  });

  it("a stream that ends with response.failed", async () => {
    upstream.respond = streamOf((events) => [...events.slice(0, -1), failedEvent(events)]);
    expect(await twice({ ...ask(), stream: true })).toBe(2);
  });

  it("a stream that ends before its terminal event", async () => {
    upstream.respond = streamOf((events) => events.slice(0, -1));
    expect(await twice({ ...ask(), stream: true })).toBe(2);
  });

  it("a stream whose connection is cut", async () => {
    upstream.respond = (request, response) => {
      response.writeHead(200, { "content-type": "text/event-stream" });
      for (const event of responseStreamEvents(request).slice(0, 5)) response.write(event);
      response.destroy();
    };
    expect(await twice({ ...ask(), stream: true })).toBe(2);
  });

  it("while a good answer is stored (the control case)", async () => {
    expect(await twice(ask())).toBe(1);
    expect(await twice({ ...ask(), stream: true })).toBe(1);
  });
});

describe("Responses: tenants, sessions and Cache-Control", () => {
  it("two API keys never share an answer", async () => {
    const request = ask();
    await openai("sk-a").responses.create(request);
    const other = await openai("sk-b").responses.create(request).withResponse();
    const same = await openai("sk-a").responses.create(request).withResponse();
    expect(other.response.headers.get("x-infercache")).toBe("miss");
    expect(same.response.headers.get("x-infercache")).toBe("hit");
  });

  it("a session's answers are its own", async () => {
    const request = ask();
    expect((await post(request, { "x-session-id": "s-1" })).outcome).toBe("miss");
    expect((await post(request)).outcome).toBe("miss");
    expect((await post(request, { "x-session-id": "s-1" })).outcome).toBe("hit");
  });

  it("no-store serves without storing; only-if-cached answers 504 in the API's error shape", async () => {
    const request = ask();
    expect((await post(request, { "cache-control": "no-store" })).outcome).toBe("miss");
    const missing = await post(request, { "cache-control": "only-if-cached" });
    expect(missing.response.status).toBe(504);
    expect(JSON.parse(missing.text).error.message).toMatch(/only-if-cached/);
    await post(request);
    expect((await post(request, { "cache-control": "only-if-cached" })).outcome).toBe("hit");
  });

  it("counts hits by route in the metrics", async () => {
    const text = await (await fetch(`${url}/metrics`)).text();
    expect(text).toMatch(/infercache_requests_total\{route="responses",outcome="hit"\} [1-9]/);
  });
});

describe("Responses: the key, field by field", () => {
  /** Sends `a` then `b`; whether `b` was a hit. */
  async function shares(
    a: Record<string, unknown>,
    b: Record<string, unknown>,
    headersA: Record<string, string> = {},
    headersB: Record<string, string> = headersA,
  ): Promise<boolean> {
    expect((await post(a, headersA)).outcome).toBe("miss");
    return (await post(b, headersB)).outcome === "hit";
  }

  for (const [field, value] of [
    ["user", "end-user-42"],
    ["safety_identifier", "hashed-user"],
    ["metadata", { run: "7" }],
    ["prompt_cache_key", "conversation-1"],
    ["prompt_cache_retention", "24h"],
    ["prompt_cache_options", { mode: "explicit" }],
  ] as const) {
    it(`${field} is out of the key`, async () => {
      const base = ask();
      expect(await shares(base, { ...base, [field]: value })).toBe(true);
    });
  }

  it("stream_options (include_obfuscation) is out: a replay is the same answer", async () => {
    const base = { ...ask(), stream: true };
    const miss = await post(base);
    const hit = await post({ ...base, stream_options: { include_obfuscation: false } });
    expect(hit.outcome).toBe("hit");
    expect(hit.text).toBe(miss.text);
  });

  for (const [field, a, b] of [
    ["previous_response_id", "resp_1", "resp_2"],
    ["store", true, false],
    ["include", ["reasoning.encrypted_content"], ["message.output_text.logprobs"]],
    ["instructions", "be brief", "be thorough"],
    ["tools", [{ type: "function", name: "a" }], [{ type: "function", name: "b" }]],
    ["text", { format: { type: "text" } }, { format: { type: "json_object" } }],
    ["reasoning", { effort: "low" }, { effort: "high" }],
    ["max_output_tokens", 50, 60],
    ["some_new_parameter", 1, 2],
  ] as const) {
    it(`${field} is in the key`, async () => {
      const base = ask();
      expect(await shares({ ...base, [field]: a }, { ...base, [field]: b })).toBe(false);
      expect(await shares(ask(), { ...ask(), [field]: a })).toBe(false);
    });
  }

  it("the absence of store is not store: true (the key keeps what was sent)", async () => {
    const base = ask();
    expect(await shares(base, { ...base, store: true })).toBe(false);
  });

  for (const name of ["OpenAI-Organization", "OpenAI-Project", "OpenAI-Beta"]) {
    it(`the ${name} header is in the key`, async () => {
      const body = ask();
      expect(await shares(body, body, { [name]: "one" }, { [name]: "two" })).toBe(false);
    });
  }

  for (const [label, extra] of [
    ["conversation (an id)", { conversation: "conv_123" }],
    ["conversation (an object)", { conversation: { id: "conv_123" } }],
    ["background: true", { background: true }],
    ["a prompt template without a version", { prompt: { id: "pmpt_1" } }],
  ] as const) {
    it(`${label} bypasses the cache`, async () => {
      const request = ask(extra);
      const before = calls();
      const first = await post(request);
      const second = await post(request);
      expect([first.outcome, second.outcome]).toEqual(["bypass", "bypass"]);
      expect(calls() - before).toBe(2);
    });
  }

  it("a prompt template with a pinned version is cached", async () => {
    const request = ask({ prompt: { id: "pmpt_1", version: "3" } });
    expect(await shares(request, request)).toBe(true);
  });
});

describe("Responses: the rest of the family passes through", () => {
  for (const [method, path] of [
    ["GET", "/v1/responses/resp_1"],
    ["GET", "/v1/responses/resp_1/input_items"],
    ["POST", "/v1/responses/resp_1/cancel"],
    ["DELETE", "/v1/responses/resp_1"],
    ["POST", "/v1/responses/input_tokens"],
  ] as const) {
    it(`${method} ${path}`, async () => {
      const before = upstream.received.length;
      for (let i = 0; i < 2; i++) {
        const response = await fetch(`${url}${path}`, {
          method,
          headers: { authorization: "Bearer sk-test", "content-type": "application/json" },
          ...(method === "POST" && { body: JSON.stringify({ model: "fake", input: "x" }) }),
        });
        expect(response.headers.get("x-infercache")).toBeNull();
        expect(await response.json()).toEqual({ object: "passed", method, path });
      }
      expect(upstream.received.length - before).toBe(2);
    });
  }
});
