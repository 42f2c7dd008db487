/**
 * `infercache/llama`: a local OpenAI-compatible engine on node-llama-cpp. Needs the optional peer
 * dependency `node-llama-cpp` (`npm install node-llama-cpp`).
 */
export {
  type EvaluationReport,
  LlamaEngine,
  type LlamaEngineOptions,
  type ReceivedRequest,
} from "./llama/engine.js";
export {
  LlamaStateCache,
  type LlamaStateCacheOptions,
  modelFingerprint,
  type RestoreOutcome,
} from "./llama/state-cache.js";
