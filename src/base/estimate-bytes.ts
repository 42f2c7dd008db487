/**
 * `estimateBytes(value)`: how much memory a value held by a cache keeps alive, for `maxMemory`.
 *
 * Modelled on V8's 64-bit layout (no pointer compression, as Node ships) and checked against
 * heap measurements (`bench/max-memory.ts`): object headers of 24 bytes and room for 4 in-object
 * properties, 8-byte slots, heap numbers of 16 bytes, strings with a 24-byte header and one or two
 * bytes per character, typed arrays as their whole backing buffer plus the view object. Shared
 * references and shared buffers are counted once, cycles are safe.
 *
 * What a plain walk of the values misses, and is counted here:
 * - Hidden classes. Objects with the same property names in the same order share one; one whose
 *   names are unique (ids as keys) carries its own chain of maps and descriptors, ~90 bytes a
 *   property. A shape is counted once per distinct name list within the value (an array of 1,000
 *   records of one shape pays it once), names included.
 * - Dictionary mode. V8 keeps objects with many properties added by keyed stores, and objects
 *   without a prototype, as hash tables (~60 bytes a property). Whether an object is one cannot be
 *   told from JavaScript, so every object with more than 16 properties, or a null prototype, is
 *   counted as one.
 * - Growth room: arrays grown by `push` hold up to half their length again, hash tables (Map,
 *   Set, dictionaries) up to twice their entries.
 *
 * It errs on the high side: an estimate that is too low lets a bounded cache outgrow its budget
 * (Gradio counts a dataclass holding a 10 kB string as 56 bytes), one that is a little high only
 * leaves room unused. One thing it cannot see is the parent string a slice keeps alive (no
 * JavaScript API tells a slice apart): MemoryStore first stores values through `unpin`
 * (base/unpin.ts), which copies such strings, and small views of big buffers, so that what is
 * measured here is what is kept.
 */

const SLOT = 8;
const OBJECT_HEADER = 24;
/** In-object property slots of an object made by `{}` or `new Object()`. */
const IN_OBJECT_SLOTS = 4;
/** Properties beyond the in-object ones live in a separate array, grown 3 at a time. */
const PROPERTY_ARRAY = 16 + 2 * SLOT;
const HEAP_NUMBER = 16;
const STRING_HEADER = 24;
/** A sliced or cons string in front of its characters (what `unpin`'s copies are). */
const STRING_WRAPPER = 32;
/** Shorter strings are never sliced or cons strings in V8; they are copied. */
const MIN_WRAPPED_LENGTH = 13;
const ARRAY_HEADER = 32 + 16;
const VIEW_OBJECT = 96;
const BUFFER_OBJECT = 80;
/** Entry, bucket and growth room of a Map entry (3 slots, 2x capacity, a bucket per 2). */
const MAP_ENTRY = 40;
const SET_ENTRY = 32;
const MAP_OBJECT = OBJECT_HEADER + 64;
/** A hidden class (Map) and its descriptor array's header. */
const HIDDEN_CLASS = 80 + 16;
/** A property's descriptor and its share of the transition tree. */
const DESCRIPTOR = 56;
/**
 * A dictionary-mode property: key, value and details slots in a table of a power of two at least
 * 1.5 times the properties (up to 3x), less the value's slot counted by `measure`.
 */
const DICTIONARY_ENTRY = 64;
/** Objects with more properties may be hash tables (keyed stores turn dictionary after 16). */
const FAST_PROPERTIES = 16;
const DATE_OBJECT = 96;
/** Distinct property-name lists remembered per estimate; shapes beyond count in full again. */
const SHAPES_REMEMBERED = 16;

const wide = /[\u0100-\uffff]/;

export function estimateBytes(value: unknown): number {
  // Only objects need the set of what was already counted; most cached values are small.
  return typeof value === "object" && value !== null
    ? measure(value, new Walk())
    : measure(value, NO_WALK);
}

/** What one estimate has already counted: objects (shared references) and hidden classes. */
class Walk {
  readonly seen = new Set<unknown>();
  readonly shapes: string[][] = [];
  #next = 0;

  /** Whether an object with these property names (in this order) was already counted. */
  knownShape(keys: string[]): boolean {
    const n = keys.length;
    for (const shape of this.shapes) {
      if (shape.length !== n) continue;
      let same = true;
      for (let i = 0; i < n; i++) {
        if (shape[i] !== keys[i]) {
          same = false;
          break;
        }
      }
      if (same) return true;
    }
    if (this.shapes.length < SHAPES_REMEMBERED) this.shapes.push(keys);
    else this.shapes[this.#next++ % SHAPES_REMEMBERED] = keys;
    return false;
  }
}

const NO_WALK = new Walk();

/** Bytes of a string on the V8 heap (one byte per char when all chars are Latin-1). */
export function stringBytes(value: string): number {
  const length = value.length;
  const perChar = length > 0 && wide.test(value) ? 2 : 1;
  const wrapper = length >= MIN_WRAPPED_LENGTH ? STRING_WRAPPER : 0;
  return align(STRING_HEADER + length * perChar) + wrapper;
}

function measure(value: unknown, walk: Walk): number {
  switch (typeof value) {
    case "string":
      return SLOT + stringBytes(value);
    case "number":
      return Number.isInteger(value) && Math.abs(value) < 2 ** 31 ? SLOT : SLOT + HEAP_NUMBER;
    case "bigint":
      return SLOT + 16 + SLOT * Math.ceil(value.toString(16).length / 16);
    case "object":
      if (value === null) return SLOT;
      if (walk.seen.has(value)) return SLOT;
      walk.seen.add(value);
      return SLOT + measureObject(value, walk);
    case "function":
      return SLOT + 64;
    default:
      return SLOT;
  }
}

function measureObject(value: object, walk: Walk): number {
  if (Array.isArray(value)) return measureArray(value, walk);
  if (ArrayBuffer.isView(value)) {
    let total = VIEW_OBJECT;
    if (!walk.seen.has(value.buffer)) {
      walk.seen.add(value.buffer);
      total += BUFFER_OBJECT + value.buffer.byteLength;
    }
    return total;
  }
  if (value instanceof ArrayBuffer || isSharedArrayBuffer(value)) {
    return BUFFER_OBJECT + value.byteLength;
  }
  if (value instanceof Map) {
    let total = MAP_OBJECT;
    for (const [k, v] of value) total += MAP_ENTRY + measure(k, walk) + measure(v, walk);
    return total;
  }
  if (value instanceof Set) {
    let total = MAP_OBJECT;
    for (const item of value) total += SET_ENTRY + measure(item, walk);
    return total;
  }
  if (value instanceof Date) return DATE_OBJECT;
  if (value instanceof RegExp) return OBJECT_HEADER + 64 + stringBytes(value.source);
  const keys = Object.keys(value);
  const n = keys.length;
  let total = OBJECT_HEADER;
  if (n > FAST_PROPERTIES || Object.getPrototypeOf(value) === null) {
    // Maybe a hash table: an entry per property, and names that may be its own.
    total += PROPERTY_ARRAY + n * DICTIONARY_ENTRY;
    if (!walk.knownShape(keys)) for (const key of keys) total += stringBytes(key);
  } else {
    total += n < IN_OBJECT_SLOTS ? (IN_OBJECT_SLOTS - n) * SLOT : PROPERTY_ARRAY;
    if (n > 0 && !walk.knownShape(keys)) {
      total += HIDDEN_CLASS;
      for (const key of keys) total += DESCRIPTOR + stringBytes(key);
    }
  }
  // Each value's slot is counted by `measure`.
  for (const key of keys) total += measure((value as Record<string, unknown>)[key], walk);
  return total;
}

/** Arrays longer than this are checked for holes before they are walked index by index. */
const LONG_ARRAY = 4096;

function measureArray(value: unknown[], walk: Walk): number {
  const n = value.length;
  if (sparse(value)) {
    // Walk what is there, not every index. V8 keeps holes as slots only while at least about
    // 1 in 18 is used (or the array was made by `new Array(n)`, up to ~16k slots); sparser
    // arrays are hash tables, ~72 bytes an element.
    let present = 0;
    let total = ARRAY_HEADER;
    for (const key of Object.keys(value)) {
      const index = Number(key);
      if (!Number.isInteger(index)) continue;
      present++;
      total += measure(value[index], walk) - SLOT;
    }
    return total + SLOT * Math.min(n, Math.max(18 * present, PRESIZED_SLOTS));
  }
  // Room to grow: `push` leaves up to half the length again unused; count a quarter.
  let total = ARRAY_HEADER + SLOT * (n >> 2);
  for (let i = 0; i < n; i++) total += measure(value[i], walk);
  return total;
}

/** The most slots `new Array(n)` allocates before it makes a hash table instead. */
const PRESIZED_SLOTS = 16 * 1024;

/**
 * Whether a long array is mostly holes, so that walking what is there (`Object.keys`) beats
 * walking every index: some of 32 evenly spaced indexes are holes.
 */
export function sparse(value: unknown[]): boolean {
  if (value.length <= LONG_ARRAY) return false;
  const step = Math.floor(value.length / 32);
  for (let i = 0; i < value.length; i += step) if (!(i in value)) return true;
  return false;
}

function isSharedArrayBuffer(value: object): value is SharedArrayBuffer {
  return typeof SharedArrayBuffer !== "undefined" && value instanceof SharedArrayBuffer;
}

function align(bytes: number): number {
  return Math.ceil(bytes / 8) * 8;
}
