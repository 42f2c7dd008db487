/**
 * `infercache/redis`: the shared store. Needs a Redis client library as an optional peer
 * dependency: `redis` (node-redis, the default for `{ url }`) or `ioredis`.
 */
export { CorruptEntryError, NotSerializableError } from "./store/envelope.js";
export type { BookkeepingMode } from "./store/redis/bookkeeping.js";
export type { RedisClient } from "./store/redis/client.js";
export {
  type RedisStoreLogger,
  RedisTimeoutError,
  RedisUnavailableError,
} from "./store/redis/connection.js";
export {
  RedisStore,
  type RedisStoreBaseOptions,
  type RedisStoreOptions,
} from "./store/redis/redis-store.js";
export type { InvalidationBus, InvalidationMessage, StoreHealth } from "./store/store.js";
