/**
 * The `infercache` command: warm (precompute a JSONL file through the real local engine), then
 * stats, export, purge and import on a real SQLite file, and `serve` answering the warmed
 * requests from the cache. Commands run in this process through `main` (stdout and stderr
 * captured), except `serve`, which runs as its own process.
 */
import { spawn } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import OpenAI from "openai";
import { afterAll, describe, expect, it } from "vitest";
import { createGateway } from "../src/server.js";
import { MemoryStore } from "../src/store/memory.js";
import { runCli, startServe } from "./helpers/cli.js";
import { MODEL_PATH } from "./helpers/llama-upstream.js";

const dir = mkdtempSync(join(tmpdir(), "infercache-cli-"));
const db = join(dir, "cache.db");
const store = `sqlite:${db}`;
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const run = runCli;

const chat = (content: string) => ({
  model: "tiny",
  messages: [{ role: "user", content }],
  temperature: 0,
  max_tokens: 6,
});

describe("infercache help and errors", () => {
  it("lists the commands and has --help for each", async () => {
    const top = await run(["--help"]);
    expect(top.code).toBe(0);
    for (const name of ["serve", "warm", "stats", "purge", "export", "import"]) {
      expect(top.out).toContain(name);
      const help = await run([name, "--help"]);
      expect(help.code).toBe(0);
      expect(help.out).toMatch(new RegExp(`^Usage: infercache ${name}`));
    }
  });

  it("runs through a bin symlink, as npx and npm link install it", async () => {
    const link = join(dir, "infercache");
    symlinkSync(fileURLToPath(new URL("../dist/cli/main.js", import.meta.url)), link);
    const child = spawn(process.execPath, [link, "--help"], { stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    child.stdout.on("data", (chunk: Buffer) => {
      out += chunk.toString();
    });
    expect(await new Promise((resolve) => child.once("exit", resolve))).toBe(0);
    expect(out).toMatch(/^Usage: infercache COMMAND/);
  });

  it("says what is wrong and what to pass", async () => {
    expect(await run(["frobnicate"])).toMatchObject({
      code: 2,
      err: expect.stringMatching(/Unknown command `frobnicate`/),
    });
    const unknown = await run(["stats", "--nope"]);
    expect(unknown.code).toBe(2);
    expect(unknown.err).toMatch(/Unknown option '--nope'[\s\S]*infercache stats --help/);
    const missing = await run(["stats", "--store", `sqlite:${join(dir, "absent.db")}`]);
    expect(missing).toMatchObject({ code: 2, err: expect.stringMatching(/no SQLite store at/) });
    expect(await run(["warm"])).toMatchObject({
      code: 2,
      err: expect.stringMatching(/warm needs a file of requests/),
    });
    expect(
      await run(["serve", "--upstream", "http://127.0.0.1:9/v1", "--max-queue", "5"]),
    ).toMatchObject({
      code: 2,
      err: expect.stringMatching(
        /--max-queue bounds the calls waiting for an upstream slot: pass --concurrency N too/,
      ),
    });
    expect(await run(["purge", "--store", "memcached://x"])).toMatchObject({
      code: 2,
      err: expect.stringMatching(
        /Expected --store to be sqlite:PATH, redis:\/\/HOST:PORT or memory/,
      ),
    });
  });
});

describe("warm, stats, export, purge, import and serve on one SQLite file", () => {
  const requests = join(dir, "requests.jsonl");
  const exported = join(dir, "export.jsonl");

  it("warms a file of requests, with a summary that counts repeats and bad lines", async () => {
    writeFileSync(
      requests,
      [
        JSON.stringify(chat("first example")),
        JSON.stringify(chat("second example")),
        JSON.stringify({
          path: "/v1/completions",
          body: { model: "tiny", prompt: "third", max_tokens: 4, temperature: 0 },
        }),
        JSON.stringify(chat("first example")),
        "{ not json",
        "",
      ].join("\n"),
    );
    const warm = await run([
      "warm",
      requests,
      "--model",
      MODEL_PATH,
      "--store",
      store,
      "--shared-cache",
    ]);
    expect(warm.out).toMatch(
      /warmed 5 requests in [\d.]+ s: 3 computed, 1 already cached, 1 failed/,
    );
    expect(warm.err).toMatch(/line 5: not JSON/);
    expect(warm.code).toBe(1);
  }, 60_000);

  it("reports what the store holds", async () => {
    const stats = await run(["stats", "--store", store]);
    expect(stats.code).toBe(0);
    expect(stats.out).toMatch(/sqlite store, namespace gateway: 3 entries \(0 in sessions\)/);
    const json = await run(["stats", "--store", store, "--json"]);
    expect(JSON.parse(json.out)).toMatchObject({
      store: "sqlite",
      namespace: "gateway",
      entries: 3,
    });
  });

  it("exports, purges and imports the entries back", async () => {
    const out = await run(["export", "--store", store, "--out", exported]);
    expect(out).toMatchObject({
      code: 0,
      err: expect.stringMatching(/exported 3 entries of namespace gateway/),
    });
    const lines = readFileSync(exported, "utf8").trim().split("\n");
    expect(lines).toHaveLength(3);
    for (const line of lines) {
      const parsed = JSON.parse(line) as { key: string; value: { body: string } };
      expect(parsed.key).toMatch(/^[0-9a-f]+/);
      expect(typeof parsed.value.body).toBe("string");
    }
    expect(await run(["purge", "--store", store])).toMatchObject({
      code: 0,
      out: expect.stringMatching(/removed 3 entries from namespace gateway/),
    });
    expect((await run(["stats", "--store", store])).out).toMatch(/: 0 entries/);
    writeFileSync(exported, `${lines.join("\n")}\n{"key":"x"}\n`);
    const imported = await run(["import", exported, "--store", store]);
    expect(imported.out).toMatch(/imported 3 entries, skipped 1/);
    expect(imported.err).toMatch(/line 4: "namespace" must be a non-empty string/);
    expect(imported.code).toBe(1);
    expect((await run(["stats", "--store", store])).out).toMatch(/: 3 entries/);
  });

  it("serves the warmed requests from the cache", async () => {
    const served = await startServe([
      "--model",
      MODEL_PATH,
      "--port",
      "0",
      "--store",
      store,
      "--shared-cache",
    ]);
    try {
      const url = served.url;
      const openai = new OpenAI({ apiKey: "any", baseURL: `${url}/v1`, maxRetries: 0 });
      const answer = await openai.chat.completions
        .create({
          ...chat("second example"),
          messages: [{ role: "user", content: "second example" }],
        })
        .withResponse();
      expect(answer.response.headers.get("x-infercache")).toBe("hit");
    } finally {
      await served.stop();
    }
  }, 60_000);
});

describe("infercache stats --url", () => {
  it("reads a running gateway's counters through the admin API", async () => {
    const gateway = createGateway({
      upstream: "http://127.0.0.1:9/v1",
      store: new MemoryStore({ maxSize: 10 }),
      adminToken: "stats-token",
    });
    const url = await gateway.listen();
    try {
      const denied = await run(["stats", "--url", url, "--admin-token", "wrong"]);
      expect(denied).toMatchObject({
        code: 1,
        err: expect.stringMatching(/the gateway answered 401/),
      });
      const stats = await run(["stats", "--url", url, "--admin-token", "stats-token"]);
      expect(stats.code).toBe(0);
      expect(stats.out).toMatch(/hits 0, misses 0[\s\S]*hit rate 0.0%/);
    } finally {
      await gateway.close();
    }
  });
});
