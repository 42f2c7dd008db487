/**
 * `infercache/llm`: caching for OpenAI-compatible APIs — request keys and a caching `fetch` for
 * the OpenAI SDK and any compatible client.
 */
export { type CacheMiddlewareOptions, cacheMiddleware } from "./llm/ai-sdk.js";
export { type CacheControl, parseCacheControl } from "./llm/cache-control.js";
export {
  type CachingFetch,
  type CachingFetchOptions,
  type CachingFetchStats,
  cachingFetch,
  type LlmResult,
  type SamplingPolicy,
} from "./llm/caching-fetch.js";
export {
  type FetchHandler,
  type NodeServeOptions,
  type ServedHandler,
  serveFetchHandler,
} from "./llm/http-adapter.js";
export {
  chatKey,
  completionKey,
  embeddingKey,
  type KeyScope,
  TRANSPORT_FIELDS,
} from "./llm/keys.js";
export { type LangChainCacheOptions, langChainCache } from "./llm/langchain.js";
export { assemble, splitEvents, synthesize } from "./llm/sse.js";
