/**
 * Regression tests for what a hostile run against the gateway found (each named after what
 * broke): paths that left the upstream's base, credentials and answer-changing headers the key
 * did not see, numbers JSON.parse merges, an empty admin token, and unbounded inputs.
 */
import { request as httpRequest, type ServerResponse } from "node:http";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { createGateway, type Gateway } from "../src/server.js";
import { MemoryStore } from "../src/store/memory.js";
import { FakeClock } from "./helpers/fake-clock.js";
import {
  chatCompletion,
  type FakeUpstream,
  type Received,
  startFakeUpstream,
} from "./helpers/fake-upstream.js";

let upstream: FakeUpstream;
let gateway: Gateway;
let url: string;
const ADMIN = "hostile-admin-token";
const clock = new FakeClock();

beforeAll(async () => {
  upstream = await startFakeUpstream();
  gateway = createGateway({
    upstream: upstream.baseURL,
    store: new MemoryStore({ maxSize: 0, clock }),
    clock,
    ttl: 60_000,
    adminToken: ADMIN,
  });
  url = await gateway.listen();
});
afterAll(async () => {
  await gateway?.close();
  await upstream?.close();
});
beforeEach(() => {
  upstream.respond = undefined;
});

let unique = 0;
const chat = () => ({
  model: "fake",
  messages: [{ role: "user", content: `hostile ${++unique}` }],
  temperature: 0,
});
async function post(
  body: unknown,
  headers: Record<string, string> = {},
  path = "/v1/chat/completions",
): Promise<{ status: number; outcome: string | null; text: string }> {
  const response = await fetch(`${url}${path}`, {
    method: "POST",
    headers: { "content-type": "application/json", ...headers },
    body: typeof body === "string" ? body : JSON.stringify(body),
  });
  return {
    status: response.status,
    outcome: response.headers.get("x-infercache"),
    text: await response.text(),
  };
}

/** A request sent byte for byte as given (fetch would normalise the path and refuse headers). */
function raw(path: string, headers: Record<string, string> = {}): Promise<number> {
  return new Promise((resolve, reject) => {
    const target = new URL(url);
    const call = httpRequest(
      {
        host: target.hostname,
        port: target.port,
        method: "POST",
        path,
        headers: { "content-type": "application/json", ...headers },
      },
      (response) => {
        response.resume();
        response.on("end", () => resolve(response.statusCode ?? 0));
      },
    );
    call.on("error", reject);
    call.end(JSON.stringify(chat()));
  });
}

describe("paths stay under the upstream's base", () => {
  for (const path of ["/v1/../api/pull", "/v1/%2e%2e/api/pull", "/v1/%2E%2E/%2e%2e/admin"]) {
    it(`${path} is refused and never reaches the upstream (it reached /api/pull)`, async () => {
      const before = upstream.received.length;
      expect(await raw(path)).toBe(400);
      expect(upstream.received.length).toBe(before);
    });
  }
});

describe("every credential and every answer-changing header is seen", () => {
  it("credential query parameters in another case are another tenant (?KEY=alice vs ?KEY=bob)", async () => {
    const body = chat();
    expect((await post(body, {}, "/v1/chat/completions?KEY=alice")).outcome).toBe("miss");
    expect((await post(body, {}, "/v1/chat/completions?KEY=bob")).outcome).toBe("miss");
    expect((await post(body, {}, "/v1/chat/completions?Api-Key=alice")).outcome).toBe("miss");
  });

  it("credential values cannot spell another set of credentials (NUL in a query value)", async () => {
    const body = chat();
    expect((await post(body, {}, "/v1/chat/completions?key=v1&key=v2")).outcome).toBe("miss");
    expect((await post(body, {}, "/v1/chat/completions?key=v1%00%3Fkey%00v2")).outcome).toBe(
      "miss",
    );
  });

  for (const [name, a, b] of [
    ["cookie", "auth=alice", "auth=bob"],
    ["ocp-apim-subscription-key", "a", "b"],
    ["x-auth-token", "a", "b"],
    ["x-portkey-provider", "openai", "anthropic"],
    ["x-some-header-nobody-knows", "1", "2"],
  ] as const) {
    it(`${name}: ${a} and ${b} never share an answer`, async () => {
      const body = chat();
      expect((await post(body, { [name]: a })).outcome).toBe("miss");
      expect((await post(body, { [name]: a })).outcome).toBe("hit");
      expect((await post(body, { [name]: b })).outcome).toBe("miss");
    });
  }

  it("headers that cannot change the answer do not split it (user-agent, x-stainless-*, tracing)", async () => {
    const body = chat();
    expect((await post(body, { "user-agent": "a", "x-stainless-os": "Linux" })).outcome).toBe(
      "miss",
    );
    expect(
      (await post(body, { "user-agent": "b", "x-stainless-os": "MacOS", traceparent: "00-1" }))
        .outcome,
    ).toBe("hit");
  });

  it("headers named in Connection are the connection's: never forwarded", async () => {
    await raw("/v1/chat/completions", {
      connection: "keep-alive, x-internal-hop",
      "x-internal-hop": "1",
    });
    expect(upstream.received.at(-1)?.headers["x-internal-hop"]).toBeUndefined();
  });
});

describe("numbers as the upstream reads them", () => {
  for (const [a, b] of [
    ["9007199254740993", "9007199254740992"],
    ["1.0", "1"],
    ["1e0", "1"],
  ] as const) {
    it(`${a} and ${b} never share a key (JSON.parse makes them one number)`, async () => {
      const content = `numbers ${++unique}`;
      const body = (seed: string) =>
        `{"model":"fake","temperature":0,"seed":${seed},"messages":[{"role":"user","content":"${content}"}]}`;
      expect((await post(body(a))).outcome).toBe("miss");
      expect((await post(body(b))).outcome).toBe("miss");
      expect((await post(body(a))).outcome).toBe("hit");
    });
  }
});

describe("the operator's bounds hold", () => {
  it("a client's s-maxage cannot keep an answer past the operator's ttl", async () => {
    const body = chat();
    await post(body, { "cache-control": "s-maxage=31536000" });
    clock.advance(61_000);
    expect((await post(body)).outcome).toBe("miss");
  });

  it("only-if-cached never reaches the upstream, also with no-cache, n > 1 or sampling bypass", async () => {
    const before = upstream.count("/chat/completions");
    for (const [headers, extra] of [
      [{ "cache-control": "only-if-cached, no-cache" }, {}],
      [{ "cache-control": "only-if-cached, max-age=0" }, {}],
      [{ "cache-control": "only-if-cached" }, { n: 2 }],
      [
        { "cache-control": "only-if-cached", "x-infercache-sampling": "bypass" },
        { temperature: 1 },
      ],
    ] as const) {
      expect((await post({ ...chat(), ...extra }, headers)).status).toBe(504);
    }
    expect(upstream.count("/chat/completions")).toBe(before);
  });

  it("an upstream answer marked Cache-Control: no-store (or private) is not stored", async () => {
    for (const directive of ["no-store", "private"]) {
      upstream.respond = (request: Received, response: ServerResponse) => {
        response.writeHead(200, { "content-type": "application/json", "cache-control": directive });
        response.end(JSON.stringify(chatCompletion(request)));
      };
      const body = chat();
      await post(body);
      expect((await post(body)).outcome).toBe("miss");
    }
  });

  it("an answer past the record bound is passed on whole and not stored", async () => {
    const small = createGateway({
      upstream: upstream.baseURL,
      store: new MemoryStore({ maxSize: 0 }),
    });

    const big = "x".repeat(40 * 1024 * 1024);
    upstream.respond = (request: Received, response: ServerResponse) => {
      const answer = chatCompletion(request);
      (answer.choices as { message: { content: string } }[])[0]!.message.content = big;
      response.writeHead(200, { "content-type": "application/json" });
      response.end(JSON.stringify(answer));
    };
    const smallUrl = await small.listen();
    try {
      const send = () =>
        fetch(`${smallUrl}/v1/chat/completions`, {
          method: "POST",
          headers: { "content-type": "application/json" },
          body: JSON.stringify({ ...chat(), messages: [{ role: "user", content: "big" }] }),
        });
      const first = await send();
      expect((await first.text()).length).toBeGreaterThan(big.length);
      const second = await send();
      expect(second.headers.get("x-infercache")).toBe("miss");
      await second.arrayBuffer();
    } finally {
      await small.close();
    }
  }, 60_000);

  it("an embeddings request with more inputs than the API takes goes upstream as it is, at once", async () => {
    const started = performance.now();
    const response = await post(
      { model: "fake", input: Array.from({ length: 100_000 }, () => "") },
      { "cache-control": "only-if-cached" },
      "/v1/embeddings",
    );
    expect(performance.now() - started).toBeLessThan(3000);
    expect(response.outcome).toBe("bypass");
  });

  it("a body nested millions deep is refused before it is parsed", async () => {
    const started = performance.now();
    const response = await post(`${"[".repeat(3_000_000)}${"]".repeat(3_000_000)}`);
    expect(response.status).toBe(400);
    expect(performance.now() - started).toBeLessThan(2000);
  });
});

describe("the admin API and the pages", () => {
  it("an empty admin token is refused at start (it opened the admin API to everyone)", () => {
    expect(() => createGateway({ upstream: upstream.baseURL, adminToken: "" })).toThrow(
      /at least 8 characters/,
    );
  });

  it("the token counts only as a Bearer token", async () => {
    const raw = await fetch(`${url}/admin/stats`, { headers: { authorization: ADMIN } });
    expect(raw.status).toBe(401);
    const bearer = await fetch(`${url}/admin/stats`, {
      headers: { authorization: `Bearer ${ADMIN}` },
    });
    expect(bearer.status).toBe(200);
  });

  it("a badly encoded entry key is a 400, not a 500", async () => {
    const response = await fetch(`${url}/admin/entries/%E0%A4%A`, {
      method: "DELETE",
      headers: { authorization: `Bearer ${ADMIN}` },
    });
    expect(response.status).toBe(400);
  });

  it("anonymous dashboard viewers cannot lock the admin out", async () => {
    const viewers: AbortController[] = [];
    try {
      for (let i = 0; i < 16; i++) {
        const controller = new AbortController();
        viewers.push(controller);
        await fetch(`${url}/events`, { signal: controller.signal });
      }
      expect((await fetch(`${url}/events`)).status).toBe(503);
      const admin = new AbortController();
      viewers.push(admin);
      const feed = await fetch(`${url}/admin/events`, {
        headers: { authorization: `Bearer ${ADMIN}` },
        signal: admin.signal,
      });
      expect(feed.status).toBe(200);
    } finally {
      for (const controller of viewers) controller.abort();
    }
  });

  it("a session id cannot inject cookie attributes", async () => {
    const response = await post(chat(), { "x-session-id": "abc;Domain=example.com" });
    expect(response.status).toBe(400);
  });

  it("with an allow-list, clients pick only its namespaces", async () => {
    const listed = createGateway({
      upstream: upstream.baseURL,
      store: new MemoryStore(),
      namespaces: ["team-a"],
    });
    const listedUrl = await listed.listen();
    try {
      const send = (namespace: string) =>
        fetch(`${listedUrl}/v1/chat/completions`, {
          method: "POST",
          headers: { "content-type": "application/json", "x-infercache-namespace": namespace },
          body: JSON.stringify(chat()),
        });
      expect((await send("team-a")).status).toBe(200);
      expect((await send("team-b")).status).toBe(400);
    } finally {
      await listed.close();
    }
  });

  it("a 404 does not echo the path", async () => {
    const response = await fetch(`${url}/sk-live-SECRET123`);
    expect(response.status).toBe(404);
    expect(await response.text()).not.toContain("SECRET123");
  });

  it("a web page on another origin cannot make the gateway spend (CSRF)", async () => {
    const before = upstream.received.length;
    const response = await fetch(`${url}/v1/chat/completions`, {
      method: "POST",
      headers: { "content-type": "text/plain", origin: "https://evil.example" },
      body: JSON.stringify(chat()),
    });
    expect(response.status).toBe(403);
    expect(upstream.received.length).toBe(before);
  });

  it("an upstream's own x-infercache headers are not passed on", async () => {
    upstream.respond = (_request: Received, response: ServerResponse) => {
      response.writeHead(200, { "content-type": "application/json", "x-infercache": "hit" });
      response.end("{}");
    };
    const response = await fetch(`${url}/v1/models`);
    expect(response.headers.get("x-infercache")).toBeNull();
    await response.arrayBuffer();
  });
});
