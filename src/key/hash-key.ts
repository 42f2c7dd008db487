/**
 * `hashKey(value)`: the content hash every layer keys by — SHA-256 over the canonical encoding
 * (KEYS.md), as 64 lowercase hex characters. Stable across processes, machines and releases:
 * the first bytes carry the format version, so a future format can never collide with this one.
 */

import { encode, encodeString } from "./encode.js";
import { HashSink } from "./hash-sink.js";

/** The version byte at the start of every encoding. Changing the format means bumping it. */
export const KEY_FORMAT_VERSION = 1;

export interface HashKeyOptions {
  /**
   * A context string hashed in front of the value, so equal values in different contexts
   * (a function's `version`, an upstream, a tenant) get different keys.
   * @default ""
   */
  context?: string;
  /** The name of the value in error paths, e.g. `args`. @default "value" */
  root?: string;
}

/**
 * The canonical content hash of `value`: 64 lowercase hex characters.
 * @throws UnhashableError (a TypeError) for functions, symbols, promises, weak collections,
 * cycles and class instances without a `[Symbol.for("infercache.hash")]()` method.
 */
export function hashKey(value: unknown, options?: HashKeyOptions): string {
  const sink = new HashSink();
  try {
    sink.byte(0x49); // "I"
    sink.byte(0x43); // "C"
    sink.byte(KEY_FORMAT_VERSION);
    encodeString(options?.context ?? "", sink);
    encode(value, sink, options?.root ?? "value");
  } catch (error) {
    sink.abandon();
    throw error;
  }
  return sink.hex();
}
