/**
 * llama-cpp-python's caching examples (RAM cache, disk cache across restarts, cache management,
 * a timing comparison, memory bounds, cleanup), written against `LlamaEngine` and its
 * `LlamaStateCache`. A state holds a prompt and its reply as the model evaluated them; a later
 * prompt sharing a prefix with it evaluates only what differs. Runs the tiny test model
 * (the bundled models/llama-2-tiny-random.gguf, or INFERCACHE_MODEL), so the text is gibberish; the
 * reuse is real.
 */
import { existsSync, mkdtempSync, readdirSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { LlamaEngine, type LlamaEngineOptions, type LlamaStateCache } from "infercache/llama";

const modelPath =
  process.env.INFERCACHE_MODEL ??
  fileURLToPath(new URL("../models/llama-2-tiny-random.gguf", import.meta.url));

async function complete(engine: LlamaEngine, prompt: string, maxTokens: number, temperature = 0) {
  const response = await engine.handle(
    new Request("http://local/v1/completions", {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ prompt, max_tokens: maxTokens, temperature }),
    }),
  );
  const body = (await response.json()) as { choices: { text: string }[] };
  const report = engine.lastEvaluation;
  return {
    text: body.choices[0]?.text ?? "",
    evaluated: (report?.promptTokens ?? 0) - (report?.reused ?? 0),
    reused: report?.reused ?? 0,
  };
}

const load = (options: Omit<LlamaEngineOptions, "modelPath"> = {}) =>
  LlamaEngine.load({ modelPath, ...options });

export async function main(): Promise<void> {
  if (!existsSync(modelPath)) {
    console.log(`skipped: no model at ${modelPath} (set INFERCACHE_MODEL to a GGUF file)`);
    return;
  }
  const cacheDir = mkdtempSync(join(tmpdir(), "my_llama_cache-"));
  try {
    // Basic RAM caching: states in memory (a private tmpfs folder), 1 GiB of them, and a disk
    // tier (used further down) for what memory evicts, and for everything when the engine closes.
    const llm = await load({
      stateCache: { capacityBytes: "1gb", disk: { directory: cacheDir, capacityBytes: "2gb" } },
    });
    const cache = llm.stateCache as LlamaStateCache;
    const first = await complete(llm, "The capital of France is", 10);
    await complete(llm, "Something else in between, so the repeat needs its saved state", 10);
    const second = await complete(llm, "The capital of France is", 10);
    console.log(
      `basic: the repeat evaluated ${second.evaluated} prompt token (first: ${first.evaluated}), same text: ${second.text === first.text}; cache size: ${cache.size} items`,
    );

    // Cache management: a prompt that adds a state is a miss; the duplicate adds none.
    await llm.onIdle(); // the last answer's state is saved after the answer: let it land first
    await cache.clear();
    const prompts = [
      "What is machine learning?",
      "Explain neural networks.",
      "What is deep learning?",
      "Define artificial intelligence.",
      "What is machine learning?", // Duplicate for cache hit
    ];
    const stats = { hits: 0, misses: 0 };
    for (const [i, prompt] of prompts.entries()) {
      const initialSize = cache.size;
      await complete(llm, prompt, 30);
      await llm.onIdle(); // the state is saved once the answer is out
      const finalSize = cache.size;
      if (finalSize > initialSize) {
        stats.misses++;
        console.log(`Prompt ${i + 1}: CACHE MISS - New cache size: ${finalSize}`);
      } else {
        stats.hits++;
        console.log(`Prompt ${i + 1}: CACHE HIT - Cache size: ${finalSize}`);
      }
    }
    console.log(`Cache statistics: hits ${stats.hits}, misses ${stats.misses}`);

    // Cache performance: the same prompt twice, without and with a cache (prompt tokens
    // evaluated, rather than seconds, which a tiny model makes too small to show).
    await llm.onIdle();
    await cache.clear();
    const prompt = "Explain the concept of recursion in programming";
    const noCache = await load();
    for (const run of ["first", "second"]) {
      const plain = await complete(noCache, prompt, 100, 0.7);
      const cached = await complete(llm, prompt, 100, 0.7);
      console.log(
        `performance, ${run} run: no cache evaluated ${plain.evaluated} prompt tokens, with cache ${cached.evaluated}`,
      );
    }
    await noCache.close();

    // Persistent disk caching: the disk tier outlives the engine (close() moves memory there).
    await llm.onIdle();
    await cache.clear();
    const facts: string[] = [];
    for (let i = 0; i < 3; i++)
      facts.push((await complete(llm, `Write a fact about number ${i}:`, 50)).text);
    await llm.close();
    // A restart, with room in memory for about four states of this model.
    const capacity = 16 * 1024;
    const restarted = await load({
      stateCache: { capacityBytes: capacity, disk: { directory: cacheDir, capacityBytes: "2gb" } },
    });
    const states = restarted.stateCache as LlamaStateCache;
    const again = await complete(restarted, "Write a fact about number 0:", 50);
    console.log(
      `disk: after a restart the cache contains ${states.size} items; fact 0 again evaluated ${again.evaluated} prompt token, same text: ${again.text === facts[0]}`,
    );

    // Memory usage: the capacity bounds what memory holds; the rest waits on disk.
    for (let i = 0; i < 10; i++) await complete(restarted, `Write about topic number ${i}:`, 50);
    await restarted.onIdle();
    const held = states.prefixes.bytes;
    console.log(
      `memory: capacity 16 KiB, ${states.prefixes.size} items holding ${(held / 1024).toFixed(1)} KiB (within capacity: ${held <= capacity}), ${states.diskPrefixes?.size} on disk`,
    );

    // Cleanup and maintenance: the disk folder's size, then clear().
    const bytes = readdirSync(cacheDir).reduce(
      (sum, f) => sum + statSync(join(cacheDir, f)).size,
      0,
    );
    await states.clear();
    console.log(
      `cleanup: ${(bytes / 1024).toFixed(1)} KiB of state files on disk before clear(), ${readdirSync(cacheDir).length} files after, ${states.size} items`,
    );
    await restarted.close();
  } finally {
    rmSync(cacheDir, { recursive: true, force: true });
  }
}
