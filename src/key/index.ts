export { HASH_HOOK, MAX_DEPTH, UnhashableError } from "./encode.js";
export { type HashKeyOptions, hashKey, KEY_FORMAT_VERSION } from "./hash-key.js";
export { shortKey } from "./short-key.js";
