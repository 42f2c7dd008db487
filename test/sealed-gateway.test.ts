/**
 * The gateway on a sealed SQLite store, through the real OpenAI SDK and a loopback upstream:
 * the prompt and the answer never reach the file or its WAL in any form, the second request is
 * a hit, and `infercache serve --encryption-key` refuses a wrong key before it listens.
 */
import { randomBytes } from "node:crypto";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import OpenAI from "openai";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createGateway, type Gateway } from "../src/server.js";
import { SqliteStore } from "../src/sqlite.js";
import { SealedStore } from "../src/store/sealed.js";
import { runCli } from "./helpers/cli.js";
import { chatCompletion, type FakeUpstream, startFakeUpstream } from "./helpers/fake-upstream.js";
import { findMarker } from "./helpers/marker-search.js";

const dir = mkdtempSync(join(tmpdir(), "infercache-sealed-gateway-"));
const KEY = randomBytes(32).toString("base64");
const PROMPT = "PROMPT-MARKER-gw-31b7 my card number is 4111";
const ANSWER = "ANSWER-MARKER-gw-9e0d noted";

let upstream: FakeUpstream;
beforeAll(async () => {
  upstream = await startFakeUpstream();
  upstream.respond = (request, response, defaults) => {
    // Streams as the defaults send them (the echo carries the prompt's marker).
    if (request.json?.stream === true) return defaults.answer(request, response);
    const body = chatCompletion(request);
    const choice = (body.choices as { message: { content: string } }[])[0];
    if (choice !== undefined) choice.message.content = `${ANSWER} (${choice.message.content})`;
    response.writeHead(200, { "content-type": "application/json" });
    response.end(JSON.stringify(body));
  };
});
afterAll(async () => {
  await upstream?.close();
  rmSync(dir, { recursive: true, force: true });
});

function atRest(path: string): Buffer {
  return Buffer.concat([
    readFileSync(path),
    ...(existsSync(`${path}-wal`) ? [readFileSync(`${path}-wal`)] : []),
  ]);
}

describe("the gateway on a sealed store", () => {
  let gateway: Gateway;
  let client: OpenAI;
  const path = join(dir, "gateway.db");
  beforeAll(async () => {
    const store = new SealedStore(new SqliteStore({ path }), { keys: KEY });
    await store.check();
    gateway = createGateway({ upstream: upstream.baseURL, store });
    client = new OpenAI({
      baseURL: `${await gateway.listen()}/v1`,
      apiKey: "sk-test",
      maxRetries: 0,
    });
  });
  afterAll(async () => gateway?.close());

  for (const stream of [false, true]) {
    it(`${stream ? "a streamed" : "a plain"} answer: a hit the second time, nothing readable at rest`, async () => {
      const ask = async () => {
        const request = {
          model: "fake",
          messages: [{ role: "user" as const, content: `${PROMPT} ${stream ? "streamed" : ""}` }],
          temperature: 0,
        };
        if (!stream) {
          const { data, response } = await client.chat.completions.create(request).withResponse();
          return {
            text: data.choices[0]?.message.content,
            outcome: response.headers.get("x-infercache"),
          };
        }
        const { data, response } = await client.chat.completions
          .create({ ...request, stream: true })
          .withResponse();
        let text = "";
        for await (const chunk of data) text += chunk.choices[0]?.delta.content ?? "";
        return { text, outcome: response.headers.get("x-infercache") };
      };
      const first = await ask();
      expect(first.outcome).toBe("miss");
      expect(first.text).toContain(stream ? PROMPT : ANSWER);
      const second = await ask();
      expect(second).toEqual({ text: first.text, outcome: "hit" });
      const bytes = atRest(path);
      expect(findMarker(bytes, PROMPT.slice(0, 22))).toEqual([]);
      expect(findMarker(bytes, ANSWER.slice(0, 21))).toEqual([]);
    });
  }
});

describe("infercache serve --encryption-key", () => {
  it("refuses a key that does not open the store, by key id, before listening", async () => {
    const path = join(dir, "serve.db");
    const store = new SealedStore(new SqliteStore({ path }), { keys: `k1:${KEY}` });
    await store.check();
    await store.close();
    const other = randomBytes(32).toString("base64");
    const base = [
      "serve",
      "--upstream",
      upstream.baseURL,
      "--store",
      `sqlite:${path}`,
      "--port",
      "0",
    ];
    const wrong = await runCli([...base, "--encryption-key", `k1:${other}`]);
    expect(wrong.code).toBe(1);
    expect(wrong.err).toMatch(
      /key id `k1` were sealed with another key: pass the key they were written with/,
    );
    expect(wrong.err).not.toContain(other);
    const missing = await runCli(base);
    expect(missing.code).toBe(2);
    expect(missing.err).toMatch(
      /holds sealed \(encrypted\) entries: pass the key they were written with, --encryption-key/,
    );
    const short = await runCli([...base, "--encryption-key", "abc"]);
    expect(short.code).toBe(2);
    expect(short.err).toMatch(/Expected `--encryption-key` to be 32 bytes/);
  });
});
