/**
 * The local engine (node-llama-cpp with the bundled models/llama-2-tiny-random.gguf) answering the
 * OpenAI Responses and Anthropic Messages formats, with the real SDKs as clients — directly, and
 * through the gateway in front of it (`createGateway({ upstream: (r) => engine.handle(r) })`):
 * `responses.create` / `responses.stream`, `messages.create` / `messages.stream` /
 * `messages.countTokens`, misses then hits, streamed hits byte for byte, and each conversion.
 */
import Anthropic from "@anthropic-ai/sdk";
import OpenAI from "openai";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createGateway, type Gateway } from "../src/server.js";
import { startUpstream, type Upstream } from "./helpers/llama-upstream.js";

let upstream: Upstream;
let gateway: Gateway;
let gatewayUrl: string;

beforeAll(async () => {
  upstream = await startUpstream();
  gateway = createGateway({ upstream: (request) => upstream.engine.handle(request) });
  gatewayUrl = await gateway.listen();
}, 60_000);
afterAll(async () => {
  await gateway?.close();
  await upstream?.close();
});

const openai = (base: string) =>
  new OpenAI({ apiKey: "sk-local", baseURL: `${base}/v1`, maxRetries: 0 });
const anthropic = (base: string) =>
  new Anthropic({ apiKey: "sk-ant-local", baseURL: base, maxRetries: 0 });
const engineUrl = () => upstream.served.url;
const received = (suffix: string) =>
  upstream.engine.received.filter((r) => r.path.endsWith(suffix)).length;
let unique = 0;
const respond = (extra: Record<string, unknown> = {}) => ({
  model: "tiny",
  input: `tell me ${++unique}`,
  instructions: "answer briefly",
  temperature: 0,
  max_output_tokens: 6,
  ...extra,
});
const message = () => ({
  model: "tiny",
  max_tokens: 6,
  temperature: 0,
  system: "answer briefly",
  messages: [{ role: "user" as const, content: `tell me ${++unique}` }],
});
/** What the SDKs' stream helpers add (parse results) and what differs per call (ids, times). */
const same = (value: unknown) =>
  JSON.parse(JSON.stringify(value), (key, v) =>
    ["parsed", "output_parsed", "parsed_output", "id", "created_at"].includes(key) ? undefined : v,
  );

describe("the engine speaks the Responses format", () => {
  it("responses.create: a message item, usage, incomplete at max_output_tokens", async () => {
    const answer = await openai(engineUrl()).responses.create(respond());
    expect(answer.id).toMatch(/^resp_/);
    expect(answer.object).toBe("response");
    expect(answer.output).toHaveLength(1);
    expect(answer.output[0]?.type).toBe("message");
    expect(answer.output_text.length).toBeGreaterThan(0);
    expect(answer.status).toBe("incomplete");
    expect(answer.incomplete_details?.reason).toBe("max_output_tokens");
    expect(answer.usage?.output_tokens).toBe(6);
    expect(answer.usage?.total_tokens).toBe(
      (answer.usage?.input_tokens ?? 0) + (answer.usage?.output_tokens ?? 0),
    );
    expect((answer as unknown as { store: boolean }).store).toBe(false);
  });

  it("responses.stream adds up to what responses.create answers (temperature 0)", async () => {
    const request = respond();
    const plain = await openai(engineUrl()).responses.create(request);
    const types = new Set<string>();
    let text = "";
    const streamed = await openai(engineUrl())
      .responses.stream(request)
      .on("event", (event) => types.add(event.type))
      .on("response.output_text.delta", (event) => {
        text += event.delta;
      })
      .finalResponse();
    expect(same(streamed)).toEqual(same(plain));
    expect(text).toBe(plain.output_text);
    expect([...types]).toEqual([
      "response.created",
      "response.in_progress",
      "response.output_item.added",
      "response.content_part.added",
      "response.output_text.delta",
      "response.output_text.done",
      "response.content_part.done",
      "response.output_item.done",
      "response.incomplete",
    ]);
  });

  it("refuses what needs stored state, and has no stored responses to retrieve", async () => {
    const client = openai(engineUrl());
    await expect(
      client.responses.create(respond({ previous_response_id: "resp_1" })),
    ).rejects.toMatchObject({ status: 400, param: "previous_response_id" });
    await expect(client.responses.retrieve("resp_1")).rejects.toMatchObject({ status: 404 });
  });
});

describe("the engine speaks the Messages format", () => {
  it("messages.create: a text block, stop_reason, Anthropic's usage", async () => {
    const answer = await anthropic(engineUrl()).messages.create(message());
    expect(answer.id).toMatch(/^msg_/);
    expect(answer.type).toBe("message");
    expect(answer.content[0]?.type).toBe("text");
    expect(answer.stop_reason).toBe("max_tokens");
    expect(answer.usage.output_tokens).toBe(6);
    expect(answer.usage.input_tokens).toBeGreaterThan(0);
  });

  it("messages.stream adds up to what messages.create answers, and count_tokens counts the prompt", async () => {
    const request = message();
    const plain = await anthropic(engineUrl()).messages.create(request);
    let text = "";
    const streamed = await anthropic(engineUrl())
      .messages.stream(request)
      .on("text", (delta) => {
        text += delta;
      })
      .finalMessage();
    expect(same(streamed)).toEqual(same(plain));
    expect(text).toBe((plain.content[0] as { text: string }).text);
    const { max_tokens: _, temperature: __, ...counted } = request;
    const count = await anthropic(engineUrl()).messages.countTokens(counted);
    expect(count.input_tokens).toBe(
      plain.usage.input_tokens + (plain.usage.cache_read_input_tokens ?? 0),
    );
  });

  it("answers errors in Anthropic's shape", async () => {
    const { max_tokens: _, ...missing } = message();
    await expect(
      anthropic(engineUrl()).messages.create(
        missing as unknown as Parameters<Anthropic["messages"]["create"]>[0] & { stream?: false },
      ),
    ).rejects.toMatchObject({
      status: 400,
      error: { type: "error", error: { type: "invalid_request_error" } },
    });
  });
});

describe("the gateway in front of the engine", () => {
  it("Responses: a miss then a hit, plain; the replayed id is the recorded one", async () => {
    const request = respond();
    const before = received("/responses");
    const miss = await openai(gatewayUrl).responses.create(request).withResponse();
    const hit = await openai(gatewayUrl).responses.create(request).withResponse();
    expect(miss.response.headers.get("x-infercache")).toBe("miss");
    expect(hit.response.headers.get("x-infercache")).toBe("hit");
    expect(hit.data).toEqual(miss.data);
    expect(received("/responses") - before).toBe(1);
    // Retrieval passes through: the engine stored nothing (store: false), so it is 404 upstream.
    await expect(openai(gatewayUrl).responses.retrieve(hit.data.id)).rejects.toMatchObject({
      status: 404,
    });
  });

  it("Responses: a streamed hit is byte-identical, and each conversion reads back with the SDK", async () => {
    const request = respond();
    const raw = async () => {
      const response = await fetch(`${gatewayUrl}/v1/responses`, {
        method: "POST",
        headers: { "content-type": "application/json", authorization: "Bearer sk-local" },
        body: JSON.stringify({ ...request, stream: true }),
      });
      return { outcome: response.headers.get("x-infercache"), text: await response.text() };
    };
    const miss = await raw();
    const hit = await raw();
    expect([miss.outcome, hit.outcome]).toEqual(["miss", "hit"]);
    expect(hit.text).toBe(miss.text);
    // A plain request from the streamed record, and the stream helper over the replay.
    const plain = await openai(gatewayUrl).responses.create(request).withResponse();
    expect(plain.response.headers.get("x-infercache")).toBe("hit");
    const replayed = await openai(gatewayUrl).responses.stream(request).finalResponse();
    expect(replayed.id).toBe(plain.data.id);
    expect(same(replayed)).toEqual(same(plain.data));
    // A streamed request from a plain record.
    const other = respond();
    const first = await openai(gatewayUrl).responses.create(other);
    const fromPlain = await openai(gatewayUrl).responses.stream(other).finalResponse();
    expect(fromPlain.id).toBe(first.id);
    expect(same(fromPlain)).toEqual(same(first));
  });

  it("Messages: a miss then a hit, plain and streamed, both conversions, count_tokens", async () => {
    const request = message();
    const before = received("/messages");
    const miss = await anthropic(gatewayUrl).messages.create(request).withResponse();
    const hit = await anthropic(gatewayUrl).messages.create(request).withResponse();
    expect([
      miss.response.headers.get("x-infercache"),
      hit.response.headers.get("x-infercache"),
    ]).toEqual(["miss", "hit"]);
    expect(hit.data).toEqual(miss.data);
    const fromPlain = await anthropic(gatewayUrl).messages.stream(request).finalMessage();
    expect(fromPlain.id).toBe(miss.data.id);
    expect(same(fromPlain)).toEqual(same(miss.data));
    expect(received("/messages") - before).toBe(1);

    const streamedRequest = message();
    const raw = async () => {
      const response = await anthropic(gatewayUrl)
        .messages.create({ ...streamedRequest, stream: true })
        .asResponse();
      return { outcome: response.headers.get("x-infercache"), text: await response.text() };
    };
    const streamMiss = await raw();
    const streamHit = await raw();
    expect([streamMiss.outcome, streamHit.outcome]).toEqual(["miss", "hit"]);
    expect(streamHit.text).toBe(streamMiss.text);
    const plainFromStream = await anthropic(gatewayUrl).messages.create(streamedRequest);
    const replayed = await anthropic(gatewayUrl).messages.stream(streamedRequest).finalMessage();
    expect(same(replayed)).toEqual(same(plainFromStream));
    expect(plainFromStream.id).toBe(replayed.id);

    const { max_tokens: _, temperature: __, ...counted } = request;
    const countMiss = await anthropic(gatewayUrl).messages.countTokens(counted).withResponse();
    const countHit = await anthropic(gatewayUrl).messages.countTokens(counted).withResponse();
    expect(countMiss.response.headers.get("x-infercache")).toBe("miss");
    expect(countHit.response.headers.get("x-infercache")).toBe("hit");
    expect(countHit.data).toEqual(countMiss.data);
  });
});
