/**
 * The CI recipe from the command line: `infercache warm` records a file of requests (sampled ones
 * too: warm runs in record mode), `infercache serve --mode replay` answers them from the cache
 * with the OpenAI SDK, and a request never warmed is a 504 cache_miss that never reaches the
 * upstream. Bad `--mode` values are usage errors.
 */
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import OpenAI from "openai";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { runCli, startServe } from "./helpers/cli.js";
import { type FakeUpstream, startFakeUpstream } from "./helpers/fake-upstream.js";

const dir = mkdtempSync(join(tmpdir(), "infercache-modes-cli-"));
const store = `sqlite:${join(dir, "ci.db")}`;
let upstream: FakeUpstream;
beforeAll(async () => {
  upstream = await startFakeUpstream();
});
afterAll(async () => {
  await upstream?.close();
  rmSync(dir, { recursive: true, force: true });
});

const plain = { model: "gpt-test", messages: [{ role: "user", content: "warm and replay" }] };
const sampled = {
  model: "gpt-test",
  temperature: 1,
  messages: [{ role: "user", content: "a sampled line" }],
};

describe("warm, then serve --mode replay", () => {
  it("replays what warm recorded and refuses the rest without calling the upstream", async () => {
    const file = join(dir, "suite.jsonl");
    writeFileSync(file, `${JSON.stringify(plain)}\n${JSON.stringify(sampled)}\n`);
    const warmed = await runCli([
      "warm",
      file,
      "--store",
      store,
      "--upstream",
      upstream.baseURL,
      "--shared-cache",
    ]);
    expect(warmed.out).toContain("2 computed, 0 already cached, 0 failed");
    const before = upstream.received.length;

    const serve = await startServe(
      ["--mode", "replay", "--store", store, "--upstream", upstream.baseURL, "--shared-cache"],
      { env: { PORT: "0" } },
    );
    try {
      expect(serve.output()).toMatch(/listening on .*, mode replay\)/);
      const client = new OpenAI({ apiKey: "sk-ci", baseURL: `${serve.url}/v1` });
      for (const body of [plain, sampled]) {
        const answer = await client.chat.completions
          .create(body as OpenAI.ChatCompletionCreateParamsNonStreaming)
          .withResponse();
        expect(answer.response.headers.get("x-infercache")).toBe("hit");
        expect(answer.response.headers.get("cache-status")).toBe("infercache; hit");
      }
      const error = await client.chat.completions
        .create({ model: "gpt-test", messages: [{ role: "user", content: "never warmed" }] })
        .then(
          () => undefined,
          (e: unknown) => e,
        );
      expect((error as InstanceType<typeof OpenAI.APIError>).status).toBe(504);
      expect((error as InstanceType<typeof OpenAI.APIError>).code).toBe("cache_miss");
      expect(upstream.received.length).toBe(before);
    } finally {
      await serve.stop();
    }
  }, 60_000);

  it("refuses a mode it does not know, naming the flag and the modes", async () => {
    const served = await runCli(["serve", "--mode", "replya", "--upstream", upstream.baseURL]);
    expect(served.code).toBe(2);
    expect(served.err).toContain(
      "Expected --mode to be one of read-write, read-only, refresh, replay, record, got `replya`",
    );
    const warmed = await runCli(["warm", "x.jsonl", "--mode", "replay", "--store", store]);
    expect(warmed.code).toBe(2);
    expect(warmed.err).toContain("Expected --mode to be one of record, refresh, read-write");
  });

  it("documents --mode in serve --help and warm --help", async () => {
    expect((await runCli(["serve", "--help"])).out).toContain("--mode MODE");
    expect((await runCli(["warm", "--help"])).out).toContain("--mode MODE");
  });
});
