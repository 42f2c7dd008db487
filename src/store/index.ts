export type { Clock } from "../base/clock.js";
export type { Duration } from "../base/duration.js";
export type { Size } from "../base/size.js";
export {
  fromKeyv,
  type KeyvAdapter,
  type KeyvLike,
  type ToKeyvOptions,
  toKeyv,
} from "./keyv.js";
export { MemoryStore, type MemoryStoreOptions } from "./memory.js";
export {
  type EncryptionKey,
  EncryptionKeyError,
  SealedStore,
  type SealedStoreOptions,
} from "./sealed.js";
export {
  type ClearScope,
  type Entry,
  type EvictReason,
  type FlightCoordinator,
  type FlightLease,
  type InvalidationBus,
  type InvalidationMessage,
  type PurgeFilter,
  type Scope,
  type SetOutcome,
  type Store,
  StoreError,
  type StoreEvent,
  type StoreHealth,
  type SyncStore,
} from "./store.js";
export { TieredStore, type TieredStoreOptions } from "./tiered.js";
