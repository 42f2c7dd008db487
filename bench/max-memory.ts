/**
 * Does `maxMemory` hold? Fills a `maxMemory: "64mb"` cache with twice that in mixed typed arrays,
 * strings and objects, then compares the estimate with the measured heap growth (V8 heap plus
 * ArrayBuffer memory, after a full GC). Runs in its own process: `node --expose-gc`.
 */
import { Cache } from "../src/index.js";

const budget = 64 * 1024 * 1024;

function heap(): number {
  const gc = (globalThis as { gc?: () => void }).gc;
  if (gc === undefined) throw new Error("run with node --expose-gc");
  for (let i = 0; i < 3; i++) gc();
  const usage = process.memoryUsage();
  return usage.heapUsed + usage.arrayBuffers;
}

async function main(): Promise<void> {
  const before = heap();
  const c = new Cache<{ value: unknown }>({ maxSize: 0, maxMemory: "64mb" });
  let written = 0;
  let i = 0;
  while (written < 2 * budget) {
    let value: unknown;
    switch (i % 3) {
      case 0:
        value = new Float32Array(2048 + (i % 7) * 512); // 8–20 KiB tensors
        written += (value as Float32Array).byteLength;
        break;
      case 1:
        value = `generated text ${i} `.repeat(200 + (i % 5) * 50); // ~4–9 KB strings
        written += (value as string).length;
        break;
      default: {
        const items = Array.from({ length: 40 }, (_, j) => ({
          label: `class-${j}`,
          score: j / 40,
          id: i * 40 + j,
        }));
        value = { items, model: "resnet", latencyMs: i * 0.5 };
        written += 40 * 48;
      }
    }
    await c.set(`input-${i}`, { value });
    i++;
  }
  const after = heap();
  const stats = c.stats();
  const growth = after - before;
  console.log(
    JSON.stringify({
      budgetBytes: budget,
      writtenBytes: written,
      entries: stats.entries,
      estimateBytes: stats.bytes,
      heapGrowthBytes: growth,
      growthOverBudget: growth / budget,
      evictions: stats.evictions,
    }),
  );
}

await main();
