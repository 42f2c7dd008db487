/**
 * Cache modes through the gateway with the real OpenAI SDK (per request `x-infercache-mode`, per
 * gateway `mode`), on MemoryStore, SqliteStore and RedisStore, against a loopback upstream that
 * records what it received; and `Cache-Status` (RFC 9211) next to `x-infercache`.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import OpenAI from "openai";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { withCacheMode } from "../src/index.js";
import { cachingFetch } from "../src/llm.js";
import { RedisStore } from "../src/redis.js";
import { createGateway, type Gateway } from "../src/server.js";
import { SqliteStore } from "../src/sqlite.js";
import { MemoryStore } from "../src/store/memory.js";
import type { Store } from "../src/store/store.js";
import { type FakeUpstream, startFakeUpstream } from "./helpers/fake-upstream.js";
import { RedisServer } from "./helpers/redis-server.js";

let upstream: FakeUpstream;
let redis: RedisServer;
const dir = mkdtempSync(join(tmpdir(), "infercache-modes-gw-"));
const closers: (() => Promise<void>)[] = [];

beforeAll(async () => {
  upstream = await startFakeUpstream();
  redis = await RedisServer.start();
}, 30_000);
afterAll(async () => {
  for (const close of closers.reverse()) await close();
  await upstream?.close();
  await redis?.kill();
  rmSync(dir, { recursive: true, force: true });
});

let opened = 0;
const stores: [string, () => Store][] = [
  ["MemoryStore", () => new MemoryStore()],
  ["SqliteStore", () => new SqliteStore({ path: join(dir, `gw-${++opened}.db`) })],
  ["RedisStore", () => new RedisStore({ url: redis.url })],
];

async function start(
  store: Store,
  options: Partial<Parameters<typeof createGateway>[0]> = {},
): Promise<{ gateway: Gateway; client: OpenAI; url: string }> {
  const gateway = createGateway({
    upstream: upstream.baseURL,
    store,
    namespace: `modes-${++opened}`,
    tenantSecret: "modes-secret",
    ...options,
  });
  const url = await gateway.listen();
  closers.push(async () => {
    await gateway.close();
    await store.close();
  });
  return {
    gateway,
    url,
    client: new OpenAI({ apiKey: "sk-modes", baseURL: `${url}/v1`, maxRetries: 0 }),
  };
}

const chat = (content: string, extra: Record<string, unknown> = {}) => ({
  model: "gpt-test",
  messages: [{ role: "user" as const, content }],
  temperature: 0,
  ...extra,
});
const mode = (value: string) => ({ headers: { "x-infercache-mode": value } });
const chats = () => upstream.count("/chat/completions");

async function streamed(
  client: OpenAI,
  content: string,
  options: { headers?: Record<string, string> } = {},
) {
  const { data, response } = await client.chat.completions
    .create({ ...chat(content), stream: true }, options)
    .withResponse();
  let text = "";
  let id = "";
  for await (const chunk of data) {
    id = chunk.id;
    text += chunk.choices[0]?.delta.content ?? "";
  }
  return { text, id, headers: response.headers };
}

describe.each(stores)("gateway modes on %s", (_name, makeStore) => {
  let client: OpenAI;
  let url: string;
  beforeAll(async () => {
    ({ client, url } = await start(makeStore(), { sampling: "bypass" }));
  });

  it("read-write by default: a miss is stored, the repeat is a hit", async () => {
    const before = chats();
    const miss = await client.chat.completions.create(chat("rw")).withResponse();
    const hit = await client.chat.completions.create(chat("rw")).withResponse();
    expect(miss.response.headers.get("x-infercache")).toBe("miss");
    expect(miss.response.headers.get("cache-status")).toBe(
      "infercache; fwd=uri-miss; fwd-status=200; stored",
    );
    expect(hit.response.headers.get("x-infercache")).toBe("hit");
    expect(hit.response.headers.get("cache-status")).toBe("infercache; hit");
    expect(hit.data).toEqual(miss.data);
    expect(chats() - before).toBe(1);
  });

  it("read-only serves hits and forwards misses without storing them", async () => {
    await client.chat.completions.create(chat("ro-stored"));
    const before = chats();
    const hit = await client.chat.completions
      .create(chat("ro-stored"), mode("read-only"))
      .withResponse();
    expect(hit.response.headers.get("x-infercache")).toBe("hit");
    for (let i = 0; i < 2; i++) {
      const miss = await client.chat.completions
        .create(chat("ro-new"), mode("read-only"))
        .withResponse();
      expect(miss.response.headers.get("x-infercache")).toBe("miss");
      expect(miss.response.headers.get("cache-status")).toBe(
        "infercache; fwd=uri-miss; fwd-status=200",
      );
    }
    const after = await streamed(client, "ro-stream", mode("read-only"));
    expect(after.headers.get("x-infercache")).toBe("miss");
    expect(chats() - before).toBe(3);
    // Nothing was stored: a replay of them misses.
    await expect(client.chat.completions.create(chat("ro-new"), mode("replay"))).rejects.toThrow(
      /cache_miss/,
    );
  });

  it("refresh always asks the upstream and stores its answer, streams too", async () => {
    const first = await client.chat.completions.create(chat("refresh me"));
    const before = chats();
    const refreshed = await client.chat.completions
      .create(chat("refresh me"), mode("refresh"))
      .withResponse();
    expect(refreshed.response.headers.get("x-infercache")).toBe("miss");
    expect(refreshed.response.headers.get("cache-status")).toBe(
      "infercache; fwd=request; fwd-status=200; stored",
    );
    expect(refreshed.data.id).not.toBe(first.id);
    const hit = await client.chat.completions.create(chat("refresh me"));
    expect(hit.id).toBe(refreshed.data.id);

    const stream1 = await streamed(client, "refresh stream");
    const stream2 = await streamed(client, "refresh stream", mode("refresh"));
    expect(stream2.headers.get("x-infercache")).toBe("miss");
    expect(stream2.headers.get("cache-status")).toBe("infercache; fwd=request; fwd-status=200");
    expect(stream2.id).not.toBe(stream1.id);
    const stream3 = await streamed(client, "refresh stream");
    expect(stream3.headers.get("x-infercache")).toBe("hit");
    expect(stream3.id).toBe(stream2.id);
    expect(chats() - before).toBe(3);
  });

  it("replay serves hits and answers a miss with cache_miss, never reaching the upstream", async () => {
    await client.chat.completions.create(chat("replayed"));
    const before = upstream.received.length;
    const hit = await client.chat.completions
      .create(chat("replayed"), mode("replay"))
      .withResponse();
    expect(hit.response.headers.get("x-infercache")).toBe("hit");
    const error = await client.chat.completions.create(chat("never recorded"), mode("replay")).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(OpenAI.APIError);
    const apiError = error as InstanceType<typeof OpenAI.APIError>;
    expect(apiError.status).toBe(504);
    expect(apiError.code).toBe("cache_miss");
    expect(apiError.type).toBe("cache_miss");
    const key = apiError.headers?.get("x-infercache-key");
    expect(key).toMatch(/^[0-9a-f]{64}$/);
    expect(apiError.message).toContain(key as string);
    expect(apiError.headers?.get("x-should-retry")).toBe("false");
    expect(apiError.headers?.get("cache-status")).toBe("infercache; detail=cache-miss");
    await expect(streamed(client, "never recorded stream", mode("replay"))).rejects.toThrow(
      /cache_miss/,
    );
    await expect(
      client.embeddings.create({ model: "emb", input: ["never", "recorded"] }, mode("replay")),
    ).rejects.toThrow(/cache_miss/);
    // Routes the cache does not answer are not forwarded in replay either.
    await expect(client.models.list(mode("replay"))).rejects.toThrow(/cache_miss/);
    expect(upstream.received.length).toBe(before);
  });

  it("record stores what the sampling policy would bypass, and replay finds it", async () => {
    const sampled = chat("sampled", { temperature: 0.9 });
    const bypassed = await client.chat.completions.create(sampled).withResponse();
    expect(bypassed.response.headers.get("x-infercache")).toBe("bypass");
    expect(bypassed.response.headers.get("cache-status")).toBe(
      'infercache; fwd=bypass; fwd-status=200; detail="sampled"',
    );
    const recorded = await client.chat.completions.create(sampled, mode("record")).withResponse();
    expect(recorded.response.headers.get("x-infercache")).toBe("miss");
    const before = chats();
    const replayed = await client.chat.completions.create(sampled, mode("replay")).withResponse();
    expect(replayed.response.headers.get("x-infercache")).toBe("hit");
    expect(replayed.data).toEqual(recorded.data);
    // read-write still bypasses sampled requests under this policy.
    const again = await client.chat.completions.create(sampled).withResponse();
    expect(again.response.headers.get("x-infercache")).toBe("bypass");
    expect(chats() - before).toBe(1);
  });

  it("the mode header is never forwarded and never part of the key", async () => {
    const before = upstream.received.length;
    await client.chat.completions.create(chat("header stays here"), mode("record"));
    const received = upstream.received.at(-1);
    expect(upstream.received.length).toBe(before + 1);
    expect(received?.headers["x-infercache-mode"]).toBeUndefined();
    const hit = await client.chat.completions
      .create(chat("header stays here"), mode("read-only"))
      .withResponse();
    expect(hit.response.headers.get("x-infercache")).toBe("hit");
  });

  it("an invalid mode is a 400 naming the header and the allowed values", async () => {
    const answer = await fetch(`${url}/v1/chat/completions`, {
      method: "POST",
      headers: { "content-type": "application/json", "x-infercache-mode": "replya" },
      body: JSON.stringify(chat("bad mode")),
    });
    expect(answer.status).toBe(400);
    const body = (await answer.json()) as { error: { message: string } };
    expect(body.error.message).toBe(
      'x-infercache-mode must be one of "read-write", "read-only", "refresh", "replay", "record"',
    );
  });

  it("embeddings: a partial answer says fwd=partial, a whole hit says hit", async () => {
    await client.embeddings.create({ model: "emb", input: ["one"] });
    const partial = await client.embeddings
      .create({ model: "emb", input: ["one", "two"] })
      .withResponse();
    expect(partial.response.headers.get("x-infercache")).toBe("partial");
    expect(partial.response.headers.get("cache-status")).toBe(
      "infercache; fwd=partial; fwd-status=200; stored",
    );
    const hit = await client.embeddings
      .create({ model: "emb", input: ["one", "two"] }, mode("replay"))
      .withResponse();
    expect(hit.response.headers.get("x-infercache")).toBe("hit");
    expect(hit.response.headers.get("cache-status")).toBe("infercache; hit");
  });
});

describe("gateway-wide modes", () => {
  it("createGateway({ mode: 'replay' }) never calls the upstream; a request may pick another mode", async () => {
    const store = new MemoryStore();
    const { client: recorder } = await start(store, { namespace: "shared-ns" });
    await recorder.chat.completions.create(chat("gateway replay"));
    const { client } = await start(store, { namespace: "shared-ns", mode: "replay" });
    const before = chats();
    const hit = await client.chat.completions.create(chat("gateway replay")).withResponse();
    expect(hit.response.headers.get("x-infercache")).toBe("hit");
    await expect(client.chat.completions.create(chat("gateway new"))).rejects.toThrow(/cache_miss/);
    expect(chats()).toBe(before);
    const recorded = await client.chat.completions
      .create(chat("gateway new"), mode("record"))
      .withResponse();
    expect(recorded.response.headers.get("x-infercache")).toBe("miss");
    expect(chats()).toBe(before + 1);
  });

  it("a ttl shows in Cache-Status as the seconds left", async () => {
    const { client } = await start(new MemoryStore(), { ttl: "1h" });
    await client.chat.completions.create(chat("ttl"));
    const hit = await client.chat.completions.create(chat("ttl")).withResponse();
    expect(hit.response.headers.get("cache-status")).toMatch(/^infercache; hit; ttl=(3600|3599)$/);
  });

  it("only-if-cached with nothing stored says so in Cache-Status", async () => {
    const { url } = await start(new MemoryStore());
    const answer = await fetch(`${url}/v1/chat/completions`, {
      method: "POST",
      headers: { "content-type": "application/json", "cache-control": "only-if-cached" },
      body: JSON.stringify(chat("only if cached")),
    });
    expect(answer.status).toBe(504);
    expect(answer.headers.get("cache-status")).toBe("infercache; detail=only-if-cached");
  });

  it("createGateway refuses an unknown mode, naming the option", () => {
    expect(() =>
      createGateway({ upstream: upstream.baseURL, mode: "replay-all" as never }),
    ).toThrow(
      'Expected `mode` to be one of "read-write", "read-only", "refresh", "replay", "record"',
    );
  });
});

describe("replay misses in each protocol's own error shape", () => {
  it("Anthropic Messages: type cache_miss; Gemini: its numeric code with an ErrorInfo", async () => {
    const { url } = await start(new MemoryStore(), { mode: "replay" });
    const messages = await fetch(`${url}/v1/messages`, {
      method: "POST",
      headers: { "content-type": "application/json", "anthropic-version": "2023-06-01" },
      body: JSON.stringify({
        model: "claude-test",
        max_tokens: 8,
        messages: [{ role: "user", content: "never recorded" }],
      }),
    });
    expect(messages.status).toBe(504);
    const anthropic = (await messages.json()) as { type: string; error: { type: string } };
    expect(anthropic.type).toBe("error");
    expect(anthropic.error.type).toBe("cache_miss");

    const gemini = createGateway({ upstream: `${upstream.url}/v1beta`, mode: "replay" });
    const geminiUrl = await gemini.listen();
    closers.push(() => gemini.close());
    const generated = await fetch(`${geminiUrl}/v1beta/models/gemini-test:generateContent`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({
        contents: [{ role: "user", parts: [{ text: "never recorded" }] }],
        generationConfig: { temperature: 0 },
      }),
    });
    expect(generated.status).toBe(504);
    const google = (await generated.json()) as {
      error: { code: number; details: { reason: string }[] };
    };
    expect(google.error.code).toBe(504);
    expect(google.error.details[0]?.reason).toBe("CACHE_MISS");
  });
});

describe("an upstream's own Cache-Status", () => {
  it("is kept, with ours after it", async () => {
    const { client } = await start(new MemoryStore());
    upstream.respond = (request, response, defaults) => {
      response.setHeader("cache-status", "upstream-cdn; fwd=uri-miss");
      defaults.answer(request, response);
    };
    try {
      const miss = await client.chat.completions.create(chat("behind a cdn")).withResponse();
      expect(miss.response.headers.get("cache-status")).toBe(
        "upstream-cdn; fwd=uri-miss, infercache; fwd=uri-miss; fwd-status=200; stored",
      );
    } finally {
      upstream.respond = undefined;
    }
  });
});

describe("cachingFetch modes with the OpenAI SDK", () => {
  it("takes a mode option and the header; replay never calls the given fetch", async () => {
    let calls = 0;
    const store = new MemoryStore();
    const counting = (input: string | URL | Request, init?: RequestInit) => {
      calls++;
      return fetch(input, init);
    };
    const record = new OpenAI({
      apiKey: "sk-x",
      baseURL: upstream.baseURL,
      maxRetries: 0,
      fetch: cachingFetch({ store, fetch: counting, mode: "record", sampling: "bypass" }),
    });
    const replay = new OpenAI({
      apiKey: "sk-x",
      baseURL: upstream.baseURL,
      maxRetries: 0,
      fetch: cachingFetch({ store, fetch: counting, mode: "replay" }),
    });
    const sampled = chat("fetch sampled", { temperature: 1 });
    const recorded = await record.chat.completions.create(sampled);
    expect(calls).toBe(1);
    expect(await replay.chat.completions.create(sampled)).toEqual(recorded);
    await expect(replay.chat.completions.create(chat("fetch new"))).rejects.toThrow(/cache_miss/);
    await expect(replay.models.list()).rejects.toThrow(/cache_miss/);
    expect(calls).toBe(1);
    // A scope picks the mode of every request inside it; the header still wins.
    await withCacheMode("replay", async () => {
      await expect(record.chat.completions.create(chat("scoped new"))).rejects.toThrow(
        /cache_miss/,
      );
      const hit = await record.chat.completions.create(sampled).withResponse();
      expect(hit.response.headers.get("cache-status")).toBe("infercache; hit");
      await record.chat.completions.create(chat("scoped new"), mode("record"));
    });
    expect(calls).toBe(2);
  });
});
