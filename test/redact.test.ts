/**
 * The `redact` and `noStore` hooks. Redaction changes the key as designed: inputs that redact
 * alike share one entry, and what computes (the function, the model behind the gateway) sees the
 * redacted input, so a shared entry is the answer to exactly what its key says. `noStore` stores
 * nothing on any store and still answers (the gateway says `bypass`). A hook that throws fails
 * the call with `HookError`, naming the hook and never its input, and nothing is computed,
 * sent or stored.
 */
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import OpenAI from "openai";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { HookError } from "../src/base/hook-error.js";
import { loadHooks } from "../src/cli/shared.js";
import { Cache, type CallStatus, cache, MemoryStore, TieredStore } from "../src/index.js";
import { cachingFetch } from "../src/llm.js";
import { RedisStore } from "../src/redis.js";
import { createGateway, type Gateway } from "../src/server.js";
import { SqliteStore } from "../src/sqlite.js";
import { SealedStore } from "../src/store/sealed.js";
import type { Store } from "../src/store/store.js";
import { runCli } from "./helpers/cli.js";
import { type FakeUpstream, startFakeUpstream } from "./helpers/fake-upstream.js";
import { RedisServer } from "./helpers/redis-server.js";

const dir = mkdtempSync(join(tmpdir(), "infercache-redact-"));
const EMAIL = /[\w.+-]+@[\w-]+\.[\w.]+/g;
const redactText = (text: string) => text.replace(EMAIL, "[EMAIL]");

let redis: RedisServer;
let upstream: FakeUpstream;
beforeAll(async () => {
  redis = await RedisServer.start();
  upstream = await startFakeUpstream();
});
afterAll(async () => {
  await upstream?.close();
  await redis?.kill();
  rmSync(dir, { recursive: true, force: true });
});

let stores = 0;
const STORES: [string, () => Store][] = [
  ["memory", () => new MemoryStore()],
  ["sqlite", () => new SqliteStore({ path: join(dir, `s${++stores}.db`) })],
  ["redis", () => new RedisStore({ url: redis.url })],
  [
    "sealed sqlite",
    () =>
      new SealedStore(new SqliteStore({ path: join(dir, `sealed${++stores}.db`) }), {
        keys: randomBytes(32).toString("base64"),
      }),
  ],
  ["tiered redis", () => new TieredStore({ store: new RedisStore({ url: redis.url }) })],
];

describe("redact changes the key as designed", () => {
  it("cache(fn): inputs that redact alike share one entry, computed from the redacted input", async () => {
    const seen: string[] = [];
    const summarize = cache(
      async (text: string) => {
        seen.push(text);
        return `summary of ${text}`;
      },
      {
        store: new SqliteStore({ path: join(dir, "redact-fn.db") }),
        namespace: "summaries",
        redact: (text: string) => [redactText(text)],
      },
    );
    expect(await summarize("mail alice@example.com about the invoice")).toBe(
      "summary of mail [EMAIL] about the invoice",
    );
    expect(await summarize("mail bob@example.org about the invoice")).toBe(
      "summary of mail [EMAIL] about the invoice",
    );
    expect(seen).toEqual(["mail [EMAIL] about the invoice"]);
    // Other text, another key.
    await summarize("mail bob@example.org about the refund");
    expect(seen).toHaveLength(2);
    expect(summarize.cache.key("x")).toBe(summarize.cache.key("x"));
    await summarize.cache.store.close();
  });

  it("Cache: the redacted key is what is stored, listed and looked up", async () => {
    const notes = new Cache<{ note: string }>({ redact: (key) => redactText(String(key)) });
    await notes.set("carol@example.com's order", { note: "shipped" });
    expect(await notes.get("dave@example.net's order")).toEqual({ note: "shipped" });
    expect(await notes.has("someone@else.io's order")).toBe(true);
    const keys: unknown[] = [];
    for await (const key of notes.keys()) keys.push(key);
    expect(keys).toEqual(["[EMAIL]'s order"]);
  });

  it("cachingFetch: the upstream gets the redacted body, and the second user's request is a hit", async () => {
    const fetch = cachingFetch({
      fetch: globalThis.fetch,
      redact: (request) => {
        const body = request.body as { messages: { content: string }[] };
        return {
          ...body,
          messages: body.messages.map((m) => ({ ...m, content: redactText(m.content) })),
        };
      },
    });
    const client = new OpenAI({
      baseURL: upstream.baseURL,
      apiKey: "sk-test",
      fetch,
      maxRetries: 0,
    });
    const before = upstream.received.length;
    const ask = (who: string) =>
      client.chat.completions
        .create({
          model: "fake",
          temperature: 0,
          messages: [{ role: "user", content: `reset the password of ${who} (redact-fetch)` }],
        })
        .withResponse();
    const first = await ask("erin@example.com");
    expect(first.response.headers.get("x-infercache")).toBe("miss");
    expect(first.data.choices[0]?.message.content).toBe(
      "echo: reset the password of [EMAIL] (redact-fetch)",
    );
    const second = await ask("frank@example.com");
    expect(second.response.headers.get("x-infercache")).toBe("hit");
    const sent = upstream.received.slice(before);
    expect(sent).toHaveLength(1);
    expect(sent[0]?.body).not.toContain("@example.com");
  });
});

describe("noStore stores nothing, on every store", () => {
  for (const [name, make] of STORES) {
    it(`${name}: cache(fn) and Cache still answer, and the store stays empty`, async () => {
      const store = make();
      const namespace = `nostore-${stores}-${name.replace(/\W/g, "")}`;
      let calls = 0;
      const answer = cache(
        async (text: string) => {
          calls++;
          return `answer ${calls} to ${text}`;
        },
        { store, namespace, noStore: (text: string) => text.includes("SSN") },
      );
      expect(await answer("my SSN is 078-05-1120")).toBe("answer 1 to my SSN is 078-05-1120");
      expect(await answer("my SSN is 078-05-1120")).toBe("answer 2 to my SSN is 078-05-1120");
      const status: CallStatus = {};
      await answer.cache.with({ status })("my SSN is 078-05-1120");
      expect(calls).toBe(3);
      expect(status.source).toBe("miss");
      const manual = new Cache<{ v: number }>({
        store,
        namespace: `${namespace}-manual`,
        noStore: (key) => String(key).includes("SSN"),
      });
      expect(await manual.set("SSN 078-05-1120", { v: 1 })).toBe(false);
      expect(await manual.getOrSet("SSN 078-05-1120", () => ({ v: 2 }))).toEqual({ v: 2 });
      expect(await manual.get("SSN 078-05-1120")).toBeUndefined();
      expect(await store.size({ namespace })).toBe(0);
      expect(await store.size({ namespace: `${namespace}-manual` })).toBe(0);
      // Calls the hook lets through are cached as ever.
      await answer("the weather");
      await answer("the weather");
      expect(calls).toBe(4);
      expect(await store.size({ namespace })).toBe(1);
      await store.close();
    });
  }

  it("a sync function on a MemoryStore stays sync, bypassed or not", () => {
    let calls = 0;
    const double = cache(
      (n: number) => {
        calls++;
        return n * 2;
      },
      { noStore: (n: number) => n < 0 },
    );
    expect(double(-2)).toBe(-4);
    expect(double(-2)).toBe(-4);
    expect(double(3)).toBe(6);
    expect(double(3)).toBe(6);
    expect(calls).toBe(3);
  });
});

describe("a hook that throws fails the call clearly, without storing", () => {
  it("cache(fn): HookError names the hook and the error's class, never its message", async () => {
    const store = new SqliteStore({ path: join(dir, "throws.db") });
    let calls = 0;
    const f = cache(
      async (text: string) => {
        calls++;
        return text;
      },
      {
        store,
        namespace: "throws",
        redact: (text: string) => {
          throw new Error(`cannot parse ${text}`);
        },
      },
    );
    const error = await f("secret-input-9f3").then(
      () => undefined,
      (caught: unknown) => caught as HookError,
    );
    expect(error).toBeInstanceOf(HookError);
    expect(error?.hook).toBe("redact");
    expect(error?.message).toBe(
      "infercache: the `redact` hook threw (Error); nothing was computed or stored (the hook's own message is in `cause`)",
    );
    expect(error?.message).not.toContain("secret-input");
    expect(calls).toBe(0);
    expect(await store.size()).toBe(0);
    const sync = cache((n: number) => n, {
      noStore: () => {
        throw new TypeError("no");
      },
    });
    expect(() => sync(1)).toThrow(/the `noStore` hook threw \(TypeError\)/);
    const wrongType = cache(async (n: number) => n, {
      store,
      namespace: "throws",
      redact: (() => "not a list") as unknown as (n: number) => unknown[],
    });
    await expect(wrongType(1)).rejects.toThrow(
      /the `redact` hook returned string, not the argument list \(an array\)/,
    );
    await store.close();
  });

  it("Cache and cachingFetch: the call rejects, nothing reaches the upstream", async () => {
    const manual = new Cache({
      noStore: () => {
        throw new RangeError("x");
      },
    });
    await expect(manual.set("k", { a: 1 })).rejects.toThrow(
      /the `noStore` hook threw \(RangeError\)/,
    );
    const before = upstream.received.length;
    const fetch = cachingFetch({
      fetch: globalThis.fetch,
      redact: () => {
        throw new Error("bad body");
      },
    });
    await expect(
      fetch(`${upstream.baseURL}/chat/completions`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ model: "fake", messages: [{ role: "user", content: "hi" }] }),
      }),
    ).rejects.toThrow(HookError);
    expect(upstream.received.length).toBe(before);
    expect(await fetch.cache.store.size()).toBe(0);
  });
});

describe("the gateway's hooks (--hooks FILE)", () => {
  let gateway: Gateway;
  let client: OpenAI;
  let store: SqliteStore;
  beforeAll(async () => {
    const file = join(dir, "hooks.mjs");
    writeFileSync(
      file,
      `const EMAIL = /[\\w.+-]+@[\\w-]+\\.[\\w.]+/g;
export function redact(request) {
  const body = request.body;
  if (body?.messages === undefined) return body;
  return { ...body, messages: body.messages.map((m) => ({ ...m, content: typeof m.content === "string" ? m.content.replace(EMAIL, "[EMAIL]") : m.content })) };
}
export function noStore(request) {
  if (JSON.stringify(request.body).includes("THROW")) throw new Error("hook failure with THROW inside");
  return request.headers["x-private"] === "1";
}
`,
    );
    const hooks = await loadHooks({ hooks: file });
    store = new SqliteStore({ path: join(dir, "gateway.db") });
    gateway = createGateway({
      upstream: upstream.baseURL,
      store,
      ...hooks,
      logger: { warn: () => {} },
    });
    client = new OpenAI({
      baseURL: `${await gateway.listen()}/v1`,
      apiKey: "sk-test",
      maxRetries: 0,
    });
  });
  afterAll(async () => {
    await gateway?.close();
    await store?.close();
  });

  const ask = (content: string, headers: Record<string, string> = {}) =>
    client.chat.completions
      .create({ model: "fake", temperature: 0, messages: [{ role: "user", content }] }, { headers })
      .withResponse();

  it("redacts before keying and sending; noStore answers as a bypass and stores nothing", async () => {
    const first = await ask("invite gina@example.com (gateway)");
    expect(first.response.headers.get("x-infercache")).toBe("miss");
    expect(first.data.choices[0]?.message.content).toBe("echo: invite [EMAIL] (gateway)");
    const second = await ask("invite hal@example.com (gateway)");
    expect(second.response.headers.get("x-infercache")).toBe("hit");
    const entries = await store.size();
    const bypassed = await ask("a private question (gateway)", { "x-private": "1" });
    expect(bypassed.response.headers.get("x-infercache")).toBe("bypass");
    expect(bypassed.data.choices[0]?.message.content).toBe("echo: a private question (gateway)");
    const again = await ask("a private question (gateway)", { "x-private": "1" });
    expect(again.response.headers.get("x-infercache")).toBe("bypass");
    expect(await store.size()).toBe(entries);
  });

  it("a hook that throws is a 500 naming the hook, and nothing reaches the upstream", async () => {
    const before = upstream.received.length;
    const failed = await ask("THROW this").then(
      () => undefined,
      (error: unknown) => error as { status?: number; message: string },
    );
    expect(failed?.status).toBe(500);
    expect(failed?.message).toMatch(/the `noStore` hook threw \(Error\)/);
    expect(failed?.message).not.toContain("THROW");
    expect(upstream.received.length).toBe(before);
  });

  it("serve refuses a hooks file that is missing or exports neither hook", async () => {
    const none = join(dir, "none.mjs");
    writeFileSync(none, "export const other = 1;\n");
    const base = ["serve", "--upstream", upstream.baseURL, "--store", "memory", "--port", "0"];
    const empty = await runCli([...base, "--hooks", none]);
    expect(empty.code).toBe(2);
    expect(empty.err).toMatch(/exports neither `redact` nor `noStore`/);
    const missing = await runCli([...base, "--hooks", join(dir, "nope.mjs")]);
    expect(missing.code).toBe(2);
    expect(missing.err).toMatch(/--hooks: no file at/);
  });
});
