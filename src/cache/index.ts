export type { Listener } from "../base/emitter.js";
export { type PrefixMatch, RadixTree, type Sequence } from "../prefix/radix-tree.js";
export {
  type AsyncCachedFunction,
  type CachedFunction,
  type CachedValue,
  type CacheFunctionOptions,
  type CacheHandle,
  type CallOptions,
  cache,
  type InProcessStore,
} from "./cache-fn.js";
export { currentSignal } from "./computation.js";
export type { CacheEvents, CacheOptions, CallStatus } from "./core.js";
export { Cache, type CacheSetOptions, type PrefixHit, type PrefixKey } from "./manual.js";
export type { LaneRunOptions, QueueLane, QueueLike, QueuePosition } from "./scheduling.js";
export { currentSession, endSession, runInSession } from "./session.js";
export { NotSnapshotableError, snapshot } from "./snapshot.js";
export type { CacheStats } from "./stats.js";
export type { StreamRecord } from "./stream-flight.js";
export { type CacheUsage, type CacheUsageReport, trackCacheUsage } from "./usage.js";
