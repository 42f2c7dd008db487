/**
 * The command's errors name the cause and the fix: a Redis that nothing answers at (every
 * command that opens a store, `serve` and `warm` included, which used to go on uncached and
 * report success), a port in use, and a `stats --url` that nothing answers.
 */
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { createServer, type Server } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { runCli, runCliProcess } from "./helpers/cli.js";
import { MODEL_PATH } from "./helpers/llama-upstream.js";

const dir = mkdtempSync(join(tmpdir(), "infercache-cli-errors-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** Port 1 on loopback: nothing listens there, so connecting is refused at once. */
const DEAD_REDIS = "redis://127.0.0.1:1";
const CANNOT_REACH = /cannot reach Redis at 127\.0\.0\.1:1: connection refused/;

describe("a Redis that nothing answers at", () => {
  it("stats, purge, export and import exit 1 and say so, once", async () => {
    const backup = join(dir, "backup.jsonl");
    writeFileSync(backup, '{"key":"a","namespace":"gateway","createdAt":1,"value":1}\n');
    for (const args of [["stats"], ["purge"], ["export"], ["import", backup]]) {
      const result = await runCli([...args, "--store", DEAD_REDIS]);
      expect(result.code, args[0]).toBe(1);
      expect(result.err, args[0]).toMatch(CANNOT_REACH);
      expect(result.err, args[0]).toMatch(/start Redis there, or pass another --store/);
      expect(result.err, args[0]).not.toMatch(/infercache: infercache:|uncached/);
      expect(result.out, args[0]).toBe("");
    }
  });

  it("warm exits 1 instead of reporting answers it could not store", async () => {
    const requests = join(dir, "requests.jsonl");
    writeFileSync(
      requests,
      '{"model":"tiny","messages":[{"role":"user","content":"hi"}],"max_tokens":2}\n',
    );
    const result = await runCli([
      "warm",
      requests,
      "--model",
      MODEL_PATH,
      "--store",
      DEAD_REDIS,
      "--shared-cache",
    ]);
    expect(result.code).toBe(1);
    expect(result.err).toMatch(CANNOT_REACH);
    expect(result.out).not.toMatch(/warmed/);
  }, 60_000);

  it("serve exits 1 instead of serving uncached", async () => {
    const result = await runCliProcess(
      ["serve", "--upstream", "http://127.0.0.1:9/v1", "--store", DEAD_REDIS, "--port", "0"],
      { timeoutMs: 30_000 },
    );
    expect(result.code).toBe(1);
    expect(result.err).toMatch(CANNOT_REACH);
    expect(result.out).not.toMatch(/listening/);
  }, 60_000);
});

describe("serve on a port in use", () => {
  it("exits 1 and says to pass another --port", async () => {
    const blocker: Server = createServer();
    await new Promise<void>((resolve) => blocker.listen(0, "127.0.0.1", resolve));
    const { port } = blocker.address() as { port: number };
    try {
      const result = await runCliProcess(
        ["serve", "--upstream", "http://127.0.0.1:9/v1", "--store", "memory", "--port", `${port}`],
        { timeoutMs: 30_000 },
      );
      expect(result.code).toBe(1);
      expect(result.err).toMatch(
        new RegExp(
          `port ${port} on 127\\.0\\.0\\.1 is in use.*pass --port N \\(0 picks a free one\\)`,
        ),
      );
    } finally {
      await new Promise((resolve) => blocker.close(resolve));
    }
  }, 60_000);
});

/** A loopback port that nothing listens at: one the system just handed out and took back. */
async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as { port: number };
  await new Promise((resolve) => server.close(resolve));
  return port;
}

describe("stats --url that nothing answers at", () => {
  it("exits 1 naming the URL and the cause", async () => {
    const url = `http://127.0.0.1:${await closedPort()}`;
    const result = await runCli(["stats", "--url", url, "--admin-token", "t"]);
    expect(result.code).toBe(1);
    expect(result.err).toContain(
      `cannot reach the gateway at ${url}: connection refused; is \`infercache serve\` running there?`,
    );
  });

  it("a URL that is not one is a usage error", async () => {
    const result = await runCli(["stats", "--url", "localhost:8080", "--admin-token", "t"]);
    expect(result.code).toBe(2);
    expect(result.err).toMatch(/Expected --url to be an http:\/\/ or https:\/\/ URL/);
  });
});
