/**
 * KV-state reuse in real multi-turn chat and across users, on the local engine (the tiny GGUF,
 * one thread): a 6-turn chat (a ~200-token system prompt, ~30-token user turns, replies of up to
 * 40 tokens at temperature 0, each sent back in the next turn), two users sharing the system
 * prompt, and turn 7 after a restart with a disk tier. Three contenders, each its own engine in
 * this process, run round-robin:
 * - no cache: `LlamaEngine` without `stateCache` (every request evaluates its whole prompt);
 * - before: the engine and state cache as they were at 3d566bd (bench/legacy/, kept verbatim),
 *   prefix-only restore and a save at the prompt boundary;
 * - now: `LlamaEngine` with `stateCache`.
 * Each round's system prompt starts with the round number, so no round reuses another's state.
 * Between turns the benchmark waits for the engine to be idle (a user reads and types between
 * turns), so time to first token never includes the previous answer's save.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { LlamaEngine } from "../src/llama.js";
import {
  type ChatEngine,
  type ChatMessage,
  type ChatRun,
  chatTurn,
  QUESTIONS,
  render,
  runChat,
  SYSTEM_PROMPT,
} from "../test/helpers/llama-chat.js";
import { MODEL_PATH } from "../test/helpers/llama-upstream.js";
import { LegacyLlamaEngine } from "./legacy/engine.js";

type Contender = "no cache" | "before" | "now";
const CONTENDERS: Contender[] = ["no cache", "before", "now"];

export interface ChatTurnRow {
  turn: number;
  /** Tokens the turn's prompt adds to the previous turn's prompt and reply. */
  newTokens: number;
  promptTokens: number;
  /** Per contender: prompt tokens evaluated before the answer (prompt minus reused), median. */
  evaluated: Record<Contender, number>;
  /** Per contender: time to the first streamed token, median, ms. */
  ttftMs: Record<Contender, number>;
  /** Now: tokens evaluated after the answer to align the kept state with the reply, median. */
  afterAnswer: number;
  /** Now: milliseconds from the answer's end until the state was kept and saved, median. */
  afterAnswerMs: number;
  /** Bytes of the state each saved after this turn, median (0: none saved). */
  savedBytes: Record<"before" | "now", number>;
}

export interface UsersRow {
  label: string;
  /** The second user's own tokens (the prompt less the shared system prompt). */
  ownTokens: number;
  evaluated: Record<Contender, number>;
  ttftMs: Record<Contender, number>;
}

export interface RestartRow {
  newTokens: number;
  evaluated: Record<Contender, number>;
  ttftMs: Record<Contender, number>;
}

export interface ChatBenchResult {
  rounds: number;
  chat: ChatTurnRow[];
  users: UsersRow[];
  restart: RestartRow;
  /** Every reused generation matched the cold engine's text. */
  sameText: boolean;
}

const median = (values: number[]) =>
  [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)] as number;

interface Idle {
  onIdle(): Promise<void>;
  close(): Promise<void>;
}

/**
 * The three contenders of one round. The older cache needs a folder: tmpfs, like today's default
 * memory tier, under a name kept across the round's restart (a tmpfs outlives a process).
 */
async function engines(round: number, disk: string) {
  const capacityBytes = "256mb";
  const loaded = {
    "no cache": await LlamaEngine.load({ modelPath: MODEL_PATH, modelName: "tiny" }),
    // The legacy cache's directory is required; tmpfs like today's default.
    before: await LegacyLlamaEngine.load({
      modelPath: MODEL_PATH,
      modelName: "tiny",
      stateCache: { directory: legacyFolder(round), capacityBytes },
    }),
    now: await LlamaEngine.load({
      modelPath: MODEL_PATH,
      modelName: "tiny",
      stateCache: {
        capacityBytes,
        disk: { directory: join(disk, "now"), capacityBytes },
      },
    }),
  } satisfies Record<Contender, ChatEngine & Idle>;
  // One short request each, so no contender's first measured request pays for a cold start.
  for (const name of CONTENDERS)
    await chatTurn(loaded[name], [{ role: "user", content: "warm up" }], 1);
  return loaded;
}

const legacyFolder = (round: number) =>
  join("/dev/shm", `infercache-bench-before-${process.pid}-${round}`);

const evaluatedOf = (report: ChatEngine["lastEvaluation"]) =>
  report === undefined ? Number.NaN : report.promptTokens - report.reused;

/** Bytes of the state file covering the most tokens (the one the last turn saved). */
function newestState(entries: Iterable<{ key: { length: number }; bytes: number }>): number {
  let newest: { key: { length: number }; bytes: number } | undefined;
  for (const entry of entries)
    if (newest === undefined || entry.key.length > newest.key.length) newest = entry;
  // The index counts 256 bytes of bookkeeping and 4 a token besides the file.
  return newest === undefined ? 0 : newest.bytes - 256 - 4 * newest.key.length;
}

export async function chatBench(rounds = 5): Promise<ChatBenchResult> {
  const dir = mkdtempSync(join(tmpdir(), "infercache-chat-bench-"));
  const count = (await LlamaEngine.load({ modelPath: MODEL_PATH })) as LlamaEngine;
  let sameText = true;
  const samples: Record<string, number[]> = {};
  const users: Record<string, number[]> = {};
  const restart: Record<string, number[]> = {};
  const push = (into: Record<string, number[]>, name: string, value: number) => {
    const list = into[name] ?? [];
    list.push(value);
    into[name] = list;
  };
  const sample = (turn: number, name: string, value: number) =>
    push(samples, `${turn}:${name}`, value);
  try {
    for (let round = 0; round < rounds; round++) {
      rmSync(legacyFolder(round), { recursive: true, force: true });
      const system = `Round ${round + 1}. ${SYSTEM_PROMPT}`;
      const disk = join(dir, `disk-${round}`);
      const contenders = await engines(round, disk);
      // Round-robin: each round starts with another contender.
      const order = CONTENDERS.map(
        (_, i) => CONTENDERS[(i + round) % CONTENDERS.length] as Contender,
      );
      const texts: Partial<Record<Contender, string[]>> = {};
      const histories: Partial<Record<Contender, ChatMessage[]>> = {};
      // The 6-turn chat, contender after contender.
      for (const name of order) {
        const engine = contenders[name];
        // After each turn: how long the engine worked on after the answer, what it saved.
        const afterMs: number[] = [];
        const savedBytes: number[] = [];
        const settle = async () => {
          const ended = performance.now();
          await engine.onIdle();
          afterMs.push(performance.now() - ended);
          savedBytes.push(newestState(engine.stateCache?.prefixes.entries() ?? []));
        };
        let started = false;
        const run = await runChat(engine, QUESTIONS.slice(0, 6), {
          system,
          count: (text) => count.countTokens(text),
          beforeTurn: async () => {
            if (started) await settle();
            started = true;
          },
        });
        await settle();
        texts[name] = run.turns.map((t) => t.text);
        histories[name] = run.history;
        for (const [k, turn] of run.turns.entries()) {
          sample(k, "newTokens", run.newTokens[k] as number);
          sample(k, "promptTokens", turn.usage.prompt_tokens);
          sample(k, `evaluated:${name}`, evaluatedOf(turn.report));
          sample(k, `ttft:${name}`, turn.ttftMs);
          sample(k, `afterMs:${name}`, afterMs[k] as number);
          sample(k, `saved:${name}`, savedBytes[k] as number);
          if (name === "now") sample(k, "afterAnswer", turn.report?.afterAnswerTokens ?? 0);
        }
      }
      if (
        texts.before?.join("\u0000") !== texts["no cache"]?.join("\u0000") ||
        texts.now?.join("\u0000") !== texts["no cache"]?.join("\u0000")
      )
        sameText = false;

      // Two users with the same system prompt: the second right after the first (live), and a
      // third after an unrelated prompt has moved the live sequence away (a stored state).
      for (const name of order) {
        const engine = contenders[name];
        const ask = async (question: string) => {
          await engine.onIdle();
          return chatTurn(engine, [
            { role: "system", content: `${system} Users.` },
            { role: "user", content: question },
          ]);
        };
        await ask(QUESTIONS[0] as string);
        const second = await ask(QUESTIONS[3] as string);
        await engine.onIdle();
        await chatTurn(engine, [{ role: "user", content: "something else entirely" }]);
        const third = await ask(QUESTIONS[4] as string);
        push(users, `live:evaluated:${name}`, evaluatedOf(second.report));
        push(users, `live:ttft:${name}`, second.ttftMs);
        push(users, `stored:evaluated:${name}`, evaluatedOf(third.report));
        push(users, `stored:ttft:${name}`, third.ttftMs);
      }
      const shared = count.countTokens(`system: ${system} Users.`);
      for (const [label, question] of [
        ["live", QUESTIONS[3]],
        ["stored", QUESTIONS[4]],
      ] as const) {
        push(
          users,
          `${label}:own`,
          count.countTokens(
            render([
              { role: "system", content: `${system} Users.` },
              { role: "user", content: question as string },
            ]),
          ) - shared,
        );
      }

      // Turn 7 after a restart: each contender closes and a new engine opens on its folders.
      const sevenths: Partial<Record<Contender, string>> = {};
      for (const name of CONTENDERS) await contenders[name].close();
      const restarted = await engines(round, disk);
      for (const name of order) {
        const engine = restarted[name];
        const history = [...(histories[name] as ChatMessage[])];
        // The engines' own 6-turn histories are the same text (checked above); each goes on with its own.
        const seventh = await runChat(engine, QUESTIONS.slice(6, 7), {
          history,
          count: (text) => count.countTokens(text),
        });
        const turn = seventh.turns[0] as ChatRun["turns"][number];
        push(restart, "newTokens", seventh.newTokens[0] as number);
        push(restart, `evaluated:${name}`, evaluatedOf(turn.report));
        push(restart, `ttft:${name}`, turn.ttftMs);
        sevenths[name] = turn.text;
      }
      if (sevenths.before !== sevenths["no cache"] || sevenths.now !== sevenths["no cache"])
        sameText = false;
      for (const name of CONTENDERS) await restarted[name].close();
      rmSync(legacyFolder(round), { recursive: true, force: true });
    }
  } finally {
    await count.close();
    rmSync(dir, { recursive: true, force: true });
  }
  const per = (record: Record<string, number[]>, name: string) =>
    median(record[name] ?? [Number.NaN]);
  const byContender = (record: Record<string, number[]>, prefix: string) =>
    Object.fromEntries(CONTENDERS.map((c) => [c, per(record, `${prefix}${c}`)])) as Record<
      Contender,
      number
    >;
  const chat: ChatTurnRow[] = [0, 1, 2, 3, 4, 5].map((k) => ({
    turn: k + 1,
    newTokens: per(samples, `${k}:newTokens`),
    promptTokens: per(samples, `${k}:promptTokens`),
    evaluated: byContender(samples, `${k}:evaluated:`),
    ttftMs: byContender(samples, `${k}:ttft:`),
    afterAnswer: per(samples, `${k}:afterAnswer`),
    afterAnswerMs: per(samples, `${k}:afterMs:now`),
    savedBytes: { before: per(samples, `${k}:saved:before`), now: per(samples, `${k}:saved:now`) },
  }));
  return {
    rounds,
    chat,
    users: (["live", "stored"] as const).map((label) => ({
      label:
        label === "live"
          ? "second user, right after the first"
          : "third user, after an unrelated prompt",
      ownTokens: per(users, `${label}:own`),
      evaluated: byContender(users, `${label}:evaluated:`),
      ttftMs: byContender(users, `${label}:ttft:`),
    })),
    restart: {
      newTokens: per(restart, "newTokens"),
      evaluated: byContender(restart, "evaluated:"),
      ttftMs: byContender(restart, "ttft:"),
    },
    sameText,
  };
}
