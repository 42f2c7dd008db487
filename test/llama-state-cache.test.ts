import { copyFileSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { LlamaEngine, modelFingerprint } from "../src/llama.js";
import { MODEL_PATH } from "./helpers/llama-upstream.js";

const dir = mkdtempSync(join(tmpdir(), "infercache-state-"));
let cold: LlamaEngine;
let warm: LlamaEngine;

beforeAll(async () => {
  cold = await LlamaEngine.load({ modelPath: MODEL_PATH, modelName: "tiny" });
  warm = await LlamaEngine.load({
    modelPath: MODEL_PATH,
    modelName: "tiny",
    stateCache: { directory: join(dir, "states"), capacityBytes: "256mb" },
  });
}, 60_000);
afterAll(async () => {
  await cold?.close();
  await warm?.close();
});

const system = `system: You are a careful assistant. ${"Answer with facts about caching, keys, stores and queues. ".repeat(12)}`;
async function complete(engine: LlamaEngine, prompt: string) {
  const response = await engine.handle(
    new Request("http://local/v1/completions", {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ model: "tiny", prompt, max_tokens: 12, temperature: 0 }),
    }),
  );
  const body = (await response.json()) as {
    choices: { text: string }[];
    usage: { prompt_tokens_details?: { cached_tokens: number } };
  };
  return {
    text: body.choices[0]?.text as string,
    usage: body.usage,
    report: engine.lastEvaluation,
  };
}

describe("KV-state reuse with node-llama-cpp", () => {
  it("restores a saved prefix, evaluates only the suffix, and answers exactly as a cold evaluation", async () => {
    const first = `${system}\nuser: What is a radix tree?\nassistant:`;
    await complete(warm, first); // saves this prompt's state once the answer is out
    await complete(warm, "user: something unrelated\nassistant:"); // the live sequence moves on
    expect(warm.stateCache?.saved).toBeGreaterThanOrEqual(1);
    const second = `${first} A compressed trie.\nuser: And a KV cache?\nassistant:`;
    const restored = await complete(warm, second);
    const baseline = await complete(cold, second);
    expect(restored.report?.source).toBe("snapshot");
    const promptTokens = restored.report?.promptTokens as number;
    const reused = restored.report?.reused as number;
    expect(reused).toBeGreaterThan(150);
    expect(restored.report?.evaluatedTokens).toBeLessThanOrEqual(promptTokens - reused + 1);
    // A cold run evaluates the whole prompt (the meter counts all but the token sampling starts from).
    expect(baseline.report?.evaluatedTokens).toBeGreaterThanOrEqual(promptTokens - 1);
    expect(restored.report?.evaluatedTokens).toBeLessThan(
      (baseline.report?.evaluatedTokens as number) / 4,
    );
    expect(restored.usage.prompt_tokens_details?.cached_tokens).toBe(reused);
    expect(restored.text).toBe(baseline.text);
  });

  it("uses the live sequence when it already holds the prefix (no file load)", async () => {
    const prompt = `${system}\nuser: Why cache?\nassistant:`;
    await complete(warm, prompt);
    const restoredBefore = warm.stateCache?.restored as number;
    const again = await complete(warm, `${prompt} Because`);
    expect(again.report?.source).toBe("live");
    expect(warm.stateCache?.restored).toBe(restoredBefore);
    expect(again.report?.evaluatedTokens).toBeLessThan(10);
    expect(again.text).toBe((await complete(cold, `${prompt} Because`)).text);
  });

  it("never restores a state saved under another model's fingerprint", async () => {
    const prompt = `${system}\nuser: A question for another model\nassistant:`;
    // The tokens this prompt and its reply become, from an engine that saved them.
    const writer = await LlamaEngine.load({
      modelPath: MODEL_PATH,
      stateCache: { directory: join(dir, "foreign-writer"), capacityBytes: "64mb" },
    });
    await complete(writer, prompt);
    await writer.close();
    const key = [...(writer.stateCache?.prefixes.entries() ?? [])][0]?.key;
    expect(key?.length).toBeGreaterThan(100);
    const engine = await LlamaEngine.load({
      modelPath: MODEL_PATH,
      stateCache: { directory: join(dir, "foreign-reader"), capacityBytes: "64mb" },
    });
    try {
      // A state file indexed for another model, covering this exact prompt.
      const file = join(dir, "foreign.state");
      writeFileSync(file, "not a state");
      engine.stateCache?.prefixes.set(key as Uint32Array, file, {
        namespace: "some-other-model",
        bytes: 11,
      });
      const result = await complete(engine, prompt);
      expect(result.report?.source).toBe("none");
      expect(result.text).toBe((await complete(cold, prompt)).text);
    } finally {
      await engine.close();
    }
  });

  it("fingerprints models by content", async () => {
    const copy = join(dir, "copy.gguf");
    copyFileSync(MODEL_PATH, copy);
    expect(await modelFingerprint(copy)).toBe(await modelFingerprint(MODEL_PATH));
    const bytes = readFileSync(copy);
    bytes[bytes.length - 100] = (bytes[bytes.length - 100] as number) ^ 0xff;
    writeFileSync(copy, bytes);
    expect(await modelFingerprint(copy)).not.toBe(await modelFingerprint(MODEL_PATH));
  });

  it("keeps state files within capacity and deletes evicted ones", async () => {
    const engine = await LlamaEngine.load({
      modelPath: MODEL_PATH,
      stateCache: { directory: join(dir, "small"), capacityBytes: "300kb", minTokens: 4 },
    });
    try {
      for (let i = 0; i < 6; i++)
        await complete(engine, `${system}\nuser: question number ${i}\nassistant:`);
      const cache = engine.stateCache;
      expect(cache?.prefixes.bytes).toBeLessThanOrEqual(300 * 1024);
      await engine.onIdle(); // evicted files are deleted in the background
      const files = readdirSync(join(dir, "small")).filter((f) => f.endsWith(".state"));
      expect(files.length).toBe(cache?.prefixes.size);
    } finally {
      await engine.close();
    }
  });
});

describe("state tiers on disk", () => {
  const prompt = (i: number) => `${system}\nuser: tiered question ${i}\nassistant:`;

  it("rebuilds the index from token files on start, without the process that saved them", async () => {
    const folder = join(dir, "persistent");
    const first = await LlamaEngine.load({
      modelPath: MODEL_PATH,
      stateCache: { directory: folder, capacityBytes: "64mb" },
    });
    await complete(first, prompt(1));
    await first.close();
    const second = await LlamaEngine.load({
      modelPath: MODEL_PATH,
      stateCache: { directory: folder, capacityBytes: "64mb" },
    });
    try {
      expect(second.stateCache?.rebuilt).toBe(1);
      const result = await complete(second, `${prompt(1)} And then`);
      expect(result.report?.source).toBe("snapshot");
      expect(result.text).toBe((await complete(cold, `${prompt(1)} And then`)).text);
    } finally {
      await second.close();
    }
  });

  it("spills states evicted from the first tier to the disk tier and restores from there", async () => {
    const engine = await LlamaEngine.load({
      modelPath: MODEL_PATH,
      stateCache: {
        directory: join(dir, "ram-tier"),
        capacityBytes: "24kb",
        disk: { directory: join(dir, "disk-tier"), capacityBytes: "64mb" },
      },
    });
    try {
      for (let i = 0; i < 5; i++) await complete(engine, prompt(10 + i));
      await complete(engine, "user: reset\nassistant:");
      // The last answer's state is saved after the answer: count files once that save is done.
      await engine.onIdle();
      const cache = engine.stateCache;
      expect(cache?.spilled).toBeGreaterThan(0);
      expect(cache?.prefixes.bytes).toBeLessThanOrEqual(24 * 1024);
      expect(readdirSync(join(dir, "disk-tier")).filter((f) => f.endsWith(".state"))).toHaveLength(
        cache?.diskPrefixes?.size as number,
      );
      const early = await complete(engine, `${prompt(10)} More`);
      expect(early.report?.source).toBe("snapshot");
      expect(early.text).toBe((await complete(cold, `${prompt(10)} More`)).text);
    } finally {
      await engine.close();
    }
  });

  it("removes what a crash left behind: temp files and states without a commit marker", async () => {
    const folder = join(dir, "crashed");
    const engine = await LlamaEngine.load({
      modelPath: MODEL_PATH,
      stateCache: { directory: folder, capacityBytes: "64mb" },
    });
    await complete(engine, prompt(20));
    await engine.close();
    writeFileSync(join(folder, "half-written.state.tmp"), "partial");
    writeFileSync(join(folder, "no-marker.state"), "orphan");
    const again = await LlamaEngine.load({
      modelPath: MODEL_PATH,
      stateCache: { directory: folder, capacityBytes: "64mb" },
    });
    try {
      const left = readdirSync(folder);
      expect(left).not.toContain("half-written.state.tmp");
      expect(left).not.toContain("no-marker.state");
      expect(again.stateCache?.rebuilt).toBe(1);
    } finally {
      await again.close();
    }
  });
});
