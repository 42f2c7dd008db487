/**
 * `infercache purge` with filters: on a real SQLite file (tag, model, upstream, tenant, age,
 * combined with AND), and against a running gateway's admin API (`--url`), which also drops
 * what its memory tier holds.
 */
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { autoTag } from "../src/llm/entry-tags.js";
import { createGateway, type Gateway } from "../src/server.js";
import { SqliteStore } from "../src/sqlite.js";
import { runCli } from "./helpers/cli.js";
import { type FakeUpstream, startFakeUpstream } from "./helpers/fake-upstream.js";

const dir = mkdtempSync(join(tmpdir(), "infercache-purge-cli-"));
let files = 0;

async function seeded(): Promise<string> {
  const path = join(dir, `c${++files}.db`);
  const store = new SqliteStore({ path });
  const now = Date.now();
  const day = 86_400_000;
  const put = (key: string, tags: string[], ageDays = 0, namespace = "gateway") =>
    store.set(key, { namespace }, { value: key, createdAt: now - ageDays * day, tags });
  await put("a", ["docs-v1", autoTag("model", "gpt-x"), autoTag("tenant", "t1")]);
  await put("b", [autoTag("model", "gpt-x"), autoTag("tenant", "t2")], 10);
  await put("c", [autoTag("model", "gpt-y"), autoTag("upstream", "http://127.0.0.1:9")], 10);
  await put("d", ["docs-v1"], 0, "other");
  await store.close();
  return path;
}

async function keysOf(path: string, namespace = "gateway"): Promise<string[]> {
  const store = new SqliteStore({ path });
  const keys: string[] = [];
  for await (const [key] of store.entries({ namespace })) keys.push(key);
  await store.close();
  return keys.sort();
}

describe("infercache purge on a SQLite file", () => {
  it("--tag, in the gateway namespace unless --all", async () => {
    const path = await seeded();
    const store = `sqlite:${path}`;
    expect(await runCli(["purge", "--store", store, "--tag", "docs-v1"])).toMatchObject({
      code: 0,
      out: "removed 1 matching entries from namespace gateway\n",
    });
    expect(await keysOf(path, "other")).toEqual(["d"]);
    expect(await runCli(["purge", "--store", store, "--all", "--tag", "docs-v1"])).toMatchObject({
      code: 0,
      out: "removed 1 matching entries from every namespace\n",
    });
    expect(await keysOf(path, "other")).toEqual([]);
  });

  it("--model, --tenant, --upstream and --older-than, combined with AND", async () => {
    const path = await seeded();
    const store = `sqlite:${path}`;
    const run = (...args: string[]) => runCli(["purge", "--store", store, ...args]);
    expect((await run("--model", "gpt-x", "--older-than", "7d")).out).toMatch(/removed 1 /);
    expect(await keysOf(path)).toEqual(["a", "c"]);
    expect((await run("--model", "gpt-x", "--tenant", "t2")).out).toMatch(/removed 0 /);
    expect((await run("--upstream", "http://127.0.0.1:9/v1")).out).toMatch(/removed 1 /);
    expect((await run("--tenant", "t1")).out).toMatch(/removed 1 /);
    expect(await keysOf(path)).toEqual([]);
  });

  it("refuses a bad filter with exit 2 and the flag's name", async () => {
    const path = await seeded();
    const result = await runCli(["purge", "--store", `sqlite:${path}`, "--older-than", "soon"]);
    expect(result.code).toBe(2);
    expect(result.err).toMatch(/--older-than/);
    const tag = await runCli(["purge", "--store", `sqlite:${path}`, "--tag", "a,b"]);
    expect(tag.code).toBe(2);
    expect(tag.err).toMatch(/--tag/);
    expect(await keysOf(path)).toEqual(["a", "b", "c"]);
  });
});

describe("infercache purge --url", () => {
  let upstream: FakeUpstream;
  let gateway: Gateway;
  let url: string;
  beforeAll(async () => {
    upstream = await startFakeUpstream();
    gateway = createGateway({
      upstream: upstream.baseURL,
      store: new SqliteStore({ path: join(dir, "gateway.db") }),
      adminToken: "cli-admin",
    });
    url = await gateway.listen();
  });
  afterAll(async () => {
    await gateway?.close();
    await upstream?.close();
  });

  const ask = async (model: string) => {
    const response = await fetch(`${url}/v1/chat/completions`, {
      method: "POST",
      headers: { "content-type": "application/json", authorization: "Bearer sk-cli" },
      body: JSON.stringify({ model, messages: [{ role: "user", content: "hi" }], temperature: 0 }),
    });
    await response.text();
    return response.headers.get("x-infercache");
  };

  it("purges through the admin API, by model", async () => {
    expect(await ask("m-one")).toBe("miss");
    expect(await ask("m-two")).toBe("miss");
    const result = await runCli([
      "purge",
      "--url",
      url,
      "--admin-token",
      "cli-admin",
      "--model",
      "m-one",
    ]);
    expect(result).toMatchObject({
      code: 0,
      out: "removed 1 matching entries from namespace gateway\n",
    });
    expect(await ask("m-one")).toBe("miss");
    expect(await ask("m-two")).toBe("hit");
    const refused = await runCli(["purge", "--url", url, "--admin-token", "wrong", "--model", "x"]);
    expect(refused.code).toBe(1);
  });
});
