/**
 * The CI recipe, end to end: record an application's suite through the gateway (real OpenAI SDK,
 * loopback upstream, SQLite file), stop the upstream, run the suite again through a gateway in
 * replay mode over the same file — it passes — and a request the suite never made fails with
 * `cache_miss` while a TCP server on the upstream's old port counts zero connection attempts.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { connect, createServer, type Server } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import OpenAI from "openai";
import { afterAll, describe, expect, it } from "vitest";
import { createGateway } from "../src/server.js";
import { SqliteStore } from "../src/sqlite.js";
import { startFakeUpstream } from "./helpers/fake-upstream.js";

const dir = mkdtempSync(join(tmpdir(), "infercache-replay-ci-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** What an application's test suite asks the model, and what it checks. */
async function suite(client: OpenAI): Promise<string[]> {
  const outcomes: string[] = [];
  const plain = await client.chat.completions
    .create({ model: "gpt-test", messages: [{ role: "user", content: "capital of France?" }] })
    .withResponse();
  expect(plain.data.choices[0]?.message.content).toBe("echo: capital of France?");
  outcomes.push(plain.response.headers.get("x-infercache") ?? "");

  const sampled = await client.chat.completions
    .create({
      model: "gpt-test",
      temperature: 0.8,
      messages: [{ role: "user", content: "a haiku" }],
    })
    .withResponse();
  expect(sampled.data.choices[0]?.message.content).toBe("echo: a haiku");
  outcomes.push(sampled.response.headers.get("x-infercache") ?? "");

  const stream = await client.chat.completions
    .create({
      model: "gpt-test",
      stream: true,
      messages: [{ role: "user", content: "count to three" }],
    })
    .withResponse();
  let text = "";
  for await (const chunk of stream.data) text += chunk.choices[0]?.delta.content ?? "";
  expect(text).toBe("echo: count to three");
  outcomes.push(stream.response.headers.get("x-infercache") ?? "");

  const vectors = await client.embeddings
    .create({ model: "emb", input: ["alpha", "beta"], encoding_format: "float" })
    .withResponse();
  expect(vectors.data.data.map((item) => item.embedding[0])).toEqual([5, 4]);
  outcomes.push(vectors.response.headers.get("x-infercache") ?? "");
  return outcomes;
}

/** A TCP server on `port` that counts connection attempts and closes each at once. */
async function connectionCounter(
  port: number,
): Promise<{ count(): number; close(): Promise<void> }> {
  let connections = 0;
  const server: Server = createServer((socket) => {
    connections++;
    socket.destroy();
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, "127.0.0.1", () => resolve());
  });
  return {
    count: () => connections,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

describe("record, stop the upstream, replay", () => {
  it("replays a recorded suite with the upstream gone, and a new request fails with cache_miss without a connection", async () => {
    const path = join(dir, "ci.db");
    const upstream = await startFakeUpstream();
    const port = Number(new URL(upstream.url).port);
    const common = {
      upstream: upstream.baseURL,
      tenantSecret: "ci-secret",
      sampling: "bypass" as const,
    };

    const recordStore = new SqliteStore({ path });
    const recorder = createGateway({ ...common, store: recordStore, mode: "record" });
    const recordUrl = await recorder.listen();
    const recorded = await suite(
      new OpenAI({ apiKey: "sk-ci", baseURL: `${recordUrl}/v1`, maxRetries: 0 }),
    );
    expect(recorded).toEqual(["miss", "miss", "miss", "miss"]);
    expect(upstream.received.length).toBe(4);
    await recorder.close();
    await recordStore.close();
    await upstream.close();

    const counter = await connectionCounter(port);
    const replayStore = new SqliteStore({ path });
    const replayer = createGateway({ ...common, store: replayStore, mode: "replay" });
    const replayUrl = await replayer.listen();
    // The SDK's retries stay on: a cache_miss tells it not to retry (x-should-retry: false).
    const client = new OpenAI({ apiKey: "sk-ci", baseURL: `${replayUrl}/v1` });
    try {
      expect(await suite(client)).toEqual(["hit", "hit", "hit", "hit"]);
      const error = await client.chat.completions
        .create({ model: "gpt-test", messages: [{ role: "user", content: "never asked" }] })
        .then(
          () => undefined,
          (e: unknown) => e,
        );
      expect(error).toBeInstanceOf(OpenAI.APIError);
      expect((error as InstanceType<typeof OpenAI.APIError>).status).toBe(504);
      expect((error as InstanceType<typeof OpenAI.APIError>).code).toBe("cache_miss");
      expect(counter.count()).toBe(0);
      // The counter does count: one connection made here is one.
      await new Promise<void>((resolve) => {
        const socket = connect(port, "127.0.0.1");
        socket.once("close", () => resolve());
        socket.once("error", () => resolve());
      });
      expect(counter.count()).toBe(1);
    } finally {
      await replayer.close();
      await replayStore.close();
      await counter.close();
    }
  }, 30_000);
});
