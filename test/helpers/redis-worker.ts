/**
 * A child process for the cross-process single-flight test: waits until every worker is
 * connected, then makes `calls` identical concurrent calls and prints how many times the
 * function body ran here.
 */
import { Redis } from "ioredis";
import { cache } from "../../src/index.js";
import { RedisStore } from "../../src/redis.js";

const [url, workersText, callsText, run] = process.argv.slice(2);
if (url === undefined || run === undefined)
  throw new Error("usage: redis-worker <url> <workers> <calls> <run>");
const store = new RedisStore({ url, commandTimeoutMs: 2000 });
await store.ready();
let computations = 0;
const embed = cache(
  async (text: string) => {
    computations++;
    await new Promise((resolve) => setTimeout(resolve, 400));
    return { text, vector: new Float32Array([1, 2, 3]) };
  },
  { store, namespace: `embed-${run}` },
);
embed.cache.on("error", (e) => process.stderr.write(`error ${e.operation}: ${String(e.error)}\n`));
const barrier = new Redis(url);
await barrier.incr(`barrier:${run}`);
while (Number(await barrier.get(`barrier:${run}`)) < Number(workersText)) {
  await new Promise((resolve) => setTimeout(resolve, 10));
}
const results = await Promise.all(
  Array.from({ length: Number(callsText) }, () => embed("the same input")),
);
const correct = results.every(
  (r) => r.text === "the same input" && r.vector instanceof Float32Array,
);
barrier.disconnect();
await store.close();
process.stdout.write(JSON.stringify({ computations, correct, stats: embed.cache.stats() }));
