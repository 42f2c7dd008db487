/**
 * A LangChain.js cache on any infercache store: `new ChatOpenAI({ cache: langChainCache() })`.
 * LangChain keys a call by its prompt and a string of the model's settings; both are in the key.
 * Generations are stored with LangChain's own serializer, so persistent and shared stores work
 * (chat generations hold message class instances). `@langchain/core` is loaded when the cache is
 * made, as the real `BaseCache` subclass LangChain's types expect.
 */

import type { BaseCache } from "@langchain/core/caches";
import type { Generation } from "@langchain/core/outputs";
import { loadPeer } from "../base/optional-peer.js";
import { Cache } from "../cache/manual.js";
import type { CacheOptions } from "../cache/options.js";

export type LangChainCacheOptions = CacheOptions;

type Caches = typeof import("@langchain/core/caches");

/** A LangChain `BaseCache` whose entries live in an infercache store. */
export function langChainCache(options: LangChainCacheOptions = {}): BaseCache {
  const caches = loadPeer<Caches>("@langchain/core/caches", "langchain");
  const store = new Cache<{ generations: unknown[] }>({
    namespace: "langchain",
    ...options,
  } as CacheOptions);
  class InfercacheLangChainCache extends caches.BaseCache {
    async lookup(prompt: string, llmKey: string): Promise<Generation[] | null> {
      const stored = await store.get({ prompt, llmKey });
      if (stored === undefined) return null;
      return stored.generations.map((generation) =>
        caches.deserializeStoredGeneration(
          generation as Parameters<Caches["deserializeStoredGeneration"]>[0],
        ),
      );
    }

    async update(prompt: string, llmKey: string, generations: Generation[]): Promise<void> {
      await store.set(
        { prompt, llmKey },
        { generations: generations.map((g) => caches.serializeGeneration(g)) },
      );
    }
  }
  return new InfercacheLangChainCache();
}
