import { execFileSync } from "node:child_process";
import type { LlmBenchRow } from "../llm.js";
import type { Report, Section } from "../report.js";

export const llm: Section = {
  name: "llm",
  title: "LLM layer through the OpenAI SDK (own process)",
  async run(report: Report) {
    const llm = JSON.parse(
      execFileSync(process.execPath, ["--import", "tsx", "bench/llm-main.ts"], {
        encoding: "utf8",
      }),
    ) as { rows: LlmBenchRow[]; overheadMs: number };
    report.check(
      "cachingFetch overhead on a miss under 1 ms beyond the upstream (p50)",
      llm.overheadMs < 1,
      `${llm.overheadMs.toFixed(2)} ms`,
    );
    report.add(`## LLM calls through the OpenAI SDK (cachingFetch, local llama engine)

The real \`openai\` SDK against \`LlamaEngine\` (node-llama-cpp, the tiny GGUF, one thread) on a
loopback port: chat completions of 8 tokens at temperature 0. Direct and cached misses are
interleaved on distinct prompts (200 each), so the engine's speed cancels out; then 1,000 hits and
500 streamed hits. Own process.

| | p50 | p90 | samples |
|---|---:|---:|---:|
${llm.rows.map((r) => `| ${r.label} | ${r.p50Ms.toFixed(3)} ms | ${r.p90Ms.toFixed(3)} ms | ${r.samples} |`).join("\n")}

Overhead of cachingFetch on a miss (p50 difference): ${llm.overheadMs.toFixed(2)} ms.`);
  },
};
