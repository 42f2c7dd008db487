import OpenAI from "openai";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { LlamaEngine } from "../src/llama.js";
import { Tenants } from "../src/server/gateway/tenants.js";
import {
  createGateway,
  type Gateway,
  type ServedHandler,
  serveFetchHandler,
} from "../src/server.js";
import { MemoryStore } from "../src/store/memory.js";
import { startServe } from "./helpers/cli.js";
import { MODEL_PATH, startUpstream, type Upstream } from "./helpers/llama-upstream.js";

let engine: LlamaEngine;
let gateway: Gateway;
let served: { url: string };
const ADMIN = "admin-secret-for-tests";
const SECRET = "tenant-secret-for-tests";

beforeAll(async () => {
  engine = await LlamaEngine.load({ modelPath: MODEL_PATH, modelName: "tiny" });
  gateway = createGateway({
    upstream: (request) => engine.handle(request),
    adminToken: ADMIN,
    bodyLimitBytes: 64 * 1024,
    tenantSecret: SECRET,
  });
  served = { url: await gateway.listen() };
}, 60_000);
afterAll(async () => {
  await gateway?.close();
  await engine?.close();
});

const client = (apiKey = "key-1") =>
  new OpenAI({ apiKey, baseURL: `${served.url}/v1`, maxRetries: 0 });
const chat = (content: string) => ({
  model: "tiny",
  messages: [{ role: "user" as const, content }],
  temperature: 0,
  max_tokens: 8,
});
const chats = () => engine.received.filter((r) => r.path.endsWith("/chat/completions")).length;

describe("the gateway with the OpenAI SDK in front of the local engine", () => {
  it("answers a repeated request from the cache, with its headers", async () => {
    const before = chats();
    const miss = await client().chat.completions.create(chat("gateway question")).withResponse();
    const hit = await client().chat.completions.create(chat("gateway question")).withResponse();
    expect(miss.response.headers.get("x-infercache")).toBe("miss");
    expect(hit.response.headers.get("x-infercache")).toBe("hit");
    expect(hit.data).toEqual(miss.data);
    expect(chats() - before).toBe(1);
  });

  it("sends a whole answer with its length, not in chunks", async () => {
    const body = JSON.stringify(chat("gateway length é"));
    for (let i = 0; i < 2; i++) {
      const answer = await fetch(`${served.url}/v1/chat/completions`, {
        method: "POST",
        headers: { "content-type": "application/json", authorization: "Bearer key-1" },
        body,
      });
      const bytes = new Uint8Array(await answer.arrayBuffer());
      expect(answer.headers.get("x-infercache")).toBe(i === 0 ? "miss" : "hit");
      expect(answer.headers.get("transfer-encoding")).toBeNull();
      expect(Number(answer.headers.get("content-length"))).toBe(bytes.byteLength);
    }
  });

  it("replays streams", async () => {
    const request = { ...chat("gateway stream"), stream: true as const };
    const read = async () => {
      const { data, response } = await client().chat.completions.create(request).withResponse();
      let text = "";
      for await (const chunk of data) text += chunk.choices[0]?.delta.content ?? "";
      return { text, outcome: response.headers.get("x-infercache") };
    };
    const first = await read();
    const second = await read();
    expect(second).toEqual({ text: first.text, outcome: "hit" });
  });

  it("keeps tenants apart by API key", async () => {
    await client("key-a").chat.completions.create(chat("tenant-specific"));
    const other = await client("key-b")
      .chat.completions.create(chat("tenant-specific"))
      .withResponse();
    const same = await client("key-a")
      .chat.completions.create(chat("tenant-specific"))
      .withResponse();
    expect(other.response.headers.get("x-infercache")).toBe("miss");
    expect(same.response.headers.get("x-infercache")).toBe("hit");
  });

  it("passes other /v1 routes through", async () => {
    expect((await client().models.list()).data[0]?.id).toBe("tiny");
  });

  it("requires the admin token, and purges on request", async () => {
    expect((await fetch(`${served.url}/admin/stats`)).status).toBe(401);
    expect(
      (await fetch(`${served.url}/admin/stats`, { headers: { authorization: "Bearer wrong" } }))
        .status,
    ).toBe(401);
    const stats = await fetch(`${served.url}/admin/stats`, {
      headers: { authorization: `Bearer ${ADMIN}` },
    });
    expect(stats.status).toBe(200);
    const body = (await stats.json()) as { hits: number; entries: number };
    expect(body.hits).toBeGreaterThan(0);
    const purge = await fetch(`${served.url}/admin/purge`, {
      method: "POST",
      headers: { authorization: `Bearer ${ADMIN}` },
    });
    expect(((await purge.json()) as { removed: number }).removed).toBeGreaterThan(0);
    const after = await client().chat.completions.create(chat("gateway question")).withResponse();
    expect(after.response.headers.get("x-infercache")).toBe("miss");
  });

  it("exposes Prometheus metrics and a health check", async () => {
    const text = await (await fetch(`${served.url}/metrics`)).text();
    expect(text).toMatch(/# TYPE infercache_requests_total counter/);
    expect(text).toMatch(/infercache_requests_total\{route="chat",outcome="hit"\} [1-9]/);
    expect(text).toMatch(/infercache_upstream_latency_seconds_count [1-9]/);
    expect(text).toMatch(/infercache_time_saved_seconds_total \d/);
    expect(await (await fetch(`${served.url}/healthz`)).json()).toEqual({ status: "ok" });
  });

  it("rejects an oversized body with 413 and a clear message", async () => {
    const response = await fetch(`${served.url}/v1/chat/completions`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify(chat("x".repeat(100_000))),
    });
    expect(response.status).toBe(413);
    expect(((await response.json()) as { error: { message: string } }).error.message).toMatch(
      /limit is 65536/,
    );
  });

  it("deletes one entry by its key through the admin API", async () => {
    const first = await client().chat.completions.create(chat("delete me")).withResponse();
    const key = first.response.headers.get("x-infercache-key");
    expect(key).toMatch(/^[0-9a-f]{16,}/);
    const hit = await client().chat.completions.create(chat("delete me")).withResponse();
    expect(hit.response.headers.get("x-infercache")).toBe("hit");
    const unauthorized = await fetch(`${served.url}/admin/entries/${key}`, { method: "DELETE" });
    expect(unauthorized.status).toBe(401);
    const deleted = await fetch(`${served.url}/admin/entries/${key}`, {
      method: "DELETE",
      headers: { authorization: `Bearer ${ADMIN}` },
    });
    expect(await deleted.json()).toEqual({ deleted: true });
    const after = await client().chat.completions.create(chat("delete me")).withResponse();
    expect(after.response.headers.get("x-infercache")).toBe("miss");
  });

  it("keeps a session's entries to itself and drops them when its event stream disconnects", async () => {
    const store = gateway.pipeline.store;
    const id = `session-${Date.now()}`;
    // A session is its tenant's: its entries live under "<tenant>/<id>".
    const session = `${new Tenants(SECRET).ofParts({ authorization: "Bearer key-1" }, undefined)}/${id}`;
    const inSession = new OpenAI({
      apiKey: "key-1",
      baseURL: `${served.url}/v1`,
      maxRetries: 0,
      defaultHeaders: { "x-session-id": id },
    });
    const events = new AbortController();
    const stream = await fetch(`${served.url}/session/events`, {
      headers: { "x-session-id": id, authorization: "Bearer key-1" },
      signal: events.signal,
    });
    const reader = (stream.body as ReadableStream<Uint8Array>).getReader();
    expect(new TextDecoder().decode((await reader.read()).value)).toContain(id);

    const miss = await inSession.chat.completions.create(chat("private")).withResponse();
    const hit = await inSession.chat.completions.create(chat("private")).withResponse();
    const outside = await client().chat.completions.create(chat("private")).withResponse();
    expect(miss.response.headers.get("x-infercache")).toBe("miss");
    expect(hit.response.headers.get("x-infercache")).toBe("hit");
    expect(outside.response.headers.get("x-infercache")).toBe("miss");
    expect(await store.size({ session })).toBe(1);

    events.abort();
    const deadline = Date.now() + 5000;
    while ((await store.size({ session })) > 0 && Date.now() < deadline)
      await new Promise((resolve) => setTimeout(resolve, 20));
    expect(await store.size({ session })).toBe(0);
    // The shared entry made by the call outside the session is still there.
    const shared = await client().chat.completions.create(chat("private")).withResponse();
    expect(shared.response.headers.get("x-infercache")).toBe("hit");
    const again = await inSession.chat.completions.create(chat("private")).withResponse();
    expect(again.response.headers.get("x-infercache")).toBe("miss");
  });

  it("answers through the fetch-style handler too", async () => {
    const other: ServedHandler = await serveFetchHandler(gateway.handle);
    try {
      const openai = new OpenAI({ apiKey: "key-1", baseURL: `${other.url}/v1`, maxRetries: 0 });
      const answer = await openai.chat.completions.create(chat("gateway question")).withResponse();
      expect(answer.response.headers.get("x-infercache")).toBe("hit");
    } finally {
      await other.close();
    }
  });

  it("ends open event streams on close instead of waiting for them to disconnect", async () => {
    const closing = createGateway({
      upstream: (request) => engine.handle(request),
      store: new MemoryStore({ maxSize: 10 }),
    });
    const url = await closing.listen();
    const readers = await Promise.all(
      ["/events", "/session/events"].map(async (path) => {
        const response = await fetch(`${url}${path}`, { headers: { "x-session-id": "closing" } });
        const reader = (response.body as ReadableStream<Uint8Array>).getReader();
        expect((await reader.read()).done).toBe(false);
        return reader;
      }),
    );
    // With a drain limit far beyond the test's timeout, only ending the streams lets this finish.
    await closing.close(120_000);
    for (const reader of readers) {
      let done = false;
      while (!done) done = (await reader.read()).done;
      expect(done).toBe(true);
    }
    await expect(fetch(`${url}/healthz`)).rejects.toThrow();
  });

  it("needs one upstream, and says what replaced the old options", () => {
    // @ts-expect-error: an upstream is required
    expect(() => createGateway({})).toThrow(/Expected `upstream` to be an http\(s\) base URL/);
    expect(() => createGateway({ upstream: "ftp://x" })).toThrow(/http\(s\) base URL/);
    expect(() =>
      createGateway({ upstream: "http://x/v1", upstreamQueue: { concurrency: -1 } }),
    ).toThrow(/Expected `upstreamQueue.concurrency` to be a non-negative integer/);
    expect(() =>
      createGateway({ upstream: "http://x/v1", upstreamQueue: { concurrency: 0, maxQueue: 5 } }),
    ).toThrow(/`upstreamQueue.concurrency` to be at least 1/);
    // @ts-expect-error: the old option names
    expect(() => createGateway({ engine, concurrency: 1 })).toThrow(
      /`engine` is now `upstream: engine.handle`/,
    );
  });
});

describe("the gateway's upstream queue", () => {
  let upstream: Upstream;
  let queued: Gateway;
  let url: string;
  beforeAll(async () => {
    upstream = await startUpstream();
    queued = createGateway({
      upstream: upstream.baseURL,
      store: new MemoryStore({ maxSize: 100 }),
      upstreamQueue: { concurrency: 1, maxQueue: 1 },
    });
    url = await queued.listen();
  }, 60_000);
  afterAll(async () => {
    await queued?.close();
    await upstream?.close();
  });

  it("answers 503 when the queue is full, while hits still answer", async () => {
    const openai = new OpenAI({ apiKey: "k", baseURL: `${url}/v1`, maxRetries: 0 });
    await openai.chat.completions.create(chat("cached before the rush"));
    let open!: () => void;
    upstream.gate = new Promise<void>((resolve) => {
      open = resolve;
    });
    const arrived = upstream.arrived;
    const running = openai.chat.completions.create(chat("slow one")).withResponse();
    while (upstream.arrived === arrived) await new Promise((resolve) => setTimeout(resolve, 5));
    const waiting = openai.chat.completions.create(chat("slow two")).withResponse();
    await new Promise((resolve) => setTimeout(resolve, 50));
    const rejected = await fetch(`${url}/v1/chat/completions`, {
      method: "POST",
      headers: { "content-type": "application/json", authorization: "Bearer k" },
      body: JSON.stringify(chat("slow three")),
    });
    expect(rejected.status).toBe(503);
    expect(((await rejected.json()) as { error: { message: string } }).error.message).toMatch(
      /Queue is full: max size is 1 and 1 are waiting/,
    );
    const hit = await openai.chat.completions.create(chat("cached before the rush")).withResponse();
    expect(hit.response.headers.get("x-infercache")).toBe("hit");
    expect(upstream.arrived).toBe(arrived + 1);
    open();
    upstream.gate = undefined;
    const [first, second] = await Promise.all([running, waiting]);
    expect(first.response.headers.get("x-infercache")).toBe("miss");
    expect(second.response.headers.get("x-infercache")).toBe("miss");
    expect(upstream.arrived).toBe(arrived + 2);
  });
});

describe("the infercache command", () => {
  it("serves the local model, answers, and drains on SIGTERM", async () => {
    const served = await startServe(["--model", MODEL_PATH, "--port", "0", "--store", "memory"]);
    const url = served.url;
    const openai = new OpenAI({ apiKey: "k", baseURL: `${url}/v1`, maxRetries: 0 });
    await openai.chat.completions.create(chat("from the command"));
    const hit = await openai.chat.completions.create(chat("from the command")).withResponse();
    expect(hit.response.headers.get("x-infercache")).toBe("hit");
    expect(await served.stop()).toBe(0);
  }, 60_000);
});
