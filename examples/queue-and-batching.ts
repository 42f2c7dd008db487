/**
 * Gradio's performance guide in TypeScript: a queue shared by model functions (concurrency 1 by
 * default, a maximum size), batching of single calls into batch calls, and cached results that
 * never wait in the queue — not even when it is full.
 */
import { cache, createQueue, limit, QueueFullError } from "infercache";

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

export async function main(): Promise<void> {
  const queue = createQueue({ concurrency: 1, maxSize: 4 });

  // A slow model function behind the queue; results cached.
  const generate = cache(
    async (prompt: string) => {
      await sleep(200);
      return `story about ${prompt}`;
    },
    { queue },
  );

  await generate("dragons"); // computed and cached
  // One runs, four wait (the maximum), the sixth miss is turned away at once.
  const busy = ["a", "b", "c", "d", "e", "f"].map((p) => generate(p).catch((e: unknown) => e));
  const rejected = (await Promise.race([busy[5], sleep(50)])) instanceof QueueFullError;
  const started = performance.now();
  const hit = await generate("dragons");
  console.log(
    `queue: ${queue.running} running, ${queue.waiting} waiting; a 6th miss rejected: ${rejected}; ` +
      `a hit answered in ${(performance.now() - started).toFixed(2)} ms: "${hit}"`,
  );
  await Promise.all(busy);

  // Batching: callers make single calls, the model gets lists.
  const batchSizes: number[] = [];
  const embed = cache(
    limit(
      async (calls: [text: string][]) => {
        batchSizes.push(calls.length);
        await sleep(30); // one forward pass for the whole batch
        return calls.map(([text]) => [text.length, text.split(" ").length]);
      },
      { batch: { maxBatchSize: 16, maxWaitMs: 5 } },
    ),
  );
  const texts = Array.from({ length: 40 }, (_, i) => `sentence number ${i}`);
  await Promise.all(texts.map((t) => embed(t)));
  await Promise.all(texts.slice(0, 10).map((t) => embed(t))); // all cached: no batch at all
  console.log(
    `40 single calls became ${batchSizes.length} batches of ${batchSizes.join(", ")}; repeats were hits`,
  );
}
