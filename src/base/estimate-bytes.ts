/**
 * `estimateBytes(value)`: how much memory a value held by a cache keeps alive, for `maxMemory`.
 *
 * Modelled on V8's 64-bit layout (no pointer compression, as Node ships): object headers of
 * 24 bytes, 8-byte slots, heap numbers of 16 bytes, strings with a 24-byte header and one or two
 * bytes per character, typed arrays as their whole backing buffer plus the view object. Shared
 * references and shared buffers are counted once, cycles are safe. It errs on the high side: an
 * estimate that is too low lets a bounded cache outgrow its budget (Gradio counts a dataclass
 * holding a 10 kB string as 56 bytes), one that is a little high only leaves room unused.
 */

const SLOT = 8;
const OBJECT_HEADER = 24;
const HEAP_NUMBER = 16;
const STRING_HEADER = 24;
const ARRAY_HEADER = 32 + 16;
const VIEW_OBJECT = 96;
const BUFFER_OBJECT = 80;
const MAP_ENTRY = 40;
const SET_ENTRY = 24;

const wide = /[\u0100-\uffff]/;

export function estimateBytes(value: unknown): number {
  // Only objects need the set of what was already counted; most cached values are small.
  return typeof value === "object" && value !== null
    ? measure(value, new Set())
    : measure(value, NO_SEEN);
}

const NO_SEEN = new Set<unknown>();

/** Bytes of a string on the V8 heap (one byte per char when all chars are Latin-1). */
export function stringBytes(value: string): number {
  const perChar = value.length > 0 && wide.test(value) ? 2 : 1;
  return align(STRING_HEADER + value.length * perChar);
}

function measure(value: unknown, seen: Set<unknown>): number {
  switch (typeof value) {
    case "string":
      return stringBytes(value);
    case "number":
      return Number.isInteger(value) && Math.abs(value) < 2 ** 31 ? SLOT : SLOT + HEAP_NUMBER;
    case "bigint":
      return SLOT + 16 + SLOT * Math.ceil(value.toString(16).length / 16);
    case "object":
      if (value === null) return SLOT;
      if (seen.has(value)) return SLOT;
      seen.add(value);
      return SLOT + measureObject(value, seen);
    case "function":
      return SLOT + 64;
    default:
      return SLOT;
  }
}

function measureObject(value: object, seen: Set<unknown>): number {
  if (Array.isArray(value)) {
    let total = ARRAY_HEADER;
    for (let i = 0; i < value.length; i++) total += measure(value[i], seen);
    return total;
  }
  if (ArrayBuffer.isView(value)) {
    let total = VIEW_OBJECT;
    if (!seen.has(value.buffer)) {
      seen.add(value.buffer);
      total += BUFFER_OBJECT + value.buffer.byteLength;
    }
    return total;
  }
  if (value instanceof ArrayBuffer || isSharedArrayBuffer(value)) {
    return BUFFER_OBJECT + value.byteLength;
  }
  if (value instanceof Map) {
    let total = OBJECT_HEADER + 64;
    for (const [k, v] of value) total += MAP_ENTRY + measure(k, seen) + measure(v, seen);
    return total;
  }
  if (value instanceof Set) {
    let total = OBJECT_HEADER + 64;
    for (const item of value) total += SET_ENTRY + measure(item, seen);
    return total;
  }
  if (value instanceof Date) return OBJECT_HEADER + HEAP_NUMBER;
  if (value instanceof RegExp) return OBJECT_HEADER + 64 + stringBytes(value.source);
  let total = OBJECT_HEADER;
  for (const key of Object.keys(value)) {
    // Property names are usually shared (interned) across objects of one shape; long ones
    // (ids used as keys) are not, so count those.
    total += key.length > 16 ? stringBytes(key) : 0;
    total += measure((value as Record<string, unknown>)[key], seen);
  }
  return total;
}

function isSharedArrayBuffer(value: object): value is SharedArrayBuffer {
  return typeof SharedArrayBuffer !== "undefined" && value instanceof SharedArrayBuffer;
}

function align(bytes: number): number {
  return Math.ceil(bytes / 8) * 8;
}
