/**
 * Recorded answers for a test suite, the way VCR or Polly.js replay HTTP: run the suite once
 * through the gateway in `record` mode (here against a stand-in for the OpenAI API), then in CI
 * through a gateway in `replay` mode over the same SQLite file — the upstream is never called,
 * answers are byte-identical and free, and a request the suite never recorded fails at once
 * with `cache_miss` (504) instead of reaching the model.
 *
 * With the CLI the same recipe is `infercache warm suite.jsonl --store sqlite:ci.db` once, then
 * `infercache serve --mode replay --store sqlite:ci.db` in CI, with the SDK's `baseURL` pointed
 * at it.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { createServer } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createGateway } from "infercache/server";
import { SqliteStore } from "infercache/sqlite";
import OpenAI from "openai";

/** The application's tests: what they ask the model, and what they check. */
async function suite(client: OpenAI): Promise<string[]> {
  const outcomes: string[] = [];
  for (const question of ["What is 2 + 2?", "Name a colour."]) {
    const { data, response } = await client.chat.completions
      .create({
        model: "gpt-4o-mini",
        // Sampled: read-write would store it too (the default policy), but only record mode
        // promises to keep whatever a policy would bypass, so replay can find it.
        temperature: 0.7,
        messages: [{ role: "user", content: question }],
      })
      .withResponse();
    if (!data.choices[0]?.message.content?.startsWith("answer to")) throw new Error("wrong answer");
    outcomes.push(response.headers.get("x-infercache") ?? "?");
  }
  return outcomes;
}

export async function main(): Promise<void> {
  // A stand-in for https://api.openai.com/v1 that counts the requests it gets.
  let upstreamCalls = 0;
  const upstream = createServer((request, response) => {
    upstreamCalls++;
    let body = "";
    request.on("data", (chunk: Buffer) => {
      body += chunk.toString();
    });
    request.on("end", () => {
      const question = (JSON.parse(body) as { messages: { content: string }[] }).messages[0]
        ?.content;
      response.writeHead(200, { "content-type": "application/json" });
      response.end(
        JSON.stringify({
          id: `chatcmpl-${upstreamCalls}`,
          object: "chat.completion",
          created: 1_700_000_000,
          model: "gpt-4o-mini",
          choices: [
            {
              index: 0,
              message: { role: "assistant", content: `answer to ${question}`, refusal: null },
              logprobs: null,
              finish_reason: "stop",
            },
          ],
          usage: { prompt_tokens: 9, completion_tokens: 4, total_tokens: 13 },
        }),
      );
    });
  });
  await new Promise<void>((resolve) => upstream.listen(0, "127.0.0.1", resolve));
  const address = upstream.address();
  const upstreamUrl = `http://127.0.0.1:${typeof address === "object" && address ? address.port : 0}/v1`;
  const dir = mkdtempSync(join(tmpdir(), "infercache-replay-example-"));
  const path = join(dir, "ci.db");
  // One tenant secret for both runs (a file store keeps its own, so this is belt and braces).
  const common = { upstream: upstreamUrl, tenantSecret: "ci-example" };
  try {
    // 1. Record, once, with the real upstream (a developer's machine, a nightly job).
    const recordStore = new SqliteStore({ path });
    const recorder = createGateway({ ...common, store: recordStore, mode: "record" });
    const recorded = await suite(
      new OpenAI({ apiKey: "sk-example", baseURL: `${await recorder.listen()}/v1` }),
    );
    await recorder.close();
    await recordStore.close();
    console.log(`record: ${recorded.join(", ")}; upstream calls ${upstreamCalls}`);

    // 2. In CI: the upstream is gone, the gateway replays.
    await new Promise<void>((resolve) => upstream.close(() => resolve()));
    const before = upstreamCalls;
    const replayStore = new SqliteStore({ path });
    const replayer = createGateway({ ...common, store: replayStore, mode: "replay" });
    const client = new OpenAI({ apiKey: "sk-example", baseURL: `${await replayer.listen()}/v1` });
    try {
      const replayed = await suite(client);
      console.log(`replay: ${replayed.join(", ")}; upstream calls ${upstreamCalls - before}`);
      // 3. A test that asks something new fails fast and says what to do.
      try {
        await client.chat.completions.create({
          model: "gpt-4o-mini",
          messages: [{ role: "user", content: "A question nobody recorded" }],
        });
      } catch (error) {
        if (!(error instanceof OpenAI.APIError)) throw error;
        console.log(`a new request: ${error.status} ${error.code}`);
      }
    } finally {
      await replayer.close();
      await replayStore.close();
    }
  } finally {
    if (upstream.listening) upstream.close();
    rmSync(dir, { recursive: true, force: true });
  }
}
