/**
 * Gemini through the gateway: the contract every family keeps, then the real `@google/genai`
 * SDK as the client (plain and streamed, each served from the other's record), and the key
 * rules field by field: the model from the path, the credential from `x-goog-api-key` or
 * `?key=` (a tenant, never a key), `labels` out, everything else in.
 */
import { GoogleGenAI } from "@google/genai";
import { describe, expect, it } from "vitest";
import { familyGateway, runProtocolContract } from "./helpers/protocol-contract.js";
import {
  cutEvents,
  geminiError,
  geminiStreamEvents,
  sendEvents,
  sendJson,
  sendText,
} from "./helpers/provider-upstream.js";

const MODEL = "gemini-2.5-flash";
const path = (stream: boolean, model = MODEL) =>
  `/v1beta/models/${model}:${stream ? "streamGenerateContent?alt=sse" : "generateContent"}`;
const body = (text: string, extra: Record<string, unknown> = {}) =>
  JSON.stringify({
    contents: [{ role: "user", parts: [{ text }] }],
    generationConfig: { temperature: 0 },
    ...extra,
  });

runProtocolContract({
  route: "gemini",
  base: "/v1beta",
  suffix: "enerateContent",
  streams: true,
  converts: true,
  request: (id, stream) => ({
    path: path(stream),
    headers: { "content-type": "application/json" },
    body: body(`question ${id}`),
  }),
  credential: (key) => ({ headers: { "x-goog-api-key": key } }),
  errors: [
    [
      "a 500 in Gemini's error shape",
      (_r, res) => sendJson(res, 500, geminiError(500, "internal")),
    ],
    ["a 429", (_r, res) => sendJson(res, 429, geminiError(429, "quota"))],
    [
      "a 200 whose body is an error",
      (_r, res) => sendJson(res, 200, geminiError(503, "overloaded")),
    ],
    [
      "a 200 that is not JSON",
      (_r, res) => sendText(res, "application/json", "<html>proxy</html>"),
    ],
  ],
  cuts: [
    [
      "a stream that ends before a chunk has a finishReason",
      (request, res) => sendEvents(res, geminiStreamEvents(request).slice(0, -1)),
    ],
    [
      "a stream whose connection dies",
      (request, res) => cutEvents(res, geminiStreamEvents(request), 2),
    ],
    [
      "a stream carrying an error chunk",
      (request, res) =>
        sendEvents(res, [
          ...geminiStreamEvents(request).slice(0, 2),
          `data: ${JSON.stringify(geminiError(500, "internal"))}\r\n\r\n`,
        ]),
    ],
  ],
});

describe("Gemini with the @google/genai SDK", () => {
  const context = familyGateway("/v1beta", (key) => ({ headers: { "x-goog-api-key": key } }));
  const sdk = (apiKey = "gemini-key") =>
    new GoogleGenAI({ apiKey, httpOptions: { baseUrl: context.url } });
  let unique = 0;

  it("plain: a miss then a hit with the same answer", async () => {
    const ai = sdk();
    const request = { model: MODEL, contents: `hello ${++unique}`, config: { temperature: 0 } };
    const first = await ai.models.generateContent(request);
    const second = await ai.models.generateContent(request);
    expect(first.text).toBe(`gemini says: hello ${unique}`);
    expect(second.text).toBe(first.text);
    expect(first.sdkHttpResponse?.headers?.["x-infercache"]).toBe("miss");
    expect(second.sdkHttpResponse?.headers?.["x-infercache"]).toBe("hit");
    expect(second.usageMetadata?.totalTokenCount).toBe(12);
  });

  it("streamed: a miss then a hit, chunk for chunk, and the plain call answered from it", async () => {
    const ai = sdk();
    const request = {
      model: MODEL,
      contents: `tell a story ${++unique}`,
      config: { temperature: 0 },
    };
    const read = async () => {
      const chunks = [];
      for await (const chunk of await ai.models.generateContentStream(request)) chunks.push(chunk);
      return chunks;
    };
    const before = context.upstream.count("enerateContent");
    const miss = await read();
    const hit = await read();
    expect(miss.length).toBeGreaterThan(1);
    expect(hit.map((c) => c.text)).toEqual(miss.map((c) => c.text));
    expect(miss.map((c) => c.text).join("")).toBe(`gemini says: tell a story ${unique}`);
    const plain = await ai.models.generateContent(request);
    expect(plain.text).toBe(`gemini says: tell a story ${unique}`);
    expect(plain.candidates?.[0]?.finishReason).toBe("STOP");
    expect(plain.usageMetadata?.totalTokenCount).toBe(12);
    expect(plain.sdkHttpResponse?.headers?.["x-infercache"]).toBe("hit");
    expect(context.upstream.count("enerateContent") - before).toBe(1);
  });

  it("a stream served from a plain record is one whole chunk the SDK reads", async () => {
    const ai = sdk();
    const request = {
      model: MODEL,
      contents: `plain first ${++unique}`,
      config: { temperature: 0 },
    };
    await ai.models.generateContent(request);
    const chunks = [];
    for await (const chunk of await ai.models.generateContentStream(request)) chunks.push(chunk);
    expect(chunks.map((c) => c.text).join("")).toBe(`gemini says: plain first ${unique}`);
    expect(chunks.at(-1)?.candidates?.[0]?.finishReason).toBe("STOP");
  });

  it("a chat session (history in the body) is keyed by its whole history", async () => {
    const ai = sdk();
    const chat = ai.chats.create({ model: MODEL, config: { temperature: 0 } });
    const one = await chat.sendMessage({ message: `first ${++unique}` });
    const again = ai.chats.create({ model: MODEL, config: { temperature: 0 } });
    const same = await again.sendMessage({ message: `first ${unique}` });
    expect(same.sdkHttpResponse?.headers?.["x-infercache"]).toBe("hit");
    expect(same.text).toBe(one.text);
    const next = await chat.sendMessage({ message: "second" });
    expect(next.sdkHttpResponse?.headers?.["x-infercache"]).toBe("miss");
  });

  it("two API keys are two tenants", async () => {
    const request = { model: MODEL, contents: `tenant ${++unique}`, config: { temperature: 0 } };
    await sdk("key-one").models.generateContent(request);
    const other = await sdk("key-two").models.generateContent(request);
    expect(other.sdkHttpResponse?.headers?.["x-infercache"]).toBe("miss");
    const again = await sdk("key-one").models.generateContent(request);
    expect(again.sdkHttpResponse?.headers?.["x-infercache"]).toBe("hit");
  });
});

describe("Gemini keys, field by field", () => {
  const context = familyGateway("/v1beta", (key) => ({ headers: { "x-goog-api-key": key } }));
  let unique = 0;
  const post = (at: string, payload: string, headers: Record<string, string> = {}) =>
    context.send({
      path: at,
      headers: { "content-type": "application/json", ...headers },
      body: payload,
    });
  const shares = async (a: [string, string], b: [string, string]) => {
    expect((await post(...a)).outcome).toBe("miss");
    return (await post(...b)).outcome === "hit";
  };

  it("the model is the path's: another model is another key", async () => {
    const payload = body(`model ${++unique}`);
    expect(await shares([path(false), payload], [path(false, "gemini-2.5-pro"), payload])).toBe(
      false,
    );
    expect((await post(path(false, "gemini-2.5-pro"), payload)).outcome).toBe("hit");
  });

  it("labels (Vertex AI's billing labels) stay out", async () => {
    const payload = body(`labels ${++unique}`);
    const labelled = body(`labels ${unique}`, { labels: { team: "search" } });
    expect(await shares([path(false), payload], [path(false), labelled])).toBe(true);
  });

  for (const [field, value] of [
    ["systemInstruction", { parts: [{ text: "be terse" }] }],
    ["safetySettings", [{ category: "HARM_CATEGORY_HARASSMENT", threshold: "BLOCK_NONE" }]],
    ["tools", [{ functionDeclarations: [{ name: "f", parameters: { type: "OBJECT" } }] }]],
    ["toolConfig", { functionCallingConfig: { mode: "ANY" } }],
    ["cachedContent", "cachedContents/abc123"],
    ["someFutureField", 1],
  ] as const) {
    it(`${field} is in the key`, async () => {
      const payload = body(`field ${++unique}`);
      const other = body(`field ${unique}`, { [field]: value });
      expect(await shares([path(false), payload], [path(false), other])).toBe(false);
    });
  }

  for (const [field, value] of [
    ["maxOutputTokens", 5],
    ["topP", 0.5],
    ["responseMimeType", "application/json"],
    ["thinkingConfig", { thinkingBudget: 0 }],
  ] as const) {
    it(`generationConfig.${field} is in the key`, async () => {
      const payload = body(`config ${++unique}`);
      const other = body(`config ${unique}`, {
        generationConfig: { temperature: 0, [field]: value },
      });
      expect(await shares([path(false), payload], [path(false), other])).toBe(false);
    });
  }

  it("?key= is a credential: a tenant, and out of the key", async () => {
    const payload = body(`query key ${++unique}`);
    const at = (key: string) => `${path(false)}?key=${key}`;
    const noHeader = { "x-goog-api-key": "" };
    expect((await post(at("one"), payload, noHeader)).outcome).toBe("miss");
    expect((await post(at("two"), payload, noHeader)).outcome).toBe("miss");
    expect((await post(at("one"), payload, noHeader)).outcome).toBe("hit");
    // The key never reaches the key: the upstream saw it (it needs it), the record does not.
    expect(context.upstream.received.at(-1)?.search).toBe("?key=two");
  });

  it("a stream and a plain call share one key; alt=sse is transport", async () => {
    const payload = body(`alt ${++unique}`);
    expect(await shares([path(true), payload], [path(false), payload])).toBe(true);
  });

  it("streamGenerateContent without alt=sse (a JSON array) passes through uncached", async () => {
    const payload = body(`array ${++unique}`);
    const at = "/v1beta/models/gemini-2.5-flash:streamGenerateContent";
    const first = await post(at, payload);
    expect(first.outcome).toBe("bypass");
    expect(Array.isArray(JSON.parse(first.bytes.toString()))).toBe(true);
    expect((await post(at, payload)).outcome).toBe("bypass");
  });

  it("sampled (no temperature, the default 1) follows the sampling policy; a seed makes it not", async () => {
    const payload = JSON.stringify({
      contents: [{ role: "user", parts: [{ text: `s ${++unique}` }] }],
    });
    const sampling = { "x-infercache-sampling": "bypass" };
    expect((await post(path(false), payload, sampling)).outcome).toBe("bypass");
    const seeded = JSON.stringify({
      contents: [{ role: "user", parts: [{ text: `s ${unique}` }] }],
      generationConfig: { seed: 7 },
    });
    expect((await post(path(false), seeded, sampling)).outcome).toBe("miss");
    expect((await post(path(false), seeded, sampling)).outcome).toBe("hit");
  });

  it("candidateCount > 1 is the pipeline's n > 1: not cached", async () => {
    const payload = body(`n ${++unique}`, {
      generationConfig: { temperature: 0, candidateCount: 2 },
    });
    expect((await post(path(false), payload)).outcome).toBe("bypass");
  });

  it("a blocked prompt is an answer, and stored (streamed: promptFeedback, no candidates)", async () => {
    context.upstream.respond = (_request, res) =>
      sendEvents(res, [
        `data: ${JSON.stringify({ promptFeedback: { blockReason: "SAFETY" }, usageMetadata: { promptTokenCount: 3, totalTokenCount: 3 } })}\r\n\r\n`,
      ]);
    const payload = body(`blocked ${++unique}`);
    expect((await post(path(true), payload)).outcome).toBe("miss");
    context.upstream.respond = undefined;
    const hit = await post(path(true), payload);
    expect(hit.outcome).toBe("hit");
    expect(hit.bytes.toString()).toContain('"blockReason":"SAFETY"');
    const plain = await post(path(false), payload);
    expect(plain.outcome).toBe("hit");
    expect(JSON.parse(plain.bytes.toString())).toMatchObject({
      promptFeedback: { blockReason: "SAFETY" },
    });
  });

  it("the gateway's own errors are in Gemini's shape", async () => {
    const response = await post(path(false), "{not json");
    expect(response.status).toBe(400);
    expect(JSON.parse(response.bytes.toString())).toMatchObject({
      error: {
        code: 400,
        status: "INVALID_ARGUMENT",
        message: expect.stringMatching(/not valid JSON/),
      },
    });
  });
});
