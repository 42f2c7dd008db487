/**
 * infercache: make expensive model calls happen once.
 *
 * The main entry point: content-hashed keys, the Store interface and MemoryStore, `cache(fn)`
 * and `Cache`, sessions, single-flight and usage tracking. Stores with native dependencies and
 * the LLM layers live in their own subpaths (`infercache/sqlite`, `infercache/redis`, …).
 */

export {
  type AsyncCachedFunction,
  Cache,
  type CachedFunction,
  type CachedValue,
  type CacheEvents,
  type CacheFunctionOptions,
  type CacheHandle,
  type CacheOptions,
  type CacheSetOptions,
  type CacheStats,
  type CacheUsage,
  type CacheUsageReport,
  type CallOptions,
  type CallStatus,
  cache,
  currentSession,
  currentSignal,
  endSession,
  type InProcessStore,
  type Listener,
  NotSnapshotableError,
  type PrefixHit,
  type PrefixKey,
  type PrefixMatch,
  RadixTree,
  runInSession,
  type Sequence,
  type StreamRecord,
  snapshot,
  trackCacheUsage,
} from "./cache/index.js";
export {
  HASH_HOOK,
  type HashKeyOptions,
  hashKey,
  KEY_FORMAT_VERSION,
  UnhashableError,
} from "./key/index.js";
export {
  type ClearScope,
  type Clock,
  type Duration,
  type Entry,
  type EvictReason,
  estimateBytes,
  MemoryStore,
  type MemoryStoreOptions,
  parseDuration,
  parseSize,
  type Scope,
  type SetOutcome,
  type Size,
  type Store,
  StoreError,
  type StoreEvent,
  type SyncStore,
  systemClock,
} from "./store/index.js";
