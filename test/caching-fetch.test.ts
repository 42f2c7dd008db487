import OpenAI from "openai";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { MemoryStore } from "../src/index.js";
import { type CachingFetch, cachingFetch, type LlmResult } from "../src/llm.js";
import { startUpstream, type Upstream } from "./helpers/llama-upstream.js";

let upstream: Upstream;
beforeAll(async () => {
  upstream = await startUpstream();
}, 60_000);
afterAll(async () => {
  await upstream?.close();
});
beforeEach(() => {
  upstream.failWith = undefined;
  upstream.cutStreamsAfter = undefined;
});

function client(fetch: CachingFetch, headers: Record<string, string> = {}) {
  return new OpenAI({
    apiKey: "test-key",
    baseURL: upstream.baseURL,
    fetch,
    maxRetries: 0,
    defaultHeaders: headers,
  });
}

const seen = (path: string) => upstream.engine.received.filter((r) => r.path.endsWith(path)).length;
const chat = (content: string) => ({
  model: "tiny",
  messages: [{ role: "user" as const, content }],
  temperature: 0,
  max_tokens: 12,
});

describe("cachingFetch with the OpenAI SDK and the local llama engine", () => {
  it("chat: the second identical call is a hit with the same content; the upstream saw one request", async () => {
    const fetch = cachingFetch();
    const openai = client(fetch);
    const before = seen("/chat/completions");
    const first = await openai.chat.completions.create(chat("What is a cache?"));
    const second = await openai.chat.completions.create(chat("What is a cache?")).withResponse();
    expect(second.response.headers.get("x-infercache")).toBe("hit");
    expect(second.data).toEqual(first);
    expect(seen("/chat/completions") - before).toBe(1);
    expect(fetch.cache.stats()).toMatchObject({ hits: 1, misses: 1 });
  });

  it("chat streams: a streamed hit replays every chunk, byte for byte", async () => {
    const fetch = cachingFetch();
    const openai = client(fetch);
    const request = {
      ...chat("Tell me a story"),
      stream: true as const,
      stream_options: { include_usage: true },
    };
    const before = seen("/chat/completions");
    const collect = async () => {
      const { data, response } = await openai.chat.completions.create(request).withResponse();
      const chunks: unknown[] = [];
      for await (const chunk of data) chunks.push(chunk);
      return { chunks, outcome: response.headers.get("x-infercache") };
    };
    const miss = await collect();
    const hit = await collect();
    expect(miss.outcome).toBe("miss");
    expect(hit.outcome).toBe("hit");
    expect(hit.chunks.length).toBeGreaterThan(3);
    expect(hit.chunks).toEqual(miss.chunks);
    expect(seen("/chat/completions") - before).toBe(1);
    // The raw bytes are the same too.
    const raw = async () =>
      (
        await fetch(`${upstream.baseURL}/chat/completions`, {
          method: "POST",
          headers: { "content-type": "application/json" },
          body: JSON.stringify(request),
        })
      ).text();
    expect(await raw()).toBe(await raw());
  });

  it("serves a streamed request from a plain record", async () => {
    const fetch = cachingFetch();
    const openai = client(fetch);
    const plain = await openai.chat.completions.create(chat("plain first"));
    const { data: stream, response } = await openai.chat.completions
      .create({ ...chat("plain first"), stream: true })
      .withResponse();
    let text = "";
    for await (const chunk of stream) text += chunk.choices[0]?.delta.content ?? "";
    expect(response.headers.get("x-infercache")).toBe("hit");
    expect(text).toBe(plain.choices[0]?.message.content);
  });

  it("never converts lossily: a stream without usage is no plain answer, so that is a miss", async () => {
    const fetch = cachingFetch();
    const openai = client(fetch);
    const streamed = await openai.chat.completions.create({ ...chat("no usage"), stream: true });
    for await (const _chunk of streamed) {
      // drain
    }
    const plain = await openai.chat.completions.create(chat("no usage")).withResponse();
    expect(plain.response.headers.get("x-infercache")).toBe("miss");
    expect(plain.data.usage?.total_tokens).toBeGreaterThan(0);
  });

  it("text completions are cached too", async () => {
    const fetch = cachingFetch();
    const openai = client(fetch);
    const request = { model: "tiny", prompt: "Once upon a time", max_tokens: 6, temperature: 0 };
    const first = await openai.completions.create(request);
    const second = await openai.completions.create(request).withResponse();
    expect(second.response.headers.get("x-infercache")).toBe("hit");
    expect(second.data).toEqual(first);
  });

  it("50 concurrent identical requests make 1 upstream request", async () => {
    const fetch = cachingFetch();
    const openai = client(fetch);
    const before = seen("/chat/completions");
    const request = chat("concurrent question");
    const answers = await Promise.all(
      Array.from({ length: 50 }, () => openai.chat.completions.create(request)),
    );
    expect(new Set(answers.map((a) => JSON.stringify(a))).size).toBe(1);
    expect(seen("/chat/completions") - before).toBe(1);
    expect(fetch.cache.stats().coalesced).toBe(49);
  });

  it("concurrent identical streams make 1 upstream request; late joiners replay then follow", async () => {
    const fetch = cachingFetch();
    const openai = client(fetch);
    const before = seen("/chat/completions");
    const request = { ...chat("streamed concurrently"), stream: true as const };
    const texts = await Promise.all(
      Array.from({ length: 10 }, async () => {
        let text = "";
        for await (const chunk of await openai.chat.completions.create(request))
          text += chunk.choices[0]?.delta.content ?? "";
        return text;
      }),
    );
    expect(new Set(texts).size).toBe(1);
    expect(seen("/chat/completions") - before).toBe(1);
  });

  it("does not cache upstream errors (500, 429)", async () => {
    const fetch = cachingFetch();
    const openai = client(fetch);
    for (const status of [500, 429]) {
      upstream.failWith = status;
      await expect(openai.chat.completions.create(chat(`error ${status}`))).rejects.toMatchObject({
        status,
      });
      upstream.failWith = undefined;
      const ok = await openai.chat.completions.create(chat(`error ${status}`)).withResponse();
      expect(ok.response.headers.get("x-infercache")).toBe("miss");
    }
    expect(fetch.cache.stats().sets).toBe(2);
  });

  it("does not cache a stream cut mid-way", async () => {
    const fetch = cachingFetch();
    const openai = client(fetch);
    upstream.cutStreamsAfter = 200;
    const request = { ...chat("a stream that breaks"), stream: true as const, max_tokens: 30 };
    await expect(
      (async () => {
        for await (const _ of await openai.chat.completions.create(request)) {
        }
      })(),
    ).rejects.toThrow();
    upstream.cutStreamsAfter = undefined;
    const { response, data } = await openai.chat.completions.create(request).withResponse();
    for await (const _ of data) {
    }
    expect(response.headers.get("x-infercache")).toBe("miss");
  });

  it("embeddings: partial hits send only the missing inputs and merge in the original order", async () => {
    const fetch = cachingFetch();
    const openai = client(fetch);
    const first = await openai.embeddings.create({ model: "tiny", input: ["alpha", "beta"] });
    const before = upstream.engine.received.length;
    const { data, response } = await openai.embeddings
      .create({ model: "tiny", input: ["gamma", "alpha", "delta", "beta"] })
      .withResponse();
    const sent = upstream.engine.received.slice(before);
    expect(sent).toHaveLength(1);
    expect(sent[0]?.body.input).toEqual(["gamma", "delta"]);
    expect(response.headers.get("x-infercache")).toBe("partial");
    expect(data.data.map((d) => d.index)).toEqual([0, 1, 2, 3]);
    expect(data.data[1]?.embedding).toEqual(first.data[0]?.embedding);
    expect(data.data[3]?.embedding).toEqual(first.data[1]?.embedding);
    const all = await openai.embeddings
      .create({ model: "tiny", input: ["delta", "alpha"] })
      .withResponse();
    expect(all.response.headers.get("x-infercache")).toBe("hit");
    expect(upstream.engine.received.length - before).toBe(1);
    expect(all.data.data[0]?.embedding).toEqual(data.data[2]?.embedding);
  });

  it("passes everything else through untouched", async () => {
    const fetch = cachingFetch();
    const openai = client(fetch);
    const models = await openai.models.list();
    expect(models.data[0]?.id).toBe("tiny");
    expect(fetch.cache.stats()).toMatchObject({ hits: 0, misses: 0 });
  });
});

describe("cachingFetch policies and controls", () => {
  it("Cache-Control: no-cache refreshes, no-store does not write, s-maxage bounds the age", async () => {
    const fetch = cachingFetch();
    const openai = client(fetch);
    const request = chat("controls");
    await openai.chat.completions.create(request);
    const refreshed = await openai.chat.completions
      .create(request, { headers: { "cache-control": "no-cache" } })
      .withResponse();
    expect(refreshed.response.headers.get("x-infercache")).toBe("miss");
    const notStored = chat("not stored");
    await openai.chat.completions.create(notStored, { headers: { "cache-control": "no-store" } });
    const after = await openai.chat.completions.create(notStored).withResponse();
    expect(after.response.headers.get("x-infercache")).toBe("miss");
    const fresh = await openai.chat.completions
      .create(request, { headers: { "cache-control": "s-maxage=60" } })
      .withResponse();
    expect(fresh.response.headers.get("x-infercache")).toBe("hit");
    expect(Number(fresh.response.headers.get("age"))).toBeGreaterThanOrEqual(0);
    expect(fresh.response.headers.get("server-timing")).toMatch(/cache;desc="hit";dur=/);
  });

  it("a namespace header keeps entries apart", async () => {
    const fetch = cachingFetch();
    const request = chat("namespaced");
    await client(fetch, { "x-infercache-namespace": "team-a" }).chat.completions.create(request);
    const other = await client(fetch, { "x-infercache-namespace": "team-b" })
      .chat.completions.create(request)
      .withResponse();
    expect(other.response.headers.get("x-infercache")).toBe("miss");
  });

  it("tenants never share entries", async () => {
    const fetch = cachingFetch({
      tenant: (request) => request.headers.get("authorization") ?? undefined,
    });
    const request = chat("tenant question");
    await new OpenAI({
      apiKey: "key-1",
      baseURL: upstream.baseURL,
      fetch,
      maxRetries: 0,
    }).chat.completions.create(request);
    const other = await new OpenAI({
      apiKey: "key-2",
      baseURL: upstream.baseURL,
      fetch,
      maxRetries: 0,
    }).chat.completions
      .create(request)
      .withResponse();
    expect(other.response.headers.get("x-infercache")).toBe("miss");
  });

  it("sampled requests: bypass, or a bucket of N answers", async () => {
    const results: LlmResult[] = [];
    const fetch = cachingFetch({ sampling: "bypass", onResult: (r) => results.push(r) });
    const openai = client(fetch);
    const sampled = {
      model: "tiny",
      messages: [{ role: "user" as const, content: "be creative" }],
      temperature: 0.9,
      max_tokens: 6,
    };
    await openai.chat.completions.create(sampled);
    const again = await openai.chat.completions.create(sampled).withResponse();
    expect(again.response.headers.get("x-infercache")).toBe("bypass");
    const seeded = await openai.chat.completions.create({ ...sampled, seed: 7 });
    const seededAgain = await openai.chat.completions
      .create({ ...sampled, seed: 7 })
      .withResponse();
    expect(seededAgain.response.headers.get("x-infercache")).toBe("hit");
    expect(seededAgain.data).toEqual(seeded);

    const bucketed = cachingFetch({ sampling: { bucket: 2 } });
    const b = client(bucketed);
    const outcomes: string[] = [];
    for (let i = 0; i < 4; i++) {
      outcomes.push(
        (await b.chat.completions.create(sampled).withResponse()).response.headers.get(
          "x-infercache",
        ) as string,
      );
    }
    expect(outcomes).toEqual(["miss", "miss", "hit", "hit"]);
    expect(results.some((r) => r.outcome === "bypass")).toBe(true);
  });

  it("n > 1 is not cached unless asked", async () => {
    const fetch = cachingFetch();
    const openai = client(fetch);
    const { response } = await openai.chat.completions
      .create({ ...chat("many"), n: 2 })
      .withResponse();
    expect(response.headers.get("x-infercache")).toBe("bypass");
  });

  it("a store that fails still answers, uncached", async () => {
    const store = new MemoryStore();
    store.getSync = () => {
      throw new Error("disk on fire");
    };
    const fetch = cachingFetch({ store, namespace: "broken" });
    const answer = await client(fetch).chat.completions.create(chat("store down"));
    expect(answer.choices[0]?.message.content).toBeTypeOf("string");
    expect(fetch.cache.stats().errors).toBeGreaterThan(0);
  });
});
