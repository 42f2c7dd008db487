/**
 * The four kinds of function `cache(fn)` handles, like Gradio's cache_demo: a sync image
 * classifier, an async translator, a sync generator that streams a chat reply (mutating and
 * re-yielding one history array), and an async generator. Each call is made twice: the second
 * is served from the cache.
 */
import { cache, trackCacheUsage } from "infercache";

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
function busyWait(ms: number): void {
  const end = performance.now() + ms;
  while (performance.now() < end) {}
}

// Sync: content-hashed, so a new but equal image hits.
const classifyImage = cache((image: Float32Array) => {
  busyWait(300); // stands for a model forward pass
  const mean = image.reduce((a, b) => a + b, 0) / image.length;
  return { label: mean > 0.5 ? "bright" : "dark", confidence: Math.abs(mean - 0.5) * 2 };
});

// Async.
const translate = cache(async (text: string, targetLanguage: string) => {
  await sleep(300);
  return `[${targetLanguage}] ${text.split("").reverse().join("")}`;
});

// Sync generator that mutates and re-yields one history array: every state is recorded.
const chatRespond = cache(function* (history: readonly string[]) {
  const reply: string[] = [...history, ""];
  for (const char of "Hello there!") {
    busyWait(20);
    reply[reply.length - 1] += char;
    yield reply;
  }
});

// Async generator.
const summarize = cache(async function* (text: string) {
  for (const word of text.split(" ").slice(0, 5)) {
    await sleep(60);
    yield word;
  }
});

async function timed(label: string, run: () => unknown): Promise<void> {
  const report = await trackCacheUsage(async () => run());
  const badge =
    report.usage === "full"
      ? `⚡ from cache: ~${(report.savedMs / 1000).toFixed(1)} s -> ${(report.durationMs / 1000).toFixed(3)} s`
      : "computed";
  console.log(`${label.padEnd(34)} ${badge}`);
}

export async function main(): Promise<void> {
  for (const round of [1, 2]) {
    console.log(`round ${round}`);
    await timed("classifyImage(new Float32Array)", () =>
      classifyImage(new Float32Array(224 * 224).fill(0.7)),
    );
    await timed("translate('good morning', 'fr')", () => translate("good morning", "fr"));
    await timed("chatRespond(['hi'])", () => {
      let last: string[] = [];
      for (const state of chatRespond(["hi"])) last = [...state];
      return last;
    });
    await timed("summarize(...)", async () => {
      const words: string[] = [];
      for await (const word of summarize("caching makes repeated model calls nearly free"))
        words.push(word);
      return words;
    });
  }
  const replay = [...chatRespond(["hi"])].map((state) => state.at(-1));
  console.log(
    `replayed chat states: ${replay.length}, first "${replay[0]}", last "${replay.at(-1)}"`,
  );
  console.log("classifyImage stats:", classifyImage.cache.stats());
}
