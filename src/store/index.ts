export { type Clock, systemClock } from "./clock.js";
export { estimateBytes } from "./estimate.js";
export { MemoryStore, type MemoryStoreOptions } from "./memory.js";
export { type Duration, parseDuration } from "./parse-duration.js";
export { parseSize, type Size } from "./parse-size.js";
export {
  type ClearScope,
  type Entry,
  type EvictReason,
  type FlightCoordinator,
  type FlightLease,
  type Scope,
  type SetOutcome,
  type Store,
  StoreError,
  type StoreEvent,
  type SyncStore,
} from "./store.js";
