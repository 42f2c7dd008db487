/**
 * Tenants from every credential, sessions that belong to their tenant, validated infercache
 * headers, a dashboard feed that is bounded and shows requests to admins only, and an honest
 * health check. The real OpenAI SDK where a client is involved; a loopback upstream behind.
 */
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import OpenAI from "openai";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createGateway, type Gateway } from "../src/server.js";
import { SqliteStore } from "../src/sqlite.js";
import { MemoryStore } from "../src/store/memory.js";
import type { Store, StoreHealth } from "../src/store/store.js";
import { type FakeUpstream, startFakeUpstream } from "./helpers/fake-upstream.js";

let upstream: FakeUpstream;
let gateway: Gateway;
let url: string;
const ADMIN = "admin-token-for-tenants";

beforeAll(async () => {
  upstream = await startFakeUpstream();
  gateway = createGateway({
    upstream: upstream.baseURL,
    store: new MemoryStore({ maxSize: 0 }),
    adminToken: ADMIN,
  });
  url = await gateway.listen();
});
afterAll(async () => {
  await gateway?.close();
  await upstream?.close();
});

let unique = 0;
const body = () => ({
  model: "fake",
  messages: [{ role: "user", content: `tenant question ${++unique}` }],
  temperature: 0,
});
async function post(
  payload: unknown,
  headers: Record<string, string>,
  search = "",
): Promise<{ status: number; outcome: string | null; json: Record<string, unknown> }> {
  const response = await fetch(`${url}/v1/chat/completions${search}`, {
    method: "POST",
    headers: { "content-type": "application/json", ...headers },
    body: JSON.stringify(payload),
  });
  return {
    status: response.status,
    outcome: response.headers.get("x-infercache"),
    json: (await response.json()) as Record<string, unknown>,
  };
}

describe("the tenant is the keyed hash of every credential", () => {
  for (const [label, good, bad] of [
    ["Authorization", { authorization: "Bearer sk-good" }, { authorization: "Bearer sk-bad" }],
    ["x-api-key (Anthropic)", { "x-api-key": "good" }, { "x-api-key": "bad" }],
    ["api-key (Azure OpenAI)", { "api-key": "good" }, { "api-key": "bad" }],
    ["x-goog-api-key (Gemini)", { "x-goog-api-key": "good" }, { "x-goog-api-key": "bad" }],
  ] as const) {
    it(`${label}: a wrong key, or none, never reads a valid key's answers`, async () => {
      const payload = body();
      expect((await post(payload, good)).outcome).toBe("miss");
      expect((await post(payload, good)).outcome).toBe("hit");
      expect((await post(payload, bad)).outcome).toBe("miss");
      expect((await post(payload, {})).outcome).toBe("miss");
    });
  }

  for (const param of ["key", "api-key"]) {
    it(`?${param}=: a wrong key, or none, never reads a valid key's answers`, async () => {
      const payload = body();
      expect((await post(payload, {}, `?${param}=good`)).outcome).toBe("miss");
      expect((await post(payload, {}, `?${param}=good`)).outcome).toBe("hit");
      expect((await post(payload, {}, `?${param}=bad`)).outcome).toBe("miss");
      expect((await post(payload, {})).outcome).toBe("miss");
      // The credential reaches the upstream as it was sent.
      expect(upstream.received.at(-2)?.search).toBe(`?${param}=bad`);
    });
  }

  it("requests without any credential share only with each other", async () => {
    const payload = body();
    expect((await post(payload, {})).outcome).toBe("miss");
    expect((await post(payload, {})).outcome).toBe("hit");
    expect((await post(payload, { authorization: "Bearer anything" })).outcome).toBe("miss");
  });

  it("every credential counts: the same Authorization with another x-api-key is another tenant", async () => {
    const payload = body();
    const both = { authorization: "Bearer sk", "x-api-key": "one" };
    expect((await post(payload, both)).outcome).toBe("miss");
    expect((await post(payload, { ...both, "x-api-key": "two" })).outcome).toBe("miss");
    expect((await post(payload, { authorization: "Bearer sk" })).outcome).toBe("miss");
  });
});

describe("the tenant secret is kept with the store", () => {
  it("a restarted gateway on the same SQLite file keeps the hits an SDK client stored", async () => {
    const path = join(mkdtempSync(join(tmpdir(), "ic-secret-")), "cache.db");
    const request = { ...body(), model: "fake" };
    const ask = async (gatewayUrl: string) => {
      const openai = new OpenAI({
        apiKey: "sk-persist",
        baseURL: `${gatewayUrl}/v1`,
        maxRetries: 0,
      });
      const { response } = await openai.chat.completions
        .create(
          request as Parameters<typeof openai.chat.completions.create>[0] & { stream?: false },
        )
        .withResponse();
      return response.headers.get("x-infercache");
    };
    for (const expected of ["miss", "hit"]) {
      const store = new SqliteStore({ path });
      const instance = createGateway({ upstream: upstream.baseURL, store });
      try {
        expect(await ask(await instance.listen())).toBe(expected);
      } finally {
        await instance.close();
        await store.close();
      }
    }
  });
});

describe("sessions belong to their tenant", () => {
  const openSession = async (id: string, authorization: string) => {
    const controller = new AbortController();
    const response = await fetch(`${url}/session/events`, {
      headers: { "x-session-id": id, authorization },
      signal: controller.signal,
    });
    const reader = (response.body as ReadableStream<Uint8Array>).getReader();
    await reader.read();
    return { close: () => controller.abort() };
  };
  const inSession = (id: string, authorization: string, payload: unknown) =>
    post(payload, { "x-session-id": id, authorization });
  const until = async (condition: () => Promise<boolean>) => {
    const deadline = Date.now() + 5000;
    while (!(await condition())) {
      if (Date.now() > deadline) throw new Error("condition not met within 5 s");
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  };

  it("another tenant's stream with the same session id neither sees nor ends it", async () => {
    const id = `shared-id-${++unique}`;
    const payload = body();
    const mine = await openSession(id, "Bearer sk-mine");
    expect((await inSession(id, "Bearer sk-mine", payload)).outcome).toBe("miss");
    expect((await inSession(id, "Bearer sk-theirs", payload)).outcome).toBe("miss");
    const theirs = await openSession(id, "Bearer sk-theirs");
    theirs.close();
    // Theirs ended (their entry goes); mine is untouched.
    await until(async () => (await inSession(id, "Bearer sk-theirs", payload)).outcome === "miss");
    expect((await inSession(id, "Bearer sk-mine", payload)).outcome).toBe("hit");
    mine.close();
  });

  it("with two streams open (two tabs), the session ends when the last one closes", async () => {
    const id = `two-tabs-${++unique}`;
    const payload = body();
    const first = await openSession(id, "Bearer sk-tabs");
    const second = await openSession(id, "Bearer sk-tabs");
    expect((await inSession(id, "Bearer sk-tabs", payload)).outcome).toBe("miss");
    first.close();
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect((await inSession(id, "Bearer sk-tabs", payload)).outcome).toBe("hit");
    second.close();
    await until(async () => {
      const outcome = (await inSession(id, "Bearer sk-tabs", payload)).outcome;
      return outcome === "miss";
    });
  });
});

describe("infercache headers are validated", () => {
  it("x-infercache-sampling: bucket=N is bounded, and a huge N is refused at once", async () => {
    const sampled = { ...body(), temperature: 0.9 };
    const started = performance.now();
    const huge = await post(sampled, { "x-infercache-sampling": "bucket=100000000" });
    expect(huge.status).toBe(400);
    expect(performance.now() - started).toBeLessThan(5000);
    expect(JSON.stringify(huge.json)).toMatch(/bucket=N.*1 to 16/);
    expect((await post(sampled, { "x-infercache-sampling": "bucket=17" })).status).toBe(400);
    expect((await post(sampled, { "x-infercache-sampling": "bucket=16" })).status).toBe(200);
    expect((await post(sampled, { "x-infercache-sampling": "sometimes" })).status).toBe(400);
  });

  it("x-infercache-namespace and x-session-id take bounded, printable values", async () => {
    expect((await post(body(), { "x-infercache-namespace": "a".repeat(129) })).status).toBe(400);
    expect((await post(body(), { "x-infercache-namespace": "team a" })).status).toBe(400);
    expect((await post(body(), { "x-infercache-namespace": "team-a" })).status).toBe(200);
    expect((await post(body(), { "x-session-id": "s".repeat(200) })).status).toBe(400);
    expect((await post(body(), { "x-session-id": "tab-1" })).status).toBe(200);
    const events = await fetch(`${url}/session/events`, {
      headers: { "x-session-id": "x".repeat(500) },
    });
    expect(events.status).toBe(400);
  });
});

describe("the dashboard feed", () => {
  it("anonymous viewers get aggregates only; the admin feed has requests with model names cut short", async () => {
    const long = "m".repeat(100_000);
    const admin = new AbortController();
    const adminEvents = await fetch(`${url}/admin/events`, {
      headers: { authorization: `Bearer ${ADMIN}` },
      signal: admin.signal,
    });
    const anonymous = new AbortController();
    const anonymousEvents = await fetch(`${url}/events`, { signal: anonymous.signal });
    await post({ ...body(), model: long }, { authorization: "Bearer sk-dash" });
    const read = async (response: Response, until: (text: string) => boolean) => {
      const reader = (response.body as ReadableStream<Uint8Array>).getReader();
      let text = "";
      const deadline = Date.now() + 3000;
      while (!until(text) && Date.now() < deadline) {
        const next = await reader.read();
        if (next.done) break;
        text += new TextDecoder().decode(next.value);
      }
      return text;
    };
    const adminText = await read(adminEvents, (text) => text.includes("event: request"));
    const request = adminText.split("event: request\ndata: ")[1]?.split("\n")[0] as string;
    expect((JSON.parse(request) as { model: string }).model.length).toBeLessThanOrEqual(64);
    expect(adminText.length).toBeLessThan(20_000);
    const anonymousText = await read(anonymousEvents, (text) => text.includes("event: stats"));
    expect(anonymousText).not.toContain("event: request");
    expect(anonymousText).not.toMatch(/"key":/);
    expect(anonymousText).not.toContain("mmmm");
    admin.abort();
    anonymous.abort();
  });

  it("viewers are bounded: past the limit a viewer gets 503, and a closed one frees its place", async () => {
    const small = createGateway({ upstream: upstream.baseURL, store: new MemoryStore() });
    const smallUrl = await small.listen();
    try {
      const open: AbortController[] = [];
      for (let i = 0; i < 16; i++) {
        const controller = new AbortController();
        const response = await fetch(`${smallUrl}/events`, { signal: controller.signal });
        expect(response.status).toBe(200);
        open.push(controller);
      }
      const refused = await fetch(`${smallUrl}/events`);
      expect(refused.status).toBe(503);
      open.pop()?.abort();
      const deadline = Date.now() + 3000;
      let again = await fetch(`${smallUrl}/events`);
      while (again.status !== 200 && Date.now() < deadline) {
        await new Promise((resolve) => setTimeout(resolve, 20));
        again = await fetch(`${smallUrl}/events`);
      }
      expect(again.status).toBe(200);
      await again.body?.cancel();
      for (const controller of open) controller.abort();
    } finally {
      await small.close();
    }
  });
});

describe("/healthz", () => {
  it("reports a degraded store instead of ok", async () => {
    let health: StoreHealth = { state: "ok" };
    // A store that reports what the test says (RedisStore's own health is tested with Redis).
    class WatchedStore extends MemoryStore {
      health(): StoreHealth {
        return health;
      }
    }
    const store: Store = new WatchedStore();
    const watched = createGateway({ upstream: upstream.baseURL, store });
    const watchedUrl = await watched.listen();
    try {
      expect(await (await fetch(`${watchedUrl}/healthz`)).json()).toEqual({ status: "ok" });
      health = { state: "degraded", reason: "Redis at 127.0.0.1:1 is unreachable", since: 5 };
      expect(await (await fetch(`${watchedUrl}/healthz`)).json()).toEqual({
        status: "degraded",
        store: { reason: "Redis at 127.0.0.1:1 is unreachable", since: 5 },
      });
      const metrics = await (await fetch(`${watchedUrl}/metrics`)).text();
      expect(metrics).toContain("infercache_store_degraded 1");
    } finally {
      await watched.close();
    }
  });
});
