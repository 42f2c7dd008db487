/**
 * `infercache/redis`: the shared store. Needs the optional peer dependency `ioredis`
 * (`npm install ioredis`).
 */
export { CorruptEntryError, NotSerializableError } from "./store/envelope.js";
export { RedisStore, type RedisStoreOptions, RedisTimeoutError } from "./store/redis.js";
export type { InvalidationBus, InvalidationMessage } from "./store/store.js";
