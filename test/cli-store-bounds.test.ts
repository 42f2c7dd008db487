/**
 * `serve --max-size N --max-memory SIZE` bound the gateway's store, in memory and in SQLite: more
 * distinct answers than the bound leave the store at or under it. The bounds are printed at
 * start, and the default SQLite store has one too.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { runCli, runCliProcess, startServe } from "./helpers/cli.js";
import { MODEL_PATH } from "./helpers/llama-upstream.js";

const dir = mkdtempSync(join(tmpdir(), "infercache-bounds-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** Sends `count` distinct chat requests; returns the gateway's admin stats afterwards. */
async function fill(url: string, count: number): Promise<{ entries: number; bytes: number }> {
  for (let i = 0; i < count; i++) {
    const response = await fetch(`${url}/v1/chat/completions`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({
        model: "tiny",
        messages: [{ role: "user", content: `question ${i}` }],
        temperature: 0,
        max_tokens: 4,
      }),
    });
    expect(response.status).toBe(200);
    await response.text();
  }
  const stats = await fetch(`${url}/admin/stats`, {
    headers: { authorization: "Bearer bounds-token" },
  });
  return (await stats.json()) as { entries: number; bytes: number };
}

const serveArgs = ["--model", MODEL_PATH, "--port", "0", "--admin-token", "bounds-token"];

describe("serve --max-size / --max-memory", () => {
  it("bound a memory store", async () => {
    const bySize = await startServe([...serveArgs, "--store", "memory", "--max-size", "3"]);
    try {
      expect(bySize.output()).toMatch(/at most 3 entries/);
      expect((await fill(bySize.url, 8)).entries).toBe(3);
    } finally {
      await bySize.stop();
    }
    const byBytes = await startServe([...serveArgs, "--store", "memory", "--max-memory", "4kb"]);
    try {
      expect(byBytes.output()).toMatch(/at most 10000 entries and 4\.0 KiB/);
      const stats = await fill(byBytes.url, 30);
      expect(stats.entries).toBeLessThan(30);
      expect(stats.bytes).toBeLessThanOrEqual(4096);
    } finally {
      await byBytes.stop();
    }
  }, 120_000);

  it("bound a SQLite store, also after the gateway stopped", async () => {
    const bySize = `sqlite:${join(dir, "by-size.db")}`;
    const served = await startServe([...serveArgs, "--store", bySize, "--max-size", "3"]);
    try {
      expect((await fill(served.url, 8)).entries).toBe(3);
    } finally {
      await served.stop();
    }
    expect((await runCli(["stats", "--store", bySize])).out).toMatch(/: 3 entries/);

    const byBytes = `sqlite:${join(dir, "by-bytes.db")}`;
    const second = await startServe([...serveArgs, "--store", byBytes, "--max-memory", "4kb"]);
    try {
      const stats = await fill(second.url, 30);
      expect(stats.entries).toBeLessThan(30);
      expect(stats.bytes).toBeLessThanOrEqual(4096);
    } finally {
      await second.stop();
    }
    const json = JSON.parse((await runCli(["stats", "--store", byBytes, "--json"])).out) as {
      bytes: number;
    };
    expect(json.bytes).toBeLessThanOrEqual(4096);
  }, 120_000);

  it("the default SQLite store is bounded, and says by what", async () => {
    const served = await startServe(["--model", MODEL_PATH, "--port", "0"], { cwd: dir });
    try {
      expect(served.output()).toMatch(/store sqlite:\.\/\.infercache\/cache\.db, at most 1\.0 GiB/);
    } finally {
      await served.stop();
    }
  }, 60_000);

  it("refuse values that are not bounds, and Redis (which bounds itself)", async () => {
    const bad = await runCliProcess(["serve", ...serveArgs, "--max-memory", "lots"]);
    expect(bad.code).toBe(2);
    expect(bad.err).toMatch(/Expected --max-memory to be a size such as .*, got `lots`/);
    const redis = await runCliProcess([
      "serve",
      ...serveArgs,
      "--store",
      "redis://127.0.0.1:1",
      "--max-size",
      "5",
    ]);
    expect(redis.code).toBe(2);
    expect(redis.err).toMatch(/Redis bounds itself: set its maxmemory/);
  }, 60_000);
});
