/**
 * `cachingFetch` as the `fetch` of the OpenAI and Anthropic SDKs: Responses and Messages calls
 * are cached in the client, plain and streamed, like chat completions (the same pipeline and
 * protocols as the gateway), against a loopback upstream that counts what reaches it.
 */
import type { ServerResponse } from "node:http";
import Anthropic from "@anthropic-ai/sdk";
import OpenAI from "openai";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { cachingFetch } from "../src/llm.js";
import { answerMessages } from "./helpers/fake-messages.js";
import { answerResponses } from "./helpers/fake-responses.js";
import { type FakeUpstream, type Received, startFakeUpstream } from "./helpers/fake-upstream.js";

let upstream: FakeUpstream;
beforeAll(async () => {
  upstream = await startFakeUpstream();
  upstream.respond = (request: Received, response: ServerResponse) => {
    if (!answerResponses(request, response)) answerMessages(request, response);
  };
});
afterAll(async () => {
  await upstream?.close();
});

describe("cachingFetch under the SDKs", () => {
  it("caches Responses, plain and streamed", async () => {
    const openai = new OpenAI({
      apiKey: "sk",
      baseURL: upstream.baseURL,
      maxRetries: 0,
      fetch: cachingFetch(),
    });
    const request = { model: "fake", input: "cached in the client", temperature: 0 };
    const before = upstream.count("/responses");
    const miss = await openai.responses.create(request).withResponse();
    const hit = await openai.responses.create(request).withResponse();
    const streamed = await openai.responses.stream(request).finalResponse();
    expect(miss.response.headers.get("x-infercache")).toBe("miss");
    expect(hit.response.headers.get("x-infercache")).toBe("hit");
    expect(streamed.output_text).toBe(miss.data.output_text);
    expect(upstream.count("/responses") - before).toBe(1);
  });

  it("caches Messages, plain and streamed", async () => {
    const anthropic = new Anthropic({
      apiKey: "sk-ant",
      baseURL: upstream.url,
      maxRetries: 0,
      fetch: cachingFetch(),
    });
    const request = {
      model: "claude-fake",
      max_tokens: 16,
      temperature: 0,
      messages: [{ role: "user" as const, content: "cached in the client" }],
    };
    const before = upstream.count("/messages");
    const miss = await anthropic.messages.create(request).withResponse();
    const hit = await anthropic.messages.create(request).withResponse();
    const streamed = await anthropic.messages.stream(request).finalMessage();
    expect(miss.response.headers.get("x-infercache")).toBe("miss");
    expect(hit.response.headers.get("x-infercache")).toBe("hit");
    expect(streamed.content).toEqual(miss.data.content);
    expect(upstream.count("/messages") - before).toBe(1);
  });
});
