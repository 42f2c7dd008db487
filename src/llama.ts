/**
 * `infercache/llama`: a local OpenAI-compatible engine on node-llama-cpp. Needs the optional peer
 * dependency `node-llama-cpp` (`npm install node-llama-cpp`).
 */
export { LlamaEngine, type LlamaEngineOptions, type ReceivedRequest } from "./llama/engine.js";
