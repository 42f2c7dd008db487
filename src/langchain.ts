/**
 * `infercache/langchain`: a LangChain.js cache on any infercache store,
 * `new ChatOpenAI({ cache: langChainCache() })`. Needs the optional peer dependency
 * `@langchain/core`.
 */
export { type LangChainCacheOptions, langChainCache } from "./llm/langchain.js";
