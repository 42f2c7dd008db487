import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createOpenAICompatible } from "@ai-sdk/openai-compatible";
import { ChatOpenAI } from "@langchain/openai";
import { generateText, streamText, wrapLanguageModel } from "ai";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { cacheMiddleware } from "../src/ai-sdk.js";
import { langChainCache } from "../src/langchain.js";
import { SqliteStore } from "../src/sqlite.js";
import { startUpstream, type Upstream } from "./helpers/llama-upstream.js";

let upstream: Upstream;
beforeAll(async () => {
  upstream = await startUpstream();
}, 60_000);
afterAll(async () => {
  await upstream?.close();
});
const chatRequests = () =>
  upstream.engine.received.filter((r) => r.path.endsWith("/chat/completions")).length;

describe("Vercel AI SDK: wrapLanguageModel with cacheMiddleware()", () => {
  const model = () =>
    wrapLanguageModel({
      model: createOpenAICompatible({
        name: "local",
        baseURL: upstream.baseURL,
        apiKey: "k",
      }).chatModel("tiny"),
      middleware: cacheMiddleware(),
    });

  it("generateText: the second identical call is served from the cache", async () => {
    const wrapped = model();
    const before = chatRequests();
    const first = await generateText({
      model: wrapped,
      prompt: "What is caching?",
      temperature: 0,
      maxOutputTokens: 8,
    });
    const second = await generateText({
      model: wrapped,
      prompt: "What is caching?",
      temperature: 0,
      maxOutputTokens: 8,
    });
    expect(second.text).toBe(first.text);
    expect(first.text.length).toBeGreaterThan(0);
    expect(chatRequests() - before).toBe(1);
    await generateText({
      model: wrapped,
      prompt: "Something else",
      temperature: 0,
      maxOutputTokens: 8,
    });
    expect(chatRequests() - before).toBe(2);
  });

  it("streamText: a streamed hit replays the same text, one upstream request", async () => {
    const wrapped = model();
    const before = chatRequests();
    const run = async () => {
      const result = streamText({
        model: wrapped,
        prompt: "Stream a story",
        temperature: 0,
        maxOutputTokens: 8,
      });
      const deltas: string[] = [];
      for await (const delta of result.textStream) deltas.push(delta);
      return deltas;
    };
    const first = await run();
    const second = await run();
    expect(second).toEqual(first);
    expect(first.join("").length).toBeGreaterThan(0);
    expect(chatRequests() - before).toBe(1);
  });

  const stream = (wrapped: ReturnType<typeof model>, prompt: string, signal?: AbortSignal) =>
    streamText({
      model: wrapped,
      prompt,
      temperature: 0,
      maxOutputTokens: 8,
      ...(signal !== undefined && { abortSignal: signal }),
    });
  const text = async (result: ReturnType<typeof stream>) => {
    let out = "";
    for await (const delta of result.textStream) out += delta;
    return out;
  };

  it("streamText: three concurrent identical calls make one model call (was three)", async () => {
    const wrapped = model();
    const before = chatRequests();
    const texts = await Promise.all([1, 2, 3].map(() => text(stream(wrapped, "Three at once"))));
    expect(chatRequests() - before).toBe(1);
    expect(texts[1]).toBe(texts[0]);
    expect(texts[2]).toBe(texts[0]);
    expect((texts[0] as string).length).toBeGreaterThan(0);
    // And it was stored: a later call replays it without the model.
    expect(await text(stream(wrapped, "Three at once"))).toBe(texts[0]);
    expect(chatRequests() - before).toBe(1);
  });

  it("streamText: the first caller aborting does not cut the stream of the one that joined", async () => {
    const wrapped = model();
    const before = chatRequests();
    const leaving = new AbortController();
    const first = stream(wrapped, "One leaves early", leaving.signal);
    const second = stream(wrapped, "One leaves early");
    const firstText = text(first).catch(() => "aborted");
    leaving.abort();
    const secondText = await text(second);
    expect(secondText.length).toBeGreaterThan(0);
    await firstText;
    expect(chatRequests() - before).toBe(1);
  });
});

describe("LangChain.js: a BaseCache on infercache stores", () => {
  it("ChatOpenAI with langChainCache() on a SQLite file: the second call never reaches the model", async () => {
    const store = new SqliteStore({
      path: join(mkdtempSync(join(tmpdir(), "infercache-lc-")), "lc.db"),
    });
    const chat = new ChatOpenAI({
      model: "tiny",
      apiKey: "k",
      temperature: 0,
      maxTokens: 8,
      configuration: { baseURL: upstream.baseURL },
      cache: langChainCache({ store, namespace: "lc" }),
    });
    const before = chatRequests();
    const first = await chat.invoke("Why cache model calls?");
    const second = await chat.invoke("Why cache model calls?");
    expect(second.content).toBe(first.content);
    expect(typeof first.content).toBe("string");
    expect(chatRequests() - before).toBe(1);
    await store.close();
  });
});
