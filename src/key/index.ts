export { HASH_HOOK, UnhashableError } from "./encode.js";
export { type HashKeyOptions, hashKey, KEY_FORMAT_VERSION } from "./hash-key.js";
export { shortKey } from "./short-key.js";
