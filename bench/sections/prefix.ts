import { execFileSync } from "node:child_process";
import { lookupBench, type MemoryRow, type TtftRow } from "../prefix.js";
import type { ChatBenchResult } from "../prefix-chat.js";
import type { Report, Section } from "../report.js";

export const prefix: Section = {
  name: "prefix",
  title: "prefix cache",
  async run(report: Report) {
    const lookups = lookupBench();
    const at10k = lookups.find((r) => r.entries === 10_000) as { speedup: number; treeUs: number };
    report.check(
      "PrefixCache longestPrefix >= 1000x a linear scan at 10k entries",
      at10k.speedup >= 1000,
      `${Math.round(at10k.speedup)}x`,
    );
    const treeTimes = lookups.map((r) => r.treeUs);
    const growth = (treeTimes[2] as number) / (treeTimes[0] as number);
    report.check(
      "PrefixCache lookup time independent of N (100k vs 1k entries; the scan grows ~100x)",
      growth <= 2,
      `${treeTimes.map((t) => `${t.toFixed(1)} µs`).join(" / ")} (x${growth.toFixed(2)})`,
    );
    const run = JSON.parse(
      execFileSync(process.execPath, ["--expose-gc", "--import", "tsx", "bench/prefix-main.ts"], {
        encoding: "utf8",
      }),
    ) as { memory: MemoryRow; ttft: TtftRow[] };
    const accounted = run.memory.accountedBytes / run.memory.heapGrowthBytes;
    report.check(
      "PrefixCache accounted bytes within 10% of measured heap (10k entries)",
      Math.abs(1 - accounted) <= 0.1,
      `${(accounted * 100).toFixed(0)}% of measured`,
    );
    report.add(`## Prefix cache: longest-prefix lookup against a linear scan

Conversations of one chat app: a shared 200-token system prompt, then turns, 256–2048 tokens
each; every query is a stored conversation plus a new 64-token turn. The scan is
llama-cpp-python's \`_find_longest_prefix_key\` / Gradio's KV demo (compare with every key),
written the same way in TypeScript over the same Uint32Arrays; both agree on every answer.

| stored sequences | PrefixCache.longestPrefix | linear scan | speedup |
|---:|---:|---:|---:|
${lookups.map((r) => `| ${r.entries.toLocaleString("en-US")} | ${r.treeUs.toFixed(1)} µs | ${(r.scanUs / 1000).toFixed(2)} ms | ${Math.round(r.speedup).toLocaleString("en-US")}x |`).join("\n")}

Memory: ${run.memory.entries.toLocaleString("en-US")} entries (256–2048 tokens, each with a 4 KiB state) are
accounted at ${(run.memory.accountedBytes / 1024 / 1024).toFixed(1)} MiB; the measured heap growth
(V8 heap plus ArrayBuffers, after a full GC, own process) is
${(run.memory.heapGrowthBytes / 1024 / 1024).toFixed(1)} MiB.

## Time to first token with a cached prefix (local engine)

\`LlamaEngine\` with \`stateCache\` vs without, the tiny GGUF, one thread, a prompt of about 1,650
tokens whose first ~1,640 were seen before (an earlier follow-up's saved prompt and reply; the live
sequence was moved away first, so the state comes from a snapshot file); median of 5, streaming,
time to the first chunk.

| | prompt tokens | cached tokens | time to first token |
|---|---:|---:|---:|
${run.ttft.map((r) => `| ${r.label} | ${r.promptTokens} | ${r.cachedTokens} | ${r.ttftMs.toFixed(1)} ms |`).join("\n")}`);
    chatSection(
      report,
      JSON.parse(
        execFileSync(process.execPath, ["--import", "tsx", "bench/prefix-chat-main.ts"], {
          encoding: "utf8",
          maxBuffer: 16 * 1024 * 1024,
        }),
      ) as ChatBenchResult,
    );
  },
};

const cell = (tokens: number, ms: number) => `${tokens} tok, ${ms.toFixed(1)} ms`;
const kib = (bytes: number) => `${(bytes / 1024).toFixed(1)} KiB`;

/** The chat table (bench/prefix-chat.ts): tokens evaluated and time to first token per turn. */
function chatSection(
  report: { check: Report["check"]; add: Report["add"] },
  chat: ChatBenchResult,
) {
  const later = chat.chat.filter((row) => row.turn >= 2);
  report.check(
    "6-turn chat: from turn 2 on, prompt tokens evaluated per turn <= the turn's new tokens + 2",
    later.every((row) => row.evaluated.now <= row.newTokens + 2),
    later.map((row) => `${row.evaluated.now}/${row.newTokens}`).join(", "),
  );
  report.check(
    "two users sharing a system prompt: the second evaluates <= its own tokens + 2",
    chat.users.every((row) => row.evaluated.now <= row.ownTokens + 2),
    chat.users.map((row) => `${row.evaluated.now}/${row.ownTokens}`).join(", "),
  );
  report.check(
    "after a restart with the disk tier, turn 7 evaluates <= its new tokens + 2",
    chat.restart.evaluated.now <= chat.restart.newTokens + 2,
    `${chat.restart.evaluated.now}/${chat.restart.newTokens}`,
  );
  report.check(
    "every reused generation gives the cold run's temperature-0 text",
    chat.sameText,
    chat.sameText ? "same text, every turn" : "a text differed",
  );
  const sum = (pick: (row: ChatBenchResult["chat"][number]) => number) =>
    later.reduce((total, row) => total + pick(row), 0);
  report.add(`## KV-state reuse in multi-turn chat and across users (local engine)

The tiny GGUF, one thread, a ~200-token system prompt, ~30-token user turns, replies of up to 40
tokens at temperature 0, each sent back in the next turn (chat completions, streamed). Three
engines in one process, round-robin: **no cache** (\`LlamaEngine\` without \`stateCache\`),
**before** (the engine and \`LlamaStateCache\` as they were at 3d566bd, kept verbatim in
\`bench/legacy/\`: prefix-only restore, a save at the prompt boundary) and **now**
(\`LlamaEngine\` with \`stateCache\`). Each cell: prompt tokens evaluated before the answer (BOS
included) and time to the first streamed token; medians of ${chat.rounds} rounds, each with its own
system prompt. Between turns the client waits for the engine to be idle, as a user reading and
typing does, so no turn's time includes the previous answer's save; "after the answer" is that
work for **now** (evaluating what the reply's re-tokenization adds, saving the state).

| turn | new tokens | no cache | before (3d566bd) | now | now, after the answer |
|---:|---:|---:|---:|---:|---:|
${chat.chat.map((r) => `| ${r.turn} | ${r.newTokens} | ${cell(r.evaluated["no cache"], r.ttftMs["no cache"])} | ${cell(r.evaluated.before, r.ttftMs.before)} | ${cell(r.evaluated.now, r.ttftMs.now)} | ${r.afterAnswer} tok, ${r.afterAnswerMs.toFixed(1)} ms |`).join("\n")}

Turns 2–6 together: no cache evaluated ${sum((r) => r.evaluated["no cache"])} prompt tokens, before
${sum((r) => r.evaluated.before)}, now ${sum((r) => r.evaluated.now)}.

| two users, same system prompt | own tokens | no cache | before (3d566bd) | now |
|---|---:|---:|---:|---:|
${chat.users.map((r) => `| ${r.label} | ${r.ownTokens} | ${cell(r.evaluated["no cache"], r.ttftMs["no cache"])} | ${cell(r.evaluated.before, r.ttftMs.before)} | ${cell(r.evaluated.now, r.ttftMs.now)} |`).join("\n")}
| turn 7 after a restart (disk tier; before: its tmpfs folder) | ${chat.restart.newTokens} | ${cell(chat.restart.evaluated["no cache"], chat.restart.ttftMs["no cache"])} | ${cell(chat.restart.evaluated.before, chat.restart.ttftMs.before)} | ${cell(chat.restart.evaluated.now, chat.restart.ttftMs.now)} |

State written per turn (median): before ${chat.chat.map((r) => kib(r.savedBytes.before)).join(", ")} (the prompt);
now ${chat.chat.map((r) => kib(r.savedBytes.now)).join(", ")} (prompt and reply, the previous turn's
state deleted). A prompt-boundary save as well would write about as much again each turn and
reuse nothing more: every prompt shares at least as many tokens with the prompt-and-reply state.`);
}
