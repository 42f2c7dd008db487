/** Runs every example in turn: `npm run examples`. */
import { main as functionKinds } from "./function-kinds.js";
import { main as kvPrefix } from "./kv-prefix.js";
import { main as llamaStateCache } from "./llama-state-cache.js";
import { main as manualCache } from "./manual-cache.js";
import { main as queueAndBatching } from "./queue-and-batching.js";
import { main as replayInCi } from "./replay-in-ci.js";

for (const [name, run] of [
  ["function kinds (cache(fn))", functionKinds],
  ["manual cache with normalised keys (Cache)", manualCache],
  ["KV-prefix reuse (Cache.longestPrefix)", kvPrefix],
  ["queue, batching, hits that skip the queue", queueAndBatching],
  ["KV-state cache of a local model (LlamaEngine, LlamaStateCache)", llamaStateCache],
  ["recorded answers for CI (record, then replay, with the OpenAI SDK)", replayInCi],
] as const) {
  console.log(`\n== ${name} ==`);
  await run();
}
