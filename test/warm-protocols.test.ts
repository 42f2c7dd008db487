/**
 * `infercache warm` and `export` for the Responses and Messages routes, through the real local
 * engine on a real SQLite file: a line names its path and the key headers its clients send
 * (`anthropic-version`), the gateway then answers the SDKs from the cache, and the exported
 * entries are readable records.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import Anthropic from "@anthropic-ai/sdk";
import OpenAI from "openai";
import { afterAll, describe, expect, it } from "vitest";
import { main } from "../src/cli/main.js";
import { LlamaEngine } from "../src/llama.js";
import { createGateway } from "../src/server.js";
import { SqliteStore } from "../src/sqlite.js";
import { MODEL_PATH } from "./helpers/llama-upstream.js";

const dir = mkdtempSync(join(tmpdir(), "infercache-warm-protocols-"));
const db = join(dir, "cache.db");
afterAll(() => rmSync(dir, { recursive: true, force: true }));

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

const responsesBody = { model: "tiny", input: "warm me", temperature: 0, max_output_tokens: 5 };
const messagesBody = {
  model: "tiny",
  max_tokens: 5,
  temperature: 0,
  messages: [{ role: "user" as const, content: "warm me too" }],
};
const VERSION = "2023-06-01";

describe("warm and export for Responses and Messages", () => {
  it("warms lines with a path and key headers; refuses credentials in a line", async () => {
    const file = join(dir, "requests.jsonl");
    writeFileSync(
      file,
      [
        JSON.stringify({ path: "/v1/responses", body: responsesBody }),
        JSON.stringify({
          path: "/v1/messages",
          headers: { "anthropic-version": VERSION },
          body: messagesBody,
        }),
        JSON.stringify({
          path: "/v1/messages",
          headers: { "x-api-key": "sk-ant-secret" },
          body: messagesBody,
        }),
        JSON.stringify({
          path: "/v1/messages",
          headers: ["anthropic-version"],
          body: messagesBody,
        }),
      ].join("\n"),
    );
    const warm = await run([
      "warm",
      file,
      "--model",
      MODEL_PATH,
      "--store",
      `sqlite:${db}`,
      "--shared-cache",
    ]);
    expect(warm.out).toMatch(
      /warmed 4 requests in [\d.]+ s: 2 computed, 0 already cached, 2 failed/,
    );
    expect(warm.err).toMatch(/line 3: "headers" must not carry credentials \(x-api-key\)/);
    expect(warm.err).toMatch(/line 4: "headers" must be an object of strings/);
    expect(warm.err).not.toContain("sk-ant-secret");
  }, 60_000);

  it("the gateway answers the SDKs from the warmed entries", { timeout: 60_000 }, async () => {
    const store = new SqliteStore({ path: db });
    // The upstream warm computed with (keys name it), which must not be asked again.
    const engine = await LlamaEngine.load({ modelPath: MODEL_PATH, modelName: "tiny" });
    const gateway = createGateway({
      upstream: (request) => engine.handle(request),
      store,
      sharedCache: true,
    });
    try {
      const url = await gateway.listen();
      const openai = new OpenAI({ apiKey: "any", baseURL: `${url}/v1`, maxRetries: 0 });
      const response = await openai.responses.create(responsesBody).withResponse();
      expect(response.response.headers.get("x-infercache")).toBe("hit");
      const anthropic = new Anthropic({
        apiKey: "any",
        baseURL: url,
        maxRetries: 0,
        defaultHeaders: { "anthropic-version": VERSION },
      });
      const message = await anthropic.messages.create(messagesBody).withResponse();
      expect(message.response.headers.get("x-infercache")).toBe("hit");
      const streamed = await anthropic.messages.stream(messagesBody).finalMessage();
      expect(streamed.content).toEqual(message.data.content);
      expect(engine.received).toHaveLength(0);
    } finally {
      await gateway.close();
      await store.close();
      await engine.close();
    }
  });

  it("exports the entries as readable records", async () => {
    const out = join(dir, "export.jsonl");
    const exported = await run(["export", "--store", `sqlite:${db}`, "--out", out]);
    expect(exported).toMatchObject({
      code: 0,
      err: expect.stringMatching(/exported 2 entries of namespace gateway/),
    });
    const records = readFileSync(out, "utf8")
      .trim()
      .split("\n")
      .map((line) => (JSON.parse(line) as { value: { protocol: string; body: string } }).value);
    expect(records.map((record) => record.protocol).sort()).toEqual(["messages", "responses"]);
    for (const record of records) expect(typeof JSON.parse(record.body)).toBe("object");
  });
});
