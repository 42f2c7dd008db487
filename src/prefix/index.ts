export {
  PrefixCache,
  type PrefixCacheEvents,
  type PrefixCacheOptions,
  type PrefixHit as PrefixCacheHit,
  type PrefixLookupOptions,
  type PrefixSetOptions,
} from "./prefix-cache.js";
