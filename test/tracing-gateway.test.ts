/**
 * OpenTelemetry spans of LLM requests: through the gateway (the real OpenAI SDK as the client, a
 * loopback upstream) a request's SERVER span is the parent of its store operations and its
 * upstream call (a CLIENT span named as the GenAI conventions name inference spans), and says the
 * route, model, outcome and tokens; a client's `traceparent` is its parent. `cachingFetch` gets an
 * INTERNAL span of the same shape. No attribute holds a prompt or an API key.
 */

import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { propagation } from "@opentelemetry/api";
import { W3CTraceContextPropagator } from "@opentelemetry/core";
import type { ReadableSpan } from "@opentelemetry/sdk-trace-base";
import OpenAI from "openai";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { cachingFetch } from "../src/llm.js";
import { RedisStore } from "../src/redis.js";
import { createGateway, type Gateway } from "../src/server.js";
import { SqliteStore } from "../src/sqlite.js";
import { type FakeUpstream, startFakeUpstream } from "./helpers/fake-upstream.js";
import { allAttributeText, installTracing, type TestTracing } from "./helpers/otel.js";
import { RedisServer } from "./helpers/redis-server.js";
import { until } from "./helpers/until.js";

const MARKER = "PROMPT-MARKER-41c7e2";
const API_KEY = "sk-SECRET-MARKER-9d0b";
let tracing: TestTracing;
let upstream: FakeUpstream;
let redis: RedisServer;
const closers: (() => Promise<unknown>)[] = [];

beforeAll(async () => {
  tracing = installTracing();
  propagation.setGlobalPropagator(new W3CTraceContextPropagator());
  upstream = await startFakeUpstream();
  redis = await RedisServer.start();
});
afterAll(async () => {
  for (const close of closers) await close();
  await upstream?.close();
  await redis?.kill();
  tracing.uninstall();
});
beforeEach(() => tracing.reset());

function one(name: string): ReadableSpan {
  const spans = tracing.named(name);
  expect(spans, `spans named ${name}`).toHaveLength(1);
  return spans[0] as ReadableSpan;
}

function childrenOf(parent: ReadableSpan): string[] {
  const id = parent.spanContext().spanId;
  return tracing
    .spans()
    .filter((span) => tracing.parentOf(span) === id)
    .map((span) => span.name)
    .sort();
}

function expectNoSecrets(): void {
  const text = allAttributeText(tracing.spans());
  expect(text).not.toContain(MARKER);
  expect(text).not.toContain(API_KEY);
  expect(text).not.toContain("SECRET-MARKER");
}

async function startGateway(store?: SqliteStore | RedisStore): Promise<OpenAI> {
  const gateway: Gateway = createGateway({
    upstream: upstream.baseURL,
    tenantSecret: "tenant-secret-for-tests",
    ...(store !== undefined && { store }),
  });
  const url = await gateway.listen();
  closers.push(() => gateway.close());
  return new OpenAI({ apiKey: API_KEY, baseURL: `${url}/v1`, maxRetries: 0 });
}

const chat = (content: string) => ({
  model: "gpt-4o-mini",
  messages: [{ role: "user" as const, content }],
  temperature: 0,
});

const stores: [string, () => SqliteStore | RedisStore | undefined][] = [
  ["memory", () => undefined],
  [
    "sqlite",
    () => {
      const store = new SqliteStore({
        path: join(mkdtempSync(join(tmpdir(), "infercache-tracing-gw-")), "cache.db"),
      });
      closers.push(() => store.close());
      return store;
    },
  ],
  [
    "redis",
    () => {
      const store = new RedisStore({ url: redis.url, prefix: "tracing-gw:" });
      closers.push(() => store.close());
      return store;
    },
  ],
];

describe("the gateway's request spans", () => {
  for (const [kind, makeStore] of stores) {
    it(`${kind}: a miss holds the read, the upstream call and the write; a hit only the read`, async () => {
      const client = await startGateway(makeStore());
      const before = upstream.count("/chat/completions");
      const miss = await client.chat.completions
        .create(chat(`${MARKER} what is a cache? (${kind})`))
        .withResponse();
      expect(miss.response.headers.get("x-infercache")).toBe("miss");
      await until(() => tracing.named("infercache.store.set").length === 1, "the write's span");
      const request = one("POST /v1/chat/completions");
      expect(request.kind).toBe(1); // SERVER
      expect(tracing.parentOf(request)).toBe("");
      expect(request.attributes).toMatchObject({
        "http.request.method": "POST",
        "url.path": "/v1/chat/completions",
        "http.response.status_code": 200,
        "infercache.outcome": "miss",
        "infercache.route": "chat",
        "gen_ai.operation.name": "chat",
        "gen_ai.request.model": "gpt-4o-mini",
        "gen_ai.usage.input_tokens": 10,
        "gen_ai.usage.output_tokens": 5,
        "infercache.key": miss.response.headers.get("x-infercache-key"),
      });
      expect(childrenOf(request)).toEqual(
        kind === "redis"
          ? // Redis coordinates processes: the miss takes the lock and reads once more under it.
            [
              "chat gpt-4o-mini",
              "infercache.store.get",
              "infercache.store.get",
              "infercache.store.lock",
              "infercache.store.set",
            ]
          : ["chat gpt-4o-mini", "infercache.store.get", "infercache.store.set"],
      );
      const call = one("chat gpt-4o-mini");
      expect(call.kind).toBe(2); // CLIENT
      expect(call.attributes).toMatchObject({
        "http.request.method": "POST",
        "server.address": "127.0.0.1",
        "url.path": "/v1/chat/completions",
        "http.response.status_code": 200,
        "gen_ai.operation.name": "chat",
        "gen_ai.request.model": "gpt-4o-mini",
      });
      for (const span of tracing.named("infercache.store.get")) {
        expect(span.attributes["infercache.store"]).toBe(kind);
      }
      expect(upstream.count("/chat/completions") - before).toBe(1);

      tracing.reset();
      const hit = await client.chat.completions
        .create(chat(`${MARKER} what is a cache? (${kind})`))
        .withResponse();
      expect(hit.response.headers.get("x-infercache")).toBe("hit");
      const served = one("POST /v1/chat/completions");
      expect(served.attributes).toMatchObject({
        "infercache.outcome": "hit",
        "gen_ai.request.model": "gpt-4o-mini",
        "infercache.saved_tokens": 15,
        "http.response.status_code": 200,
      });
      // A hit spent no tokens: no usage, which dashboards would count as cost.
      expect(served.attributes["gen_ai.usage.input_tokens"]).toBeUndefined();
      expect(childrenOf(served)).toEqual(["infercache.store.get"]);
      expect(one("infercache.store.get").attributes["infercache.store.found"]).toBe(true);
      expect(upstream.count("/chat/completions") - before).toBe(1);
      expectNoSecrets();
    });
  }

  it("a client's traceparent is the request span's parent", async () => {
    const client = await startGateway();
    const traceId = "4bf92f3577b34da6a3ce929d0e0e4736";
    const parentId = "00f067aa0ba902b7";
    await client.chat.completions.create(chat(`${MARKER} traced`), {
      headers: { traceparent: `00-${traceId}-${parentId}-01` },
    });
    const request = one("POST /v1/chat/completions");
    expect(request.spanContext().traceId).toBe(traceId);
    expect(tracing.parentOf(request)).toBe(parentId);
    expectNoSecrets();
  });

  it("a streamed miss: the request span ends with the stream, the upstream span with its body", async () => {
    const client = await startGateway();
    const stream = await client.chat.completions.create({
      ...chat(`${MARKER} stream me`),
      stream: true,
      stream_options: { include_usage: true },
    });
    let text = "";
    for await (const chunk of stream) text += chunk.choices[0]?.delta.content ?? "";
    expect(text.length).toBeGreaterThan(0);
    await until(() => tracing.named("POST /v1/chat/completions").length === 1, "the request span");
    const request = one("POST /v1/chat/completions");
    expect(request.attributes["infercache.outcome"]).toBe("miss");
    const call = one("chat gpt-4o-mini");
    expect(tracing.parentOf(call)).toBe(request.spanContext().spanId);
    expectNoSecrets();
  });

  it("a route the gateway does not cache: spans named by the method only", async () => {
    const client = await startGateway();
    const base = client.baseURL;
    const response = await fetch(`${base}/models/${MARKER}?key=${API_KEY}`, {
      headers: { authorization: `Bearer ${API_KEY}` },
    });
    await response.arrayBuffer();
    await until(() => tracing.named("GET").length === 2, "the request's and the upstream's spans");
    const [outer, inner] = [...tracing.named("GET")].sort((a, b) => a.kind - b.kind);
    expect(outer?.kind).toBe(1); // SERVER
    expect(inner?.kind).toBe(2); // CLIENT
    expect(tracing.parentOf(inner as ReadableSpan)).toBe(outer?.spanContext().spanId);
    expect(outer?.attributes["infercache.outcome"]).toBeUndefined();
    // The path is the client's, and kept as an attribute; the query (an API key here) is not.
    expect(allAttributeText(tracing.spans())).not.toContain(API_KEY);
  });

  it("an upstream that refuses: the upstream span and the request span fail, by reason", async () => {
    const dead = await startFakeUpstream();
    const base = dead.baseURL;
    await dead.close();
    const gateway = createGateway({ upstream: base, tenantSecret: "tenant-secret-for-tests" });
    const url = await gateway.listen();
    closers.push(() => gateway.close());
    const client = new OpenAI({ apiKey: API_KEY, baseURL: `${url}/v1`, maxRetries: 0 });
    await expect(client.chat.completions.create(chat(`${MARKER} nobody home`))).rejects.toThrow();
    const call = one("chat gpt-4o-mini");
    expect(call.status.code).toBe(2);
    expect(call.attributes["error.type"]).toBe("UpstreamError:refused");
    const request = one("POST /v1/chat/completions");
    expect(request.attributes["http.response.status_code"]).toBe(502);
    expect(request.status.code).toBe(2);
    expectNoSecrets();
  });
});

describe("cachingFetch's request spans", () => {
  it("a miss and a hit through the OpenAI SDK, each an INTERNAL span with the outcome", async () => {
    const fetch = cachingFetch();
    const client = new OpenAI({ apiKey: API_KEY, baseURL: upstream.baseURL, maxRetries: 0, fetch });
    await client.chat.completions.create(chat(`${MARKER} via fetch`));
    await until(() => tracing.named("infercache.store.set").length === 1, "the write's span");
    const miss = one("POST /v1/chat/completions");
    expect(miss.kind).toBe(0); // INTERNAL
    expect(miss.attributes["infercache.outcome"]).toBe("miss");
    expect(childrenOf(miss)).toEqual([
      "chat gpt-4o-mini",
      "infercache.store.get",
      "infercache.store.set",
    ]);
    tracing.reset();
    await client.chat.completions.create(chat(`${MARKER} via fetch`));
    expect(one("POST /v1/chat/completions").attributes["infercache.outcome"]).toBe("hit");
    expectNoSecrets();
  });
});
