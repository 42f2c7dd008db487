/**
 * `infercache/llm`: caching for LLM APIs — the request pipeline and its protocols, request keys,
 * and a caching `fetch` for the OpenAI SDK and any compatible client. No peer dependency: the
 * Vercel AI SDK and LangChain.js adapters are `infercache/ai-sdk` and `infercache/langchain`.
 */

export { HookError, type HookName } from "./base/hook-error.js";
export type { Answer, ByteStream } from "./llm/answer.js";
export { type CacheControl, parseCacheControl } from "./llm/cache-control.js";
export {
  type CachingFetch,
  type CachingFetchOptions,
  type CachingFetchStats,
  cachingFetch,
  type RequestHead,
} from "./llm/caching-fetch.js";
export type { LlmResult, Outcome } from "./llm/call.js";
export { MAX_BUCKET, type SamplingPolicy } from "./llm/controls.js";
export type { LlmHookRequest, LlmHooks } from "./llm/hooks.js";
export {
  chatKey,
  completionKey,
  embeddingKey,
  type KeyScope,
  TRANSPORT_FIELDS,
} from "./llm/keys.js";
export {
  LlmPipeline,
  type Lookup,
  type PipelineOptions,
  type PipelineStats,
} from "./llm/pipeline.js";
export type {
  AnswerRecord,
  LlmRequest,
  ParsedCall,
  Protocol,
  RawHeaders,
  Usage,
} from "./llm/protocol.js";
export { RequestError } from "./llm/protocol.js";
export { chatProtocol, completionProtocol } from "./llm/protocols/chat.js";
export { embeddingsProtocol, type ItemizedProtocol } from "./llm/protocols/embeddings.js";
export { assembleExact, synthesizeExact } from "./llm/protocols/openai-convert.js";
export { dataOf, eventTypes, splitEvents, sseFrame } from "./llm/sse.js";
export {
  type Deadlines,
  fetchUpstream,
  httpUpstream,
  type Upstream,
  UpstreamError,
  type UpstreamFailure,
  type UpstreamRequest,
  type UpstreamResponse,
} from "./llm/upstream.js";
