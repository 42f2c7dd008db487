/**
 * KV-state reuse where people run a state cache for it, with the real engine (node-llama-cpp, the
 * tiny GGUF, one thread): multi-turn chat, users sharing a system prompt, exact repeats, restarts
 * with a disk tier, several slots. Every reused generation is compared with a cold engine's
 * temperature-0 output for the same request, text for text.
 */
import { mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { LlamaEngine, type LlamaEngineOptions } from "../src/llama.js";
import {
  type ChatMessage,
  type ChatRun,
  chatTurn,
  QUESTIONS,
  render,
  runChat,
  SYSTEM_PROMPT,
} from "./helpers/llama-chat.js";
import { MODEL_PATH } from "./helpers/llama-upstream.js";

const dir = mkdtempSync(join(tmpdir(), "infercache-chat-"));
let folders = 0;
const folder = (name: string) => join(dir, `${name}-${++folders}`);
let cold: LlamaEngine;
/** The cold engine's 7-turn chat: the reference every warm run is compared with. */
let reference: ChatRun & { history: ChatMessage[] };
const engines: LlamaEngine[] = [];

async function load(options: Partial<LlamaEngineOptions> = {}): Promise<LlamaEngine> {
  const engine = await LlamaEngine.load({ modelPath: MODEL_PATH, modelName: "tiny", ...options });
  engines.push(engine);
  return engine;
}

beforeAll(async () => {
  cold = await load();
  reference = await runChat(cold, QUESTIONS.slice(0, 7));
}, 120_000);
afterAll(async () => {
  for (const engine of engines) await engine.close();
});

async function complete(engine: LlamaEngine, prompt: string, maxTokens = 8) {
  const response = await engine.handle(
    new Request("http://local/v1/completions", {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ model: "tiny", prompt, max_tokens: maxTokens, temperature: 0 }),
    }),
  );
  const body = (await response.json()) as {
    choices: { text: string; finish_reason: string }[];
    usage: { completion_tokens: number; prompt_tokens_details?: { cached_tokens: number } };
  };
  return { text: body.choices[0]?.text as string, body, report: engine.lastEvaluation };
}

/** Prompt tokens the engine evaluated for a turn: by the reuse it reports, and by its meter. */
function evaluated(turn: ChatRun["turns"][number]): number {
  const report = turn.report;
  if (report === undefined) throw new Error("no evaluation report");
  return Math.max(report.promptTokens - report.reused, report.evaluatedTokens);
}

describe("multi-turn chat", () => {
  it("from turn 2 on, a turn evaluates only its new tokens, and answers as a cold engine does", async () => {
    const warm = await load({
      stateCache: { directory: folder("chat"), capacityBytes: "64mb" },
    });
    const run = await runChat(warm, QUESTIONS.slice(0, 6));
    expect(run.turns.map((t) => t.text)).toEqual(reference.turns.slice(0, 6).map((t) => t.text));
    for (let k = 1; k < 6; k++) {
      const turn = run.turns[k] as ChatRun["turns"][number];
      expect(evaluated(turn), `turn ${k + 1}`).toBeLessThanOrEqual(
        (run.newTokens[k] as number) + 2,
      );
      // The whole previous turn, prompt and reply, came from the state.
      expect(turn.usage.prompt_tokens_details?.cached_tokens).toBeGreaterThanOrEqual(
        turn.usage.prompt_tokens - (run.newTokens[k] as number) - 2,
      );
    }
  });

  it("a second user with the same system prompt evaluates only their own tokens, also from a stored conversation that diverges", async () => {
    const warm = await load({
      stateCache: { directory: folder("users"), capacityBytes: "64mb" },
    });
    const shared = warm.countTokens(`system: ${SYSTEM_PROMPT}`);
    expect(shared).toBeGreaterThan(180);
    const users = [QUESTIONS[0], QUESTIONS[3], QUESTIONS[4]] as string[];
    const answers: string[] = [];
    for (const [i, question] of users.entries()) {
      const messages: ChatMessage[] = [
        { role: "system", content: SYSTEM_PROMPT },
        { role: "user", content: question },
      ];
      // The third user comes after an unrelated prompt: the live sequence holds nothing of theirs.
      if (i === 2) await complete(warm, "user: something else entirely\nassistant:");
      const turn = await chatTurn(warm, messages);
      answers.push(turn.text);
      expect(turn.text).toBe((await chatTurn(cold, messages)).text);
      if (i === 0) continue;
      const own = warm.countTokens(render(messages)) - shared;
      expect(evaluated(turn), `user ${i + 1}`).toBeLessThanOrEqual(own + 2);
      expect(turn.report?.source).toBe(i === 2 ? "snapshot" : "live");
    }
  });

  it("an exact repeat reloads its own state once another prompt has ran, and in a second engine on the same folder", async () => {
    const states = folder("repeat");
    const prompt = "The quick brown fox";
    const fresh = await complete(cold, prompt);
    const writer = await load({ stateCache: { directory: states, capacityBytes: "64mb" } });
    expect((await complete(writer, prompt)).text).toBe(fresh.text);
    await complete(writer, "Something else entirely, long enough to be saved as well");
    const loadsBefore = writer.stateCache?.restored as number;
    const again = await complete(writer, prompt);
    expect(again.report?.source).toBe("snapshot");
    expect(writer.stateCache?.restored).toBe(loadsBefore + 1);
    expect(again.text).toBe(fresh.text);
    expect(again.body.usage.completion_tokens).toBe(fresh.body.usage.completion_tokens);
    // One token is always evaluated, for the logits the first answer token is sampled from.
    expect(again.report?.reused).toBe((again.report?.promptTokens as number) - 1);
    await writer.close();

    const second = await load({ stateCache: { directory: states, capacityBytes: "64mb" } });
    const restarted = await complete(second, prompt);
    expect(restarted.report?.source).toBe("snapshot");
    expect(second.stateCache?.restored).toBe(1);
    expect(restarted.text).toBe(fresh.text);
  });

  it("never reports more completion tokens than max_tokens", async () => {
    for (const prompt of [
      "Hello",
      "user: What is a radix tree?\nassistant:",
      "The quick brown fox",
    ]) {
      const { body } = await complete(cold, prompt, 50);
      expect(body.choices[0]?.finish_reason).toBe("length");
      expect(body.usage.completion_tokens).toBeLessThanOrEqual(50);
      expect(body.usage.completion_tokens).toBeGreaterThan(40);
    }
    const turn = await chatTurn(cold, [{ role: "user", content: "Hello" }], 50);
    expect(turn.usage.completion_tokens).toBeLessThanOrEqual(50);
  });
});

describe("state tiers", () => {
  it("a state refused by the first tier goes to the disk tier; a disk hit is promoted when the first tier has room", async () => {
    const disk = folder("disk");
    const prompt = `${SYSTEM_PROMPT}\nuser: ${QUESTIONS[1]}\nassistant:`;
    const fresh = await complete(cold, prompt);
    const small = await load({
      stateCache: {
        directory: folder("ram-small"),
        capacityBytes: "1kb", // smaller than any state: every one is refused here
        disk: { directory: disk, capacityBytes: "64mb" },
      },
    });
    await complete(small, prompt);
    await small.onIdle();
    expect(small.stateCache?.prefixes.size).toBe(0);
    expect(small.stateCache?.diskPrefixes?.size).toBe(1);
    expect(readdirSync(disk).filter((f) => f.endsWith(".state"))).toHaveLength(1);
    await complete(small, "user: something else entirely\nassistant:");
    const fromDisk = await complete(small, prompt);
    expect(fromDisk.report?.source).toBe("snapshot");
    expect(fromDisk.text).toBe(fresh.text);
    await small.close();

    const roomy = await load({
      stateCache: {
        directory: folder("ram-roomy"),
        capacityBytes: "64mb",
        disk: { directory: disk, capacityBytes: "64mb" },
      },
    });
    const promoted = await complete(roomy, prompt);
    await roomy.onIdle();
    expect(promoted.report?.source).toBe("snapshot");
    expect(promoted.text).toBe(fresh.text);
    expect(roomy.stateCache?.prefixes.size).toBeGreaterThanOrEqual(1);
    expect(roomy.stateCache?.promoted).toBe(1);
  });

  it("a state the memory folder cannot take (a full tmpfs) is written to the disk tier", async () => {
    const ram = folder("ram-gone");
    const disk = folder("disk-direct");
    const engine = await load({
      stateCache: {
        directory: ram,
        capacityBytes: "64mb",
        disk: { directory: disk, capacityBytes: "64mb" },
      },
    });
    rmSync(ram, { recursive: true }); // every write there now fails
    const prompt = `${SYSTEM_PROMPT}\nuser: ${QUESTIONS[2]}\nassistant:`;
    await complete(engine, prompt);
    await engine.onIdle();
    expect(engine.stateCache?.diskPrefixes?.size).toBe(1);
    await complete(engine, "user: something else entirely\nassistant:");
    const again = await complete(engine, prompt);
    expect(again.report?.source).toBe("snapshot");
    expect(again.text).toBe((await complete(cold, prompt)).text);
  });

  it("after a restart with the disk tier, turn 7 of a chat evaluates only its new tokens", async () => {
    const disk = folder("restart-disk");
    const first = await load({
      stateCache: {
        directory: folder("restart-ram"),
        capacityBytes: "64mb",
        disk: { directory: disk, capacityBytes: "64mb" },
      },
    });
    const run = await runChat(first, QUESTIONS.slice(0, 6));
    expect(run.turns.map((t) => t.text)).toEqual(reference.turns.slice(0, 6).map((t) => t.text));
    await first.close();

    const second = await load({
      stateCache: {
        directory: folder("restart-ram"), // memory does not survive a restart
        capacityBytes: "64mb",
        disk: { directory: disk, capacityBytes: "64mb" },
      },
    });
    const seventh = await runChat(second, QUESTIONS.slice(6, 7), { history: run.history });
    const turn = seventh.turns[0] as ChatRun["turns"][number];
    expect(turn.report?.source).toBe("snapshot");
    expect(evaluated(turn)).toBeLessThanOrEqual((seventh.newTokens[0] as number) + 2);
    expect(turn.text).toBe(reference.turns[6]?.text);
  });
});

describe("slots", () => {
  it("with concurrency 2, interleaved conversations each keep their slot's live state", async () => {
    const engine = await load({
      concurrency: 2,
      stateCache: { directory: folder("slots"), capacityBytes: "64mb" },
    });
    const a: ChatMessage[] = [{ role: "system", content: SYSTEM_PROMPT }];
    const b: ChatMessage[] = [{ role: "system", content: SYSTEM_PROMPT }];
    const questions = { a: [0, 2, 4], b: [1, 3, 5] };
    let loadsAfterFirstTurns = 0;
    for (let turn = 0; turn < 3; turn++) {
      for (const [name, history] of [
        ["a", a],
        ["b", b],
      ] as const) {
        const before =
          turn === 0
            ? 0
            : engine.countTokens(
                `${render(history.slice(0, -1))} ${(history.at(-1) as ChatMessage).content}`,
              );
        history.push({
          role: "user",
          content: QUESTIONS[questions[name][turn] as number] as string,
        });
        const result = await chatTurn(engine, history);
        expect(result.text).toBe((await chatTurn(cold, history)).text);
        history.push({ role: "assistant", content: result.text });
        if (turn === 0) {
          loadsAfterFirstTurns = engine.stateCache?.restored as number;
          continue;
        }
        expect(result.report?.source, `${name}${turn + 1}`).toBe("live");
        expect(evaluated(result)).toBeLessThanOrEqual(
          engine.countTokens(render(history.slice(0, -1))) - before + 2,
        );
      }
    }
    expect(engine.stateCache?.restored).toBe(loadsAfterFirstTurns);
  });
});
