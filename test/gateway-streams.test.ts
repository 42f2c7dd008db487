/**
 * Streams and upstream faults through the gateway: joiners keep their stream when the first
 * client leaves, deadlines per phase instead of one total, every flight settles (embeddings
 * with cut bodies), one store read per request, and failures that keep their cause (counted by
 * reason, logged without secrets).
 */
import { createServer } from "node:net";
import OpenAI from "openai";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { createGateway, type Gateway } from "../src/server.js";
import { MemoryStore } from "../src/store/memory.js";
import type { Entry, Scope } from "../src/store/store.js";
import {
  chatStreamEvents,
  embeddings,
  type FakeUpstream,
  sendJson,
  startFakeUpstream,
} from "./helpers/fake-upstream.js";

let upstream: FakeUpstream;
beforeAll(async () => {
  upstream = await startFakeUpstream();
});
afterAll(async () => {
  await upstream?.close();
});
beforeEach(() => {
  upstream.respond = undefined;
});

let unique = 0;
const streamBody = () => ({
  model: "fake",
  messages: [{ role: "user", content: `a long story ${++unique}` }],
  temperature: 0,
  stream: true,
});
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
async function until(condition: () => boolean, what: string, ms = 5000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`${what} did not happen within ${ms} ms`);
    await sleep(10);
  }
}

/** An upstream stream of `count` events, one every `everyMs`. */
const slowStream =
  (count: number, everyMs: number) =>
  async (
    request: Parameters<NonNullable<FakeUpstream["respond"]>>[0],
    response: import("node:http").ServerResponse,
  ) => {
    const events = chatStreamEvents(request);
    response.writeHead(200, { "content-type": "text/event-stream" });
    const filler = events.slice(1, 2);
    const body = [
      events[0] as string,
      ...Array.from({ length: count }, () => filler[0] as string),
      ...events.slice(-2),
    ];
    for (const event of body) {
      if (response.destroyed) return;
      response.write(event);
      await sleep(everyMs);
    }
    response.end();
  };

async function start(options: Partial<Parameters<typeof createGateway>[0]> = {}) {
  const gateway = createGateway({
    upstream: upstream.baseURL,
    store: new MemoryStore({ maxSize: 0 }),
    ...options,
  });
  return { gateway, url: await gateway.listen() };
}

function send(url: string, body: unknown, signal?: AbortSignal) {
  return fetch(`${url}/v1/chat/completions`, {
    method: "POST",
    headers: { "content-type": "application/json", authorization: "Bearer sk-streams" },
    body: JSON.stringify(body),
    ...(signal !== undefined && { signal }),
  });
}

describe("a shared stream", () => {
  let gateway: Gateway;
  let url: string;
  beforeAll(async () => {
    ({ gateway, url } = await start());
  });
  afterAll(async () => {
    await gateway?.close();
  });

  it("goes on for the joiners when the client that started it leaves (it used to be cut for all)", async () => {
    upstream.respond = slowStream(20, 25);
    const body = streamBody();
    const first = new AbortController();
    const started = await send(url, body, first.signal);
    const firstReader = (started.body as ReadableStream<Uint8Array>).getReader();
    await firstReader.read();
    const joined = await send(url, body);
    expect(joined.headers.get("x-infercache")).toBe("coalesced");
    first.abort();
    const text = await joined.text();
    expect(text.trim().endsWith("data: [DONE]")).toBe(true);
    expect(upstream.aborted).toBe(0);
    // Complete, so stored: the next one is a hit with the same bytes.
    const hit = await send(url, body);
    expect(hit.headers.get("x-infercache")).toBe("hit");
    expect(await hit.text()).toBe(text);
  });

  it("is aborted upstream, and not stored, when the last client has left", async () => {
    upstream.respond = slowStream(40, 25);
    const body = streamBody();
    const abortedBefore = upstream.aborted;
    const a = new AbortController();
    const b = new AbortController();
    const first = await send(url, body, a.signal);
    await (first.body as ReadableStream<Uint8Array>).getReader().read();
    const second = await send(url, body, b.signal);
    await (second.body as ReadableStream<Uint8Array>).getReader().read();
    a.abort();
    b.abort();
    await until(() => upstream.aborted > abortedBefore, "the upstream call's abort");
    upstream.respond = undefined;
    const after = await send(url, body);
    expect(after.headers.get("x-infercache")).toBe("miss");
    await after.text();
  });
});

describe("upstream deadlines are per phase", () => {
  it("a healthy stream longer than both deadlines is not cut", async () => {
    const { gateway, url } = await start({ firstByteTimeoutMs: 300, idleTimeoutMs: 300 });
    try {
      upstream.respond = slowStream(12, 100);
      const response = await send(url, streamBody());
      const text = await response.text();
      expect(text.trim().endsWith("data: [DONE]")).toBe(true);
    } finally {
      await gateway.close();
    }
  });

  it("a stream that stalls past the idle deadline is cut, counted and not stored", async () => {
    const lines: string[] = [];
    const { gateway, url } = await start({
      idleTimeoutMs: 200,
      logger: { warn: (line) => lines.push(line) },
    });
    try {
      upstream.respond = async (request, response) => {
        const events = chatStreamEvents(request);
        response.writeHead(200, { "content-type": "text/event-stream" });
        response.write(events[0]);
        await sleep(1000);
        if (!response.destroyed) response.end();
      };
      const body = streamBody();
      const response = await send(url, body);
      await expect(response.text()).rejects.toThrow();
      upstream.respond = undefined;
      const again = await send(url, body);
      expect(again.headers.get("x-infercache")).toBe("miss");
      await again.text();
    } finally {
      await gateway.close();
    }
  });

  it("an upstream that sends nothing past the first-byte deadline gets a 504", async () => {
    const { gateway, url } = await start({ firstByteTimeoutMs: 200 });
    try {
      upstream.respond = async (request, response) => {
        await sleep(800);
        if (!response.destroyed) sendJson(response, 200, { ok: true, request: request.path });
      };
      const response = await send(url, { ...streamBody(), stream: false });
      expect(response.status).toBe(504);
      expect(((await response.json()) as { error: { message: string } }).error.message).toMatch(
        /did not answer within 200 ms/,
      );
      const metrics = await (await fetch(`${url}/metrics`)).text();
      expect(metrics).toContain(
        'infercache_upstream_failures_total{reason="first-byte-timeout"} 1',
      );
    } finally {
      await gateway.close();
    }
  });
});

describe("embeddings: every flight settles", () => {
  for (const [label, respond] of [
    [
      "a 200 whose body is cut",
      (_r: unknown, response: import("node:http").ServerResponse) => {
        response.writeHead(200, { "content-type": "application/json", "content-length": "1000" });
        response.write('{"object":"list","data":[{"object":"embedding","index":0,"embe');
        response.destroy();
      },
    ],
    [
      "a 200 whose body is not JSON",
      (_r: unknown, response: import("node:http").ServerResponse) => {
        response.writeHead(200, { "content-type": "application/json" });
        response.end("{not json");
      },
    ],
    [
      "a 200 missing one of the inputs",
      (
        request: Parameters<NonNullable<FakeUpstream["respond"]>>[0],
        response: import("node:http").ServerResponse,
      ) => {
        const answer = embeddings(request) as { data: unknown[] };
        answer.data = answer.data.slice(1);
        sendJson(response, 200, answer);
      },
    ],
  ] as const) {
    it(`${label}: later requests for the same inputs do not hang, and nothing is stored`, async () => {
      const { gateway, url } = await start();
      try {
        upstream.respond = respond as NonNullable<FakeUpstream["respond"]>;
        const input = [`first ${++unique}`, `second ${unique}`];
        const embed = () =>
          fetch(`${url}/v1/embeddings`, {
            method: "POST",
            headers: { "content-type": "application/json", authorization: "Bearer sk" },
            body: JSON.stringify({ model: "fake", input }),
            signal: AbortSignal.timeout(5000),
          });
        const first = await embed().catch((error: Error) => error);
        if (!(first instanceof Error)) await first.arrayBuffer().catch(() => undefined);
        upstream.respond = undefined;
        const second = await embed();
        expect(second.status).toBe(200);
        expect(second.headers.get("x-infercache")).toBe("miss");
        const json = (await second.json()) as { data: unknown[] };
        expect(json.data).toHaveLength(2);
      } finally {
        await gateway.close();
      }
    });
  }
});

describe("one parse, one key, one store read", () => {
  it("through the OpenAI SDK: 1 store read per hit and 1 per miss, streamed or not", async () => {
    let reads = 0;
    class CountingStore extends MemoryStore {
      override getSync(key: string, scope: Scope): Entry | undefined {
        reads++;
        return super.getSync(key, scope);
      }
      override async get(key: string, scope: Scope): Promise<Entry | undefined> {
        reads++;
        return super.getSync(key, scope);
      }
    }
    const { gateway, url } = await start({ store: new CountingStore() });
    try {
      const openai = new OpenAI({ apiKey: "sk", baseURL: `${url}/v1`, maxRetries: 0 });
      const request = {
        model: "fake",
        messages: [{ role: "user" as const, content: `count my reads ${++unique}` }],
        temperature: 0,
      };
      for (const expected of ["miss", "hit", "hit"]) {
        reads = 0;
        const { response } = await openai.chat.completions.create(request).withResponse();
        expect(response.headers.get("x-infercache")).toBe(expected);
        expect(reads).toBe(1);
      }
      const streamed = {
        ...request,
        messages: [{ role: "user" as const, content: `stream reads ${unique}` }],
        stream: true as const,
      };
      for (const expected of ["miss", "hit"]) {
        reads = 0;
        const { data, response } = await openai.chat.completions.create(streamed).withResponse();
        for await (const _chunk of data) {
          // drain
        }
        expect(response.headers.get("x-infercache")).toBe(expected);
        expect(reads).toBe(1);
      }
    } finally {
      await gateway.close();
    }
  });
});

describe("upstream failures keep their cause", () => {
  it("a refused connection is a 502 counted by reason and logged once, without secrets or prompts", async () => {
    const port = await new Promise<number>((resolve) => {
      const probe = createServer();
      probe.listen(0, "127.0.0.1", () => {
        const address = probe.address();
        probe.close(() =>
          resolve(typeof address === "object" && address !== null ? address.port : 0),
        );
      });
    });
    const lines: string[] = [];
    const gateway = createGateway({
      upstream: `http://127.0.0.1:${port}/v1`,
      store: new MemoryStore(),
      logger: { warn: (line) => lines.push(line) },
    });
    const url = await gateway.listen();
    try {
      const secret = "sk-live-do-not-log-me";
      const prompt = "my private medical question";
      for (let i = 0; i < 3; i++) {
        const response = await fetch(`${url}/v1/chat/completions`, {
          method: "POST",
          headers: { "content-type": "application/json", authorization: `Bearer ${secret}` },
          body: JSON.stringify({
            model: "fake",
            messages: [{ role: "user", content: `${prompt} ${i}` }],
          }),
        });
        expect(response.status).toBe(502);
        const message = ((await response.json()) as { error: { message: string } }).error.message;
        expect(message).toMatch(/refused the connection/);
        expect(message).not.toContain(secret);
      }
      const metrics = await (await fetch(`${url}/metrics`)).text();
      expect(metrics).toContain('infercache_upstream_failures_total{reason="refused"} 3');
      expect(lines).toHaveLength(1);
      expect(lines[0]).toMatch(/refused/);
      expect(lines.join("\n")).not.toContain(secret);
      expect(lines.join("\n")).not.toContain(prompt);
    } finally {
      await gateway.close();
    }
  });
});
