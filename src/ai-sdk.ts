/**
 * `infercache/ai-sdk`: a Vercel AI SDK language-model middleware that caches calls,
 * `wrapLanguageModel({ model, middleware: cacheMiddleware() })`. Its types come from the optional
 * peer dependency `@ai-sdk/provider` (which `ai` brings); it uses no AI SDK code at runtime.
 */
export { type CacheMiddlewareOptions, cacheMiddleware } from "./llm/ai-sdk.js";
