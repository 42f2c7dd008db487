/**
 * `infercache serve --model` runs with the KV-state cache on: two conversations interleaved
 * through the real CLI process (one slot), with the OpenAI SDK as the client. Every turn after
 * the first of each conversation reports `cached_tokens` covering the whole previous turn, prompt
 * and reply, and answers exactly as a cold engine does at temperature 0.
 */
import OpenAI from "openai";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { LlamaEngine } from "../src/llama.js";
import { type ServeProcess, spawnCli, startServe } from "./helpers/cli.js";
import {
  type ChatMessage,
  chatTurn,
  QUESTIONS,
  render,
  SYSTEM_PROMPT,
} from "./helpers/llama-chat.js";
import { MODEL_PATH } from "./helpers/llama-upstream.js";

let serve: ServeProcess;
let cold: LlamaEngine;

beforeAll(async () => {
  [serve, cold] = await Promise.all([
    startServe(["--model", MODEL_PATH, "--port", "0", "--store", "memory"]),
    LlamaEngine.load({ modelPath: MODEL_PATH, modelName: "tiny" }),
  ]);
}, 120_000);
afterAll(async () => {
  await serve?.stop();
  await cold?.close();
});

describe("infercache serve --model keeps KV state between turns", () => {
  it("interleaved conversations (A1, B1, A2, B2, …) reuse the whole previous turn, prompt and reply", async () => {
    const client = new OpenAI({ apiKey: "sk-local", baseURL: `${serve.url}/v1`, maxRetries: 0 });
    const conversations: Record<"a" | "b", ChatMessage[]> = {
      a: [{ role: "system", content: SYSTEM_PROMPT }],
      b: [{ role: "system", content: `${SYSTEM_PROMPT} Answer as a reviewer would.` }],
    };
    for (let turn = 0; turn < 3; turn++) {
      for (const name of ["a", "b"] as const) {
        const history = conversations[name];
        const previous =
          turn === 0
            ? 0
            : cold.countTokens(
                `${render(history.slice(0, -1))} ${(history.at(-1) as ChatMessage).content}`,
              );
        history.push({
          role: "user",
          content: QUESTIONS[2 * turn + (name === "a" ? 0 : 1)] as string,
        });
        const answer = await client.chat.completions.create({
          model: "tiny",
          messages: history,
          max_tokens: 40,
          temperature: 0,
        });
        const text = answer.choices[0]?.message.content ?? "";
        expect(text, `${name}${turn + 1}`).toBe((await chatTurn(cold, history)).text);
        expect(answer.usage?.completion_tokens).toBeLessThanOrEqual(40);
        history.push({ role: "assistant", content: text });
        if (turn === 0) continue;
        const cached = answer.usage?.prompt_tokens_details?.cached_tokens ?? 0;
        expect(cached, `${name}${turn + 1}`).toBeGreaterThanOrEqual(previous);
      }
    }
  });

  it("says what a bad state-cache flag needs", async () => {
    const run = (args: string[]) =>
      new Promise<{ code: number | null; err: string }>((resolve) => {
        const child = spawnCli(["serve", ...args]);
        let err = "";
        child.stderr.on("data", (chunk: Buffer) => {
          err += chunk.toString();
        });
        child.once("close", (code) => resolve({ code, err }));
      });
    // toMatch, not toMatchObject: vitest's toMatchObject passes a RegExp against any string.
    const badSize = await run(["--model", MODEL_PATH, "--port", "0", "--state-memory", "lots"]);
    expect(badSize.code).toBe(2);
    expect(badSize.err).toMatch(/Expected --state-memory to be a size such as `1gb`, got `lots`/);
    const noModel = await run(["--upstream", "http://127.0.0.1:9/v1", "--state-dir", "/tmp/x"]);
    expect(noModel.code).toBe(2);
    expect(noModel.err).toMatch(
      /--state-dir keeps the local engine's KV states: pass --model PATH/,
    );
  });
});
