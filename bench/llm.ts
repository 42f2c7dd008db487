/**
 * The LLM layer through the real OpenAI SDK against the local llama engine on loopback: hit
 * latency against miss latency, and what cachingFetch adds to a miss (interleaved direct and
 * cached calls on distinct prompts, so the engine's speed cancels out).
 */
import OpenAI from "openai";
import { cachingFetch } from "../src/llm.js";
import { startUpstream } from "../test/helpers/llama-upstream.js";

export interface LlmBenchRow {
  label: string;
  p50Ms: number;
  p90Ms: number;
  samples: number;
}

function summary(label: string, samples: number[]): LlmBenchRow {
  const sorted = [...samples].sort((a, b) => a - b);
  const at = (q: number) =>
    sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] as number;
  return { label, p50Ms: at(0.5), p90Ms: at(0.9), samples: samples.length };
}

export async function llmBench(): Promise<{ rows: LlmBenchRow[]; overheadMs: number }> {
  const upstream = await startUpstream();
  try {
    const direct = new OpenAI({ apiKey: "k", baseURL: upstream.baseURL, maxRetries: 0 });
    const cached = new OpenAI({
      apiKey: "k",
      baseURL: upstream.baseURL,
      maxRetries: 0,
      fetch: cachingFetch(),
    });
    const request = (content: string) => ({
      model: "tiny",
      messages: [{ role: "user" as const, content }],
      temperature: 0,
      max_tokens: 8,
    });
    const streamed = () => ({ ...request("streamed"), stream: true as const });
    const time = async (run: () => Promise<unknown>) => {
      const started = performance.now();
      await run();
      return performance.now() - started;
    };
    for (let i = 0; i < 20; i++) {
      await direct.chat.completions.create(request(`warm ${i}`));
      await cached.chat.completions.create(request(`warm ${i}`));
    }
    const directMiss: number[] = [];
    const cachedMiss: number[] = [];
    for (let i = 0; i < 200; i++) {
      directMiss.push(
        await time(() => direct.chat.completions.create(request(`direct prompt ${i}`))),
      );
      cachedMiss.push(
        await time(() => cached.chat.completions.create(request(`cached prompt ${i}`))),
      );
    }
    const hits: number[] = [];
    for (let i = 0; i < 1000; i++)
      hits.push(
        await time(() => cached.chat.completions.create(request(`cached prompt ${i % 200}`))),
      );
    const streamHits: number[] = [];
    await (async () => {
      for await (const _ of await cached.chat.completions.create(streamed())) {
      }
    })();
    for (let i = 0; i < 500; i++) {
      streamHits.push(
        await time(async () => {
          for await (const _ of await cached.chat.completions.create(streamed())) {
          }
        }),
      );
    }
    const rows = [
      summary("miss, plain fetch (the local engine, 8 tokens)", directMiss),
      summary("miss through cachingFetch", cachedMiss),
      summary("hit through cachingFetch", hits),
      summary("streamed hit through cachingFetch (whole stream)", streamHits),
    ];
    const overheadMs = (rows[1] as LlmBenchRow).p50Ms - (rows[0] as LlmBenchRow).p50Ms;
    return { rows, overheadMs };
  } finally {
    await upstream.close();
  }
}
