export {
  CACHE_MODES,
  CacheMissError,
  type CacheMode,
  currentCacheMode,
  withCacheMode,
} from "../base/mode.js";
export {
  type AsyncCachedFunction,
  type CachedFunction,
  type CachedValue,
  type CacheFunctionOptions,
  type CacheHandle,
  type CallOptions,
  cache,
  type FunctionCacheOptions,
  type InProcessStore,
  type QueuedOptions,
  type UnqueuedOptions,
} from "./cache-fn.js";
export { currentSignal } from "./computation.js";
export {
  Cache,
  type CacheGetOptions,
  type CacheSetOptions,
  type PrefixHit,
  type PrefixKey,
} from "./manual.js";
export type {
  CacheOptions,
  CommonCacheOptions,
  MemoryCacheOptions,
  StoreCacheOptions,
} from "./options.js";
export type { PurgeOptions, TagsOption } from "./purge.js";
export type { LaneRunOptions, QueueLane, QueueLike, QueuePosition } from "./scheduling.js";
export { currentSession, endSession, runInSession } from "./session.js";
export { NotSnapshotableError, snapshot } from "./snapshot.js";
export type { StreamRecord } from "./stream-flight.js";
export type { CacheEvents, CacheStats, CallStatus, WarningReason } from "./telemetry.js";
export { type CacheUsage, type CacheUsageReport, trackCacheUsage } from "./usage.js";
