export {
  PrefixCache,
  type PrefixCacheEvents,
  type PrefixCacheHit,
  type PrefixCacheOptions,
  type PrefixLookupOptions,
  type PrefixSetOptions,
} from "./prefix-cache.js";
