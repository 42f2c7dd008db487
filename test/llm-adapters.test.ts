import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createOpenAICompatible } from "@ai-sdk/openai-compatible";
import { ChatOpenAI } from "@langchain/openai";
import { generateText, streamText, wrapLanguageModel } from "ai";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { cacheMiddleware, langChainCache } from "../src/llm.js";
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
