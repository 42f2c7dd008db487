/**
 * `infercache/redis`: the shared store. Needs the optional peer dependency `ioredis`
 * (`npm install ioredis`).
 */
export { CorruptEntryError, NotSerializableError } from "./store/envelope.js";
export {
  type InvalidationMessage,
  RedisStore,
  type RedisStoreOptions,
  RedisTimeoutError,
} from "./store/redis.js";
