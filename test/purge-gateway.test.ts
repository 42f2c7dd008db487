/**
 * Purge through the gateway: `x-infercache-tags` on a request (checked, never sent upstream,
 * never keyed) and the automatic `model:`, `upstream:` and `tenant:` tags, purged by each field
 * of `POST /admin/purge` (AND), with the real OpenAI SDK as the client and loopback upstreams.
 */
import OpenAI from "openai";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createGateway, type Gateway } from "../src/server.js";
import { MemoryStore } from "../src/store/memory.js";
import { FakeClock } from "./helpers/fake-clock.js";
import { type FakeUpstream, startFakeUpstream } from "./helpers/fake-upstream.js";

const ADMIN = "admin-token-for-purge";
const clock = new FakeClock(Date.now());
let first: FakeUpstream;
let second: FakeUpstream;
let one: Gateway;
let two: Gateway;
let urlOne: string;
let urlTwo: string;
const store = new MemoryStore({ maxSize: 0, clock });

beforeAll(async () => {
  first = await startFakeUpstream();
  second = await startFakeUpstream();
  // Two gateways on one store and namespace, each in front of its own upstream.
  one = createGateway({ upstream: first.baseURL, store, adminToken: ADMIN, clock });
  two = createGateway({ upstream: second.baseURL, store, adminToken: ADMIN, clock });
  urlOne = await one.listen();
  urlTwo = await two.listen();
});
afterAll(async () => {
  await one?.close();
  await two?.close();
  await first?.close();
  await second?.close();
});

const client = (url: string, apiKey = "sk-one") =>
  new OpenAI({ apiKey, baseURL: `${url}/v1`, maxRetries: 0 });

let unique = 0;
async function ask(
  options: { url?: string; apiKey?: string; model?: string; content?: string; tags?: string } = {},
): Promise<{ outcome: string | null; content: string }> {
  const content = options.content ?? `question ${++unique}`;
  const { response } = await client(options.url ?? urlOne, options.apiKey)
    .chat.completions.create(
      { model: options.model ?? "fake", messages: [{ role: "user", content }], temperature: 0 },
      options.tags === undefined ? {} : { headers: { "x-infercache-tags": options.tags } },
    )
    .withResponse();
  return { outcome: response.headers.get("x-infercache"), content };
}

interface PurgeReply {
  removed?: number;
  error?: { message: string };
}

async function purge(body: unknown, url = urlOne): Promise<{ status: number; json: PurgeReply }> {
  const response = await fetch(`${url}/admin/purge`, {
    method: "POST",
    headers: { authorization: `Bearer ${ADMIN}`, "content-type": "application/json" },
    body: JSON.stringify(body),
  });
  return { status: response.status, json: (await response.json()) as PurgeReply };
}

describe("x-infercache-tags", () => {
  it("stores the tags without sending them upstream or keying on them, and purges by them", async () => {
    const tagged = await ask({ tags: "docs-v1, team:search" });
    expect(tagged.outcome).toBe("miss");
    const sent = first.received.at(-1);
    expect(sent?.headers["x-infercache-tags"]).toBeUndefined();
    // Other tags, same request: the same key, a hit.
    expect((await ask({ content: tagged.content, tags: "other" })).outcome).toBe("hit");
    const kept = await ask();
    expect(await purge({ tag: "team:search" })).toEqual({ status: 200, json: { removed: 1 } });
    expect((await ask({ content: tagged.content })).outcome).toBe("miss");
    expect((await ask({ content: kept.content })).outcome).toBe("hit");
    expect((await purge({ tag: ["nothing", "docs-v1"] })).json).toEqual({ removed: 0 });
  });

  it("refuses a bad tag with a 400 naming the header, before any upstream call", async () => {
    const before = first.count("/v1/chat/completions");
    const error = await ask({ tags: "ok,has space" }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(OpenAI.APIError);
    expect((error as InstanceType<typeof OpenAI.APIError>).status).toBe(400);
    expect((error as Error).message).toMatch(/x-infercache-tags/);
    expect(first.count("/v1/chat/completions")).toBe(before);
  });
});

describe("POST /admin/purge by the automatic tags", () => {
  it("by model", async () => {
    const a = await ask({ model: "model-a" });
    const b = await ask({ model: "model-b" });
    expect((await purge({ model: "model-a" })).json).toEqual({ removed: 1 });
    expect((await ask({ model: "model-a", content: a.content })).outcome).toBe("miss");
    expect((await ask({ model: "model-b", content: b.content })).outcome).toBe("hit");
  });

  it("by upstream: only the answers that came from that origin", async () => {
    const fromOne = await ask({ url: urlOne });
    const fromTwo = await ask({ url: urlTwo });
    const origin = new URL(second.baseURL).origin;
    expect((await purge({ upstream: `${origin}/v1` })).json).toEqual({ removed: 1 });
    expect((await ask({ url: urlTwo, content: fromTwo.content })).outcome).toBe("miss");
    expect((await ask({ url: urlOne, content: fromOne.content })).outcome).toBe("hit");
  });

  it("by tenant, as the admin feed shows it, and by tenant AND model", async () => {
    const controller = new AbortController();
    const feed = await fetch(`${urlOne}/admin/events`, {
      headers: { authorization: `Bearer ${ADMIN}` },
      signal: controller.signal,
    });
    const mine = await ask({ apiKey: "sk-tenant-x", model: "m1" });
    const mineOther = await ask({ apiKey: "sk-tenant-x", model: "m2" });
    const theirs = await ask({ apiKey: "sk-tenant-y", model: "m1" });
    const reader = (feed.body as ReadableStream<Uint8Array>).getReader();
    let text = "";
    while ((text.match(/event: request/g) ?? []).length < 3) {
      const next = await reader.read();
      if (next.done) break;
      text += new TextDecoder().decode(next.value);
    }
    controller.abort();
    const rows = text
      .split("event: request\ndata: ")
      .slice(1)
      .map((part) => JSON.parse(part.split("\n")[0] as string) as { tenant: string });
    const tenantX = rows[0]?.tenant as string;
    expect(tenantX).toMatch(/^[0-9a-f]{32}$/);
    expect(rows[2]?.tenant).not.toBe(tenantX);
    expect((await purge({ tenant: tenantX, model: "m2" })).json).toEqual({ removed: 1 });
    expect(
      (await ask({ apiKey: "sk-tenant-x", model: "m2", content: mineOther.content })).outcome,
    ).toBe("miss");
    expect((await purge({ tenant: tenantX })).json).toEqual({ removed: 2 });
    expect((await ask({ apiKey: "sk-tenant-x", model: "m1", content: mine.content })).outcome).toBe(
      "miss",
    );
    expect(
      (await ask({ apiKey: "sk-tenant-y", model: "m1", content: theirs.content })).outcome,
    ).toBe("hit");
  });

  it("by age: seconds or a duration, on the gateway's clock, with AND on the other fields", async () => {
    await store.clear();
    const old = await ask({ model: "aged" });
    const oldOther = await ask({ model: "kept" });
    clock.advance(2 * 3600_000);
    const recent = await ask({ model: "aged" });
    expect((await purge({ olderThan: "1h", model: "aged" })).json).toEqual({ removed: 1 });
    expect((await ask({ model: "kept", content: oldOther.content })).outcome).toBe("hit");
    expect((await purge({ olderThan: 3600 })).json).toEqual({ removed: 1 });
    expect((await ask({ model: "aged", content: old.content })).outcome).toBe("miss");
    expect((await ask({ model: "aged", content: recent.content })).outcome).toBe("hit");
  });

  it("refuses bad fields with a 400 that names them; an empty body still clears the namespace", async () => {
    expect((await purge({ olderThan: "soon" })).status).toBe(400);
    expect((await purge({ olderThan: "soon" })).json.error?.message).toMatch(/olderThan/);
    expect((await purge({ tag: "a b" })).json.error?.message).toMatch(/`tag`/);
    expect((await purge({ upstream: "not a url" })).json.error?.message).toMatch(/upstream/);
    expect((await purge({ model: 3 })).json.error?.message).toMatch(/`model`/);
    await ask();
    const cleared = await purge({});
    expect(cleared.status).toBe(200);
    expect(cleared.json.removed).toBeGreaterThan(0);
  });
});
