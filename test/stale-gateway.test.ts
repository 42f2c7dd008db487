/**
 * Serving stale through the gateway and `cachingFetch`, with the real OpenAI SDK against a
 * loopback upstream that can be made to fail (5xx, a stall past the first-byte timeout, closed),
 * driven by an injected clock: `Cache-Control: stale-while-revalidate=N, stale-if-error=N` per
 * request, `createGateway({ staleWhileRevalidate, staleIfError })` as defaults.
 */
import OpenAI from "openai";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { cachingFetch } from "../src/llm.js";
import { createGateway, type Gateway } from "../src/server.js";
import { FakeClock } from "./helpers/fake-clock.js";
import { type FakeUpstream, startFakeUpstream } from "./helpers/fake-upstream.js";
import { until } from "./helpers/until.js";

let upstream: FakeUpstream;
const gateways: Gateway[] = [];

beforeAll(async () => {
  upstream = await startFakeUpstream();
});
afterEach(() => {
  upstream.respond = undefined;
});
afterAll(async () => {
  for (const gateway of gateways) await gateway.close();
  await upstream?.close();
});

async function start(
  options: Partial<Parameters<typeof createGateway>[0]> = {},
  base = upstream.baseURL,
): Promise<{ clock: FakeClock; url: string; gateway: Gateway; openai: OpenAI }> {
  const clock = new FakeClock();
  const gateway = createGateway({ upstream: base, clock, sharedCache: true, ...options });
  gateways.push(gateway);
  const url = await gateway.listen({ port: 0 });
  const openai = new OpenAI({ apiKey: "k", baseURL: `${url}/v1`, maxRetries: 0 });
  return { clock, url, gateway, openai };
}

let prompts = 0;
const chat = (content = `question ${++prompts}`) => ({
  model: "fake",
  messages: [{ role: "user" as const, content }],
  temperature: 0,
});
const chats = () => upstream.count("/chat/completions");
const failWith = (status: number) => {
  upstream.respond = (_request, response) => {
    response.writeHead(status, { "content-type": "application/json" });
    response.end(JSON.stringify({ error: { message: "down", type: "server_error" } }));
  };
};

describe("stale-while-revalidate through the gateway", () => {
  it("answers N concurrent stale requests at once and refreshes upstream exactly once", async () => {
    const { clock, openai, url } = await start({ ttl: "60s", staleWhileRevalidate: "10m" });
    const body = chat();
    const first = await openai.chat.completions.create(body).withResponse();
    expect(first.response.headers.get("x-infercache")).toBe("miss");
    const before = chats();
    // The refresh waits at the upstream until every stale request has been answered.
    let release!: () => void;
    const gate = new Promise<void>((resolve) => {
      release = resolve;
    });
    upstream.respond = async (request, response, defaults) => {
      await gate;
      defaults.answer(request, response);
    };
    clock.advance(90_000);
    const stale = await Promise.all(
      Array.from({ length: 6 }, () => openai.chat.completions.create(body).withResponse()),
    );
    for (const answer of stale) {
      expect(answer.response.headers.get("x-infercache")).toBe("stale");
      expect(answer.response.headers.get("age")).toBe("90");
      // RFC 9211: answered by the cache, 30 s past its freshness.
      expect(answer.response.headers.get("cache-status")).toBe("infercache; hit; ttl=-30");
      expect(answer.data).toEqual(first.data);
    }
    release();
    await until(() => chats() === before + 1, "the background refresh to reach the upstream");
    await until(async () => {
      const again = await openai.chat.completions.create(body).withResponse();
      return again.response.headers.get("x-infercache") === "hit";
    }, "the refreshed answer to be stored");
    expect(chats()).toBe(before + 1);
    const metrics = await (await fetch(`${url}/metrics`)).text();
    expect(metrics).toContain('infercache_requests_total{route="chat",outcome="stale"} 6');
    expect(metrics).toMatch(/infercache_stale_total 6/);
  });

  it("refreshes nothing in read-only mode, and replay serves no stale answer", async () => {
    const { clock, openai } = await start({ ttl: "60s", staleWhileRevalidate: "10m" });
    const body = chat();
    await openai.chat.completions.create(body);
    const before = chats();
    clock.advance(90_000);
    const readOnly = await openai.chat.completions
      .create(body, { headers: { "x-infercache-mode": "read-only" } })
      .withResponse();
    expect(readOnly.response.headers.get("x-infercache")).toBe("stale");
    const replay = openai.chat.completions.create(body, {
      headers: { "x-infercache-mode": "replay" },
    });
    await expect(replay).rejects.toMatchObject({ status: 504, code: "cache_miss" });
    // Give a refresh, had one started, the time to reach the upstream.
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(chats()).toBe(before);
  });

  it("takes the window from the request's Cache-Control, and refuses a bad one naming it", async () => {
    const { clock, openai, url } = await start({ ttl: "60s" });
    const body = chat();
    // The window must be known when the answer is stored: it is kept that long past its ttl.
    const first = await openai.chat.completions
      .create(body, { headers: { "cache-control": "stale-while-revalidate=30" } })
      .withResponse();
    expect(first.response.headers.get("x-infercache")).toBe("miss");
    clock.advance(61_000);
    const allowed = await openai.chat.completions
      .create(body, { headers: { "cache-control": "stale-while-revalidate=30" } })
      .withResponse();
    expect(allowed.response.headers.get("x-infercache")).toBe("stale");
    clock.advance(60_000);
    // 121 s old, 61 s stale: past a 30 s window, so it is not served stale (nor as fresh).
    const past = await openai.chat.completions
      .create(body, { headers: { "cache-control": "stale-while-revalidate=30" } })
      .withResponse();
    expect(past.response.headers.get("x-infercache")).not.toBe("stale");
    expect(past.response.headers.get("x-infercache")).not.toBe("hit");
    const bad = await fetch(`${url}/v1/chat/completions`, {
      method: "POST",
      headers: { "content-type": "application/json", "cache-control": "stale-if-error=soon" },
      body: JSON.stringify(body),
    });
    expect(bad.status).toBe(400);
    expect(await bad.text()).toContain("stale-if-error");
  });

  it("replays a stale stream byte for byte", async () => {
    const { clock, url } = await start({ ttl: "60s", staleWhileRevalidate: "10m" });
    const request = () =>
      fetch(`${url}/v1/chat/completions`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ ...chat("stream me"), stream: true }),
      });
    const first = await request();
    const recorded = await first.text();
    await until(async () => {
      const again = await request();
      await again.text();
      return again.headers.get("x-infercache") === "hit";
    }, "the stream to be stored");
    clock.advance(61_000);
    const stale = await request();
    expect(stale.headers.get("x-infercache")).toBe("stale");
    expect(await stale.text()).toBe(recorded);
  });
});

describe("stale-if-error through the gateway", () => {
  it("answers with the stale entry on an upstream 5xx, within the window only", async () => {
    const { clock, openai } = await start({ ttl: "60s", staleIfError: "1h" });
    const body = chat();
    const first = await openai.chat.completions.create(body);
    failWith(503);
    clock.advance(30_000);
    expect(
      (await openai.chat.completions.create(body).withResponse()).response.headers.get(
        "x-infercache",
      ),
    ).toBe("hit");
    clock.advance(31_000);
    const stale = await openai.chat.completions.create(body).withResponse();
    expect(stale.response.status).toBe(200);
    expect(stale.response.headers.get("x-infercache")).toBe("stale");
    expect(stale.response.headers.get("age")).toBe("61");
    // The request went upstream, failed, and the stale answer was served: fwd=stale.
    expect(stale.response.headers.get("cache-status")).toBe("infercache; fwd=stale; ttl=-1");
    expect(stale.data).toEqual(first);
    clock.advance(3_600_000);
    await expect(openai.chat.completions.create(body)).rejects.toMatchObject({ status: 503 });
  });

  it("answers with the stale entry when the upstream stalls past the first-byte timeout", async () => {
    const { clock, openai } = await start({
      ttl: "60s",
      staleIfError: "1h",
      firstByteTimeoutMs: 200,
    });
    const body = chat();
    const first = await openai.chat.completions.create(body);
    upstream.respond = () => new Promise<void>(() => {}); // never answers
    clock.advance(120_000);
    const stale = await openai.chat.completions.create(body).withResponse();
    expect(stale.response.headers.get("x-infercache")).toBe("stale");
    expect(stale.data).toEqual(first);
  });

  it("answers with the stale entry when the upstream refuses connections", async () => {
    const other = await startFakeUpstream();
    const { clock, openai } = await start({ ttl: "60s", staleIfError: "1h" }, other.baseURL);
    const body = chat();
    const first = await openai.chat.completions.create(body);
    await other.close();
    clock.advance(120_000);
    const stale = await openai.chat.completions.create(body).withResponse();
    expect(stale.response.headers.get("x-infercache")).toBe("stale");
    expect(stale.data).toEqual(first);
    // Serving stale wrote nothing: past the window the failure is the client's.
    clock.advance(3_600_000);
    await expect(openai.chat.completions.create(body)).rejects.toMatchObject({ status: 502 });
  });

  it("never serves a stale entry as fresh to a request that allows no stale", async () => {
    const { clock, openai } = await start({ ttl: "60s", staleIfError: "1h" });
    const body = chat();
    await openai.chat.completions.create(body);
    clock.advance(61_000);
    const before = chats();
    const fresh = await openai.chat.completions
      .create(body, { headers: { "cache-control": "stale-if-error=0" } })
      .withResponse();
    expect(fresh.response.headers.get("x-infercache")).toBe("miss");
    expect(chats()).toBe(before + 1);
  });
});

describe("stale answers through cachingFetch", () => {
  it("answers a 5xx with the stale entry, marked stale", async () => {
    const clock = new FakeClock();
    const fetch = cachingFetch({ ttl: 60_000, staleIfError: "1h", clock });
    const openai = new OpenAI({ apiKey: "k", baseURL: upstream.baseURL, fetch, maxRetries: 0 });
    const body = chat();
    const first = await openai.chat.completions.create(body);
    failWith(500);
    clock.advance(61_000);
    const stale = await openai.chat.completions.create(body).withResponse();
    expect(stale.response.headers.get("x-infercache")).toBe("stale");
    expect(stale.data).toEqual(first);
    expect(fetch.cache.stats().stale).toBe(1);
  });
});
