/**
 * A child process for memory-bound tests: runs one scenario under `node --expose-gc` and prints
 * the heap growth it left behind (V8 heap plus ArrayBuffers, after full GCs), as JSON.
 *   rewrap <n>          `cache(fn, { key })` with a fresh key lambda per call (Gradio's idiom)
 *   prefix-sessions <n> a per-session Cache whose sessions store, look up and are evicted
 */
import { Cache, cache, runInSession } from "../../src/index.js";

async function heap(): Promise<number> {
  const gc = (globalThis as { gc?: () => void }).gc;
  if (gc === undefined) throw new Error("run with node --expose-gc");
  for (let i = 0; i < 4; i++) {
    // A new macrotask first: V8 keeps WeakRef targets alive until the current job ends.
    await new Promise((resolve) => setTimeout(resolve, 0));
    gc();
  }
  const usage = process.memoryUsage();
  return usage.heapUsed + usage.arrayBuffers;
}

const [scenario, countText = "10000"] = process.argv.slice(2);
const n = Number(countText);
const helper = (x: number) => x * 2;
const prefixes = new Cache<{ v: number }>({ perSession: true, maxSize: 16 });

async function run(rounds: number): Promise<void> {
  for (let i = 0; i < rounds; i++) {
    if (scenario === "rewrap") {
      cache(helper, { key: (x: number) => x })(i);
    } else if (scenario === "prefix-sessions") {
      await runInSession(`session-${i}`, async () => {
        await prefixes.longestPrefix(`question ${i}`);
        await prefixes.set(`question ${i}`, { v: i });
        await prefixes.longestPrefix(`question ${i} and more`);
      });
    } else {
      throw new Error(`unknown scenario ${scenario}`);
    }
  }
}

// Warm up first, so code and shapes are not counted as growth.
await run(Math.min(1000, n));
const before = await heap();
await run(n);
const after = await heap();
console.log(JSON.stringify({ scenario, n, growthBytes: after - before }));
