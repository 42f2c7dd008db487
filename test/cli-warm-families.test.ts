/**
 * `infercache warm` and `export` for the JSON families beyond chat (rerank, moderations, image
 * generations, speech, and Gemini under its own base path): warm a file through a loopback
 * upstream into a SQLite file, export it (speech's bytes as an envelope, the rest as readable
 * JSON), and a gateway on that file answers every warmed request from the cache.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { main } from "../src/cli/main.js";
import { createGateway } from "../src/server.js";
import { SqliteStore } from "../src/sqlite.js";
import { type ProviderUpstream, startProviderUpstream } from "./helpers/provider-upstream.js";

const dir = mkdtempSync(join(tmpdir(), "infercache-warm-families-"));
const store = `sqlite:${join(dir, "cache.db")}`;
let upstream: ProviderUpstream;
beforeAll(async () => {
  upstream = await startProviderUpstream();
});
afterAll(async () => {
  await upstream?.close();
  rmSync(dir, { recursive: true, force: true });
});

async function run(args: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = "";
  let err = "";
  const write = { out: process.stdout.write, err: process.stderr.write };
  process.stdout.write = ((chunk: string | Uint8Array) => {
    out += String(chunk);
    return true;
  }) as typeof process.stdout.write;
  process.stderr.write = ((chunk: string | Uint8Array) => {
    err += String(chunk);
    return true;
  }) as typeof process.stderr.write;
  try {
    return { code: await main(args), out, err };
  } finally {
    process.stdout.write = write.out;
    process.stderr.write = write.err;
  }
}

const openaiLines = [
  {
    path: "/v1/rerank",
    body: { model: "rerank-v3.5", query: "capital", documents: ["Paris is a capital", "cheese"] },
  },
  { path: "/v1/moderations", body: { model: "omni-moderation-latest", input: "hello there" } },
  { path: "/v1/images/generations", body: { model: "gpt-image-1", prompt: "a warm otter" } },
  { path: "/v1/audio/speech", body: { model: "tts-1", voice: "alloy", input: "warm words" } },
];
const geminiLine = {
  path: "/v1beta/models/gemini-2.5-flash:generateContent",
  body: {
    contents: [{ role: "user", parts: [{ text: "warm me" }] }],
    generationConfig: { temperature: 0 },
  },
};

describe("warm and export beyond chat", () => {
  it("warms OpenAI-style families and Gemini (under /v1beta) into one store", async () => {
    const openai = join(dir, "openai.jsonl");
    writeFileSync(openai, openaiLines.map((line) => JSON.stringify(line)).join("\n"));
    const first = await run([
      "warm",
      openai,
      "--upstream",
      `${upstream.url}/v1`,
      "--store",
      store,
      "--shared-cache",
    ]);
    expect(first.out).toMatch(
      /warmed 4 requests in [\d.]+ s: 4 computed, 0 already cached, 0 failed/,
    );
    expect(first.code).toBe(0);
    const gemini = join(dir, "gemini.jsonl");
    writeFileSync(gemini, JSON.stringify(geminiLine));
    const second = await run([
      "warm",
      gemini,
      "--upstream",
      `${upstream.url}/v1beta`,
      "--store",
      store,
      "--shared-cache",
    ]);
    expect(second.err).not.toMatch(/line 1/);
    expect(second.out).toMatch(/warmed 1 requests in [\d.]+ s: 1 computed/);
    expect(second.code).toBe(0);
  });

  it("exports them: JSON records readable, speech's bytes as an envelope", async () => {
    const file = join(dir, "export.jsonl");
    expect(await run(["export", "--store", store, "--out", file])).toMatchObject({
      code: 0,
      err: expect.stringMatching(/exported 5 entries of namespace gateway/),
    });
    const lines = readFileSync(file, "utf8")
      .trim()
      .split("\n")
      .map((line) => JSON.parse(line));
    const protocols = lines.flatMap((line) =>
      line.value === undefined ? [] : [line.value.protocol],
    );
    expect(protocols.sort()).toEqual(["gemini", "images", "moderations", "rerank"]);
    expect(lines.filter((line) => typeof line.envelope === "string")).toHaveLength(1);
  });

  it("a gateway on the warmed store answers every warmed request from the cache", async () => {
    const sqlite = new SqliteStore({ path: store.slice("sqlite:".length) });
    const served = [
      createGateway({ upstream: `${upstream.url}/v1`, store: sqlite, sharedCache: true }),
      createGateway({ upstream: `${upstream.url}/v1beta`, store: sqlite, sharedCache: true }),
    ];
    try {
      const before = upstream.received.length;
      for (const [line, gateway] of [
        ...openaiLines.map((line) => [line, served[0]] as const),
        [geminiLine, served[1]] as const,
      ]) {
        const response = await gateway?.handle(
          new Request(`http://gateway${line.path}`, {
            method: "POST",
            headers: { "content-type": "application/json" },
            body: JSON.stringify(line.body),
          }),
        );
        await response?.arrayBuffer();
        expect(response?.headers.get("x-infercache"), line.path).toBe("hit");
      }
      expect(upstream.received.length).toBe(before);
    } finally {
      for (const gateway of served) await gateway.close();
      await sqlite.close();
    }
  });
});
